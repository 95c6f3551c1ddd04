package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatExceptionOfType;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.github.hesmar.grpcproxy.connector.metrics.CachingConnectorMetrics;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

class CachingConnectorMetricsAutoConfigurationTest {

  private static final String FAILING_ADDRESS = "failing.invalid:443";

  private static LoopbackBackend backend;

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(AutoConfigurations.of(BootLine.METRICS_AUTO_CONFIGURATIONS))
          .withConfiguration(
              AutoConfigurations.of(
                  CachingConnectorAutoConfiguration.class,
                  CachingConnectorMetricsAutoConfiguration.class))
          .withPropertyValues(
              "grpc.connector.channel.plaintext=true", "grpc.connector.expiry.enabled=false")
          .withBean(
              ChannelBuilderCustomizer.class,
              () ->
                  (address, builder) -> {
                    if (address.equals(FAILING_ADDRESS)) {
                      throw new IllegalStateException("no channel for " + address);
                    }
                  });

  @BeforeAll
  static void startBackend() {
    backend = LoopbackBackend.start();
  }

  @AfterAll
  static void stopBackend() throws InterruptedException {
    backend.close();
  }

  @Test
  void metersCountRealDialsTaggedWithTheConnectorBeanName() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          MeterRegistry registry = context.getBean(MeterRegistry.class);
          try (LeasedChannel first = connector.dial(backend.address());
              LeasedChannel second = connector.dial(backend.address())) {
            assertThat(LoopbackBackend.check(first)).isEqualTo(ServingStatus.SERVING);
            assertThat(LoopbackBackend.check(second)).isEqualTo(ServingStatus.SERVING);
            assertThat(gauge(registry, CachingConnectorMetrics.LEASES)).isEqualTo(2);
            assertThat(gauge(registry, CachingConnectorMetrics.CONNECTIONS)).isEqualTo(1);
          }
          assertThatExceptionOfType(StatusRuntimeException.class)
              .isThrownBy(() -> connector.dial(FAILING_ADDRESS));

          assertThat(count(registry, CachingConnectorMetrics.DIALS)).isEqualTo(3);
          assertThat(gauge(registry, CachingConnectorMetrics.LEASES)).isZero();
          double successes = dialTimerCount(registry, "success");
          double failures = dialTimerCount(registry, "failure");
          assertThat(successes).isEqualTo(1);
          // At least one: the core may call the dialer again when the first failure came before
          // the caller started waiting. Each call of the dialer is a cache miss.
          assertThat(failures).isGreaterThanOrEqualTo(1);
          assertThat(count(registry, CachingConnectorMetrics.CACHE_MISSES))
              .isEqualTo(successes + failures);

          connector.closeOnRelease(backend.address());
          assertThat(connector.expire()).containsExactly(backend.address());
          assertThat(closes(registry, "released")).isEqualTo(1);
          assertThat(gauge(registry, CachingConnectorMetrics.CONNECTIONS)).isZero();

          connector.dial(backend.address()).close();
          connector.expire();
          connector.expire();
          assertThat(closes(registry, "expired")).isEqualTo(1);

          connector.dial(backend.address()).close();
          context.close();
          assertThat(closes(registry, "shutdown")).isEqualTo(1);
          assertThat(closes(registry, "stale")).isZero();
        });
  }

  @Test
  void callsGaugeCountsACallThatOutlivesItsLease() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          MeterRegistry registry = context.getBean(MeterRegistry.class);
          LeasedChannel lease = connector.dial(backend.address());
          LoopbackBackend.Watch watch = LoopbackBackend.watch(lease);
          lease.close();
          try (watch) {
            await()
                .atMost(Duration.ofSeconds(10))
                .until(() -> watch.statuses.contains(ServingStatus.SERVING));
            assertThat(gauge(registry, CachingConnectorMetrics.LEASES)).isZero();
            assertThat(gauge(registry, CachingConnectorMetrics.CALLS)).isEqualTo(1);
          }
          await()
              .atMost(Duration.ofSeconds(10))
              .until(() -> gauge(registry, CachingConnectorMetrics.CALLS) == 0);
        });
  }

  @Test
  void evictionOfAnIdleChannelIsCountedByCause() {
    contextRunner
        .withPropertyValues("grpc.connector.maximum-channels=1")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              MeterRegistry registry = context.getBean(MeterRegistry.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              assertThat(closes(registry, "evicted")).isZero();

              LoopbackBackend.checkAndRelease(connector, backend.dnsAddress());
              // Reported by the dial thread once the dial's outcome is published.
              await()
                  .atMost(Duration.ofSeconds(10))
                  .untilAsserted(() -> assertThat(closes(registry, "evicted")).isEqualTo(1));
              assertThat(closes(registry, "max_age")).isZero();
              assertThat(gauge(registry, CachingConnectorMetrics.CONNECTIONS)).isEqualTo(1);
            });
  }

  @Test
  void overBoundGaugeCountsChannelsInUsePastTheMaximumUntilADialClosesIdleOnes() {
    contextRunner
        .withPropertyValues("grpc.connector.maximum-channels=1")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              MeterRegistry registry = context.getBean(MeterRegistry.class);
              try (LeasedChannel first = connector.dial(backend.address())) {
                assertThat(gauge(registry, CachingConnectorMetrics.CONNECTIONS_OVER_BOUND))
                    .isZero();
                // The first channel is leased: it is not closed, the bound is exceeded.
                try (LeasedChannel second = connector.dial(backend.dnsAddress())) {
                  assertThat(gauge(registry, CachingConnectorMetrics.CONNECTIONS)).isEqualTo(2);
                  assertThat(gauge(registry, CachingConnectorMetrics.CONNECTIONS_OVER_BOUND))
                      .isEqualTo(1);
                }
              }
              // Released, both are idle: a dial of a third address closes them to fit its own.
              assertThat(gauge(registry, CachingConnectorMetrics.CONNECTIONS_OVER_BOUND))
                  .isEqualTo(1);
              LoopbackBackend.checkAndRelease(connector, "127.0.0.1:" + backend.port());
              assertThat(gauge(registry, CachingConnectorMetrics.CONNECTIONS_OVER_BOUND)).isZero();
              await()
                  .atMost(Duration.ofSeconds(10))
                  .untilAsserted(() -> assertThat(closes(registry, "evicted")).isEqualTo(2));
            });
  }

  @Test
  void overBoundGaugeIsRegisteredOnlyWithABound() {
    contextRunner.run(
        context -> {
          MeterRegistry registry = context.getBean(MeterRegistry.class);
          assertThat(registry.find(CachingConnectorMetrics.CONNECTIONS).gauges()).hasSize(1);
          assertThat(registry.find(CachingConnectorMetrics.CONNECTIONS_OVER_BOUND).gauges())
              .isEmpty();
        });
  }

  @Test
  void leakedLeaseIsCounted() {
    contextRunner
        .withPropertyValues("grpc.connector.leak-detection-threshold=10ms")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              MeterRegistry registry = context.getBean(MeterRegistry.class);
              try (LeasedChannel leaked = connector.dial(backend.address())) {
                await()
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> count(registry, CachingConnectorMetrics.LEAKS) == 1);
              }
            });
  }

  @Test
  void everyMeterHasADescriptionAndNoAddressTag() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          connector.dial(backend.address()).close();
          MeterRegistry registry = context.getBean(MeterRegistry.class);
          assertThat(registry.find("grpc.connector.dials").meters()).hasSize(1);
          for (Meter meter : registry.getMeters()) {
            if (meter.getId().getName().startsWith("grpc.connector.")) {
              assertThat(meter.getId().getDescription()).as(meter.getId().getName()).isNotBlank();
              assertThat(meter.getId().getTag("name")).isEqualTo("cachingConnector");
              assertThat(meter.getId().getTags())
                  .noneMatch(tag -> tag.getValue().contains(backend.address()));
            }
          }
        });
  }

  @Test
  void metricsBackOffWithoutAMeterRegistry() {
    new ApplicationContextRunner()
        .withConfiguration(
            AutoConfigurations.of(
                CachingConnectorAutoConfiguration.class,
                CachingConnectorMetricsAutoConfiguration.class))
        .run(
            context -> {
              assertThat(context).hasSingleBean(CachingConnector.class);
              assertThat(context).doesNotHaveBean(CachingConnectorMetrics.class);
            });
  }

  private static double count(MeterRegistry registry, String name) {
    return registry.get(name).tag("name", "cachingConnector").counter().count();
  }

  private static double closes(MeterRegistry registry, String cause) {
    return registry.get(CachingConnectorMetrics.CLOSES).tag("cause", cause).counter().count();
  }

  private static long dialTimerCount(MeterRegistry registry, String outcome) {
    return registry
        .get(CachingConnectorMetrics.DIAL_DURATION)
        .tag("outcome", outcome)
        .timer()
        .count();
  }

  private static double gauge(MeterRegistry registry, String name) {
    return registry.get(name).tag("name", "cachingConnector").gauge().value();
  }
}
