package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatExceptionOfType;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.github.hesmar.grpcproxy.connector.metrics.CachingConnectorMetrics;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
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
            assertThat(gauge(registry, CachingConnectorMetrics.LEASES_ACTIVE)).isEqualTo(2);
            assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(1);
          }
          assertThatExceptionOfType(StatusRuntimeException.class)
              .isThrownBy(() -> connector.dial(FAILING_ADDRESS));

          assertThat(count(registry, CachingConnectorMetrics.DIALS)).isEqualTo(3);
          assertThat(gauge(registry, CachingConnectorMetrics.LEASES_ACTIVE)).isZero();
          // A dial's outcome reaches the listeners on the dial thread after its waiters woke.
          await()
              .untilAsserted(
                  () -> {
                    assertThat(creations(registry, "success")).isEqualTo(1);
                    assertThat(creations(registry, "failure")).isEqualTo(1);
                  });
          // Each dial that called the dialer is a miss, whether the dialer failed or not.
          assertThat(count(registry, CachingConnectorMetrics.DIALS_MISSED)).isEqualTo(2);

          connector.closeOnRelease(backend.address());
          assertThat(connector.expire()).containsExactly(backend.address());
          assertThat(closed(registry, "released")).isEqualTo(1);
          assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isZero();

          connector.dial(backend.address()).close();
          connector.expire();
          connector.expire();
          assertThat(closed(registry, "expired")).isEqualTo(1);

          connector.dial(backend.address()).close();
          context.close();
          assertThat(closed(registry, "shutdown")).isEqualTo(1);
          assertThat(closed(registry, "stale")).isZero();
        });
  }

  @Test
  void dialOfACachedChannelIsADialButNotAMiss() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          MeterRegistry registry = context.getBean(MeterRegistry.class);
          LoopbackBackend.checkAndRelease(connector, backend.address());
          assertThat(count(registry, CachingConnectorMetrics.DIALS)).isEqualTo(1);
          assertThat(count(registry, CachingConnectorMetrics.DIALS_MISSED)).isEqualTo(1);

          LoopbackBackend.checkAndRelease(connector, backend.address());
          assertThat(count(registry, CachingConnectorMetrics.DIALS)).isEqualTo(2);
          assertThat(count(registry, CachingConnectorMetrics.DIALS_MISSED)).isEqualTo(1);
          assertThat(creations(registry, "success")).isEqualTo(1);
          assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(1);
        });
  }

  @Test
  void waitersOfOneDialInFlightAreDialsAndOnlyTheDialIsAMiss() {
    int waiters = 4;
    String gated = "127.0.0.1:" + backend.port();
    CountDownLatch dialerEntered = new CountDownLatch(1);
    CountDownLatch dialerReleased = new CountDownLatch(1);
    contextRunner
        .withBean(
            "gate",
            ChannelBuilderCustomizer.class,
            () ->
                (address, builder) -> {
                  if (address.equals(gated)) {
                    dialerEntered.countDown();
                    awaitUninterruptibly(dialerReleased);
                  }
                })
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              MeterRegistry registry = context.getBean(MeterRegistry.class);
              ExecutorService callers = Executors.newFixedThreadPool(waiters);
              try {
                List<Future<ServingStatus>> checks = new ArrayList<>();
                for (int i = 0; i < waiters; i++) {
                  checks.add(
                      callers.submit(
                          () -> {
                            try (LeasedChannel lease = connector.dial(gated)) {
                              return LoopbackBackend.check(lease);
                            }
                          }));
                }
                assertThat(dialerEntered.await(10, TimeUnit.SECONDS)).isTrue();
                // Every caller has dialed; the dialer is still held, so all wait for its channel.
                await()
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> count(registry, CachingConnectorMetrics.DIALS) == waiters);
                dialerReleased.countDown();
                for (Future<ServingStatus> check : checks) {
                  assertThat(check.get(10, TimeUnit.SECONDS)).isEqualTo(ServingStatus.SERVING);
                }
              } finally {
                dialerReleased.countDown();
                callers.shutdownNow();
              }
              assertThat(count(registry, CachingConnectorMetrics.DIALS)).isEqualTo(waiters);
              assertThat(count(registry, CachingConnectorMetrics.DIALS_MISSED)).isEqualTo(1);
              assertThat(creations(registry, "success")).isEqualTo(1);
              assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(1);
            });
  }

  @Test
  void dialThatOpensAnExtraChannelOfAFullAddressIsAMiss() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.pool.max-calls-per-channel=1",
            "grpc.connector.pool.max-channels-per-address=2")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              MeterRegistry registry = context.getBean(MeterRegistry.class);
              LoopbackBackend.checkAndRelease(connector, backend.address()); // a miss
              try (LeasedChannel first = connector.dial(backend.address()); // a hit
                  LoopbackBackend.Watch watch = LoopbackBackend.watch(first)) {
                await()
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> watch.statuses.contains(ServingStatus.SERVING));
                // The first channel carries its one call: the next dial opens a second channel.
                try (LeasedChannel second = connector.dial(backend.address())) {
                  assertThat(LoopbackBackend.check(second)).isEqualTo(ServingStatus.SERVING);
                  assertThat(count(registry, CachingConnectorMetrics.DIALS)).isEqualTo(3);
                  assertThat(count(registry, CachingConnectorMetrics.DIALS_MISSED)).isEqualTo(2);
                  assertThat(creations(registry, "success")).isEqualTo(2);
                  assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(2);
                  assertThat(connector.connections())
                      .extracting(ConnectionInfo::address)
                      .containsExactly(backend.address(), backend.address());
                }
              }
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
            assertThat(gauge(registry, CachingConnectorMetrics.LEASES_ACTIVE)).isZero();
            assertThat(gauge(registry, CachingConnectorMetrics.CALLS_ACTIVE)).isEqualTo(1);
          }
          await()
              .atMost(Duration.ofSeconds(10))
              .until(() -> gauge(registry, CachingConnectorMetrics.CALLS_ACTIVE) == 0);
        });
  }

  @Test
  void everyCallOnALeaseRecordsItsQueueWaitOnceAndNoneQueuesBelowTheStreamLimit() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          MeterRegistry registry = context.getBean(MeterRegistry.class);
          Meter.Id queued = registry.get(CachingConnectorMetrics.CALLS_QUEUED).gauge().getId();
          Meter.Id queueWait =
              registry.get(CachingConnectorMetrics.CALLS_QUEUE_WAIT).timer().getId();
          assertThat(queued.getTags()).containsExactly(Tag.of("name", "cachingConnector"));
          assertThat(queueWait.getTags()).containsExactly(Tag.of("name", "cachingConnector"));
          assertThat(gauge(registry, CachingConnectorMetrics.CALLS_QUEUED)).isZero();
          assertThat(queueWaits(registry)).isZero();

          LoopbackBackend.checkAndRelease(connector, backend.address());
          LoopbackBackend.checkAndRelease(connector, backend.address());
          // Recorded by the transport thread that sent each call's headers: once per call.
          await()
              .atMost(Duration.ofSeconds(10))
              .untilAsserted(() -> assertThat(queueWaits(registry)).isEqualTo(2));
          assertThat(gauge(registry, CachingConnectorMetrics.CALLS_QUEUED)).isZero();

          try (LeasedChannel lease = connector.dial(backend.address());
              LoopbackBackend.Watch watch = LoopbackBackend.watch(lease)) {
            await()
                .atMost(Duration.ofSeconds(10))
                .until(() -> watch.statuses.contains(ServingStatus.SERVING));
            // In flight with its headers sent: active, not queued.
            assertThat(gauge(registry, CachingConnectorMetrics.CALLS_ACTIVE)).isEqualTo(1);
            assertThat(gauge(registry, CachingConnectorMetrics.CALLS_QUEUED)).isZero();
            await()
                .atMost(Duration.ofSeconds(10))
                .untilAsserted(() -> assertThat(queueWaits(registry)).isEqualTo(3));
          }
        });
  }

  @Test
  void callQueuedBehindTheBackendsStreamLimitShowsInTheGaugeAndItsWaitInTheTimer()
      throws InterruptedException {
    try (LoopbackBackend limited = LoopbackBackend.withStreamLimit(1)) {
      contextRunner.run(
          context -> {
            CachingConnector connector = context.getBean(CachingConnector.class);
            MeterRegistry registry = context.getBean(MeterRegistry.class);
            try (LeasedChannel lease = connector.dial(limited.address());
                LoopbackBackend.Watch first = LoopbackBackend.watch(lease)) {
              await()
                  .atMost(Duration.ofSeconds(10))
                  .until(() -> first.statuses.contains(ServingStatus.SERVING));
              await()
                  .atMost(Duration.ofSeconds(10))
                  .untilAsserted(() -> assertThat(queueWaits(registry)).isEqualTo(1));
              // The connection's one stream is taken: the second call's headers wait.
              try (LoopbackBackend.Watch second = LoopbackBackend.watch(lease)) {
                await()
                    .atMost(Duration.ofSeconds(10))
                    .untilAsserted(
                        () ->
                            assertThat(gauge(registry, CachingConnectorMetrics.CALLS_QUEUED))
                                .isEqualTo(1));
                assertThat(gauge(registry, CachingConnectorMetrics.CALLS_ACTIVE)).isEqualTo(2);
                assertThat(queueWaits(registry)).isEqualTo(1);
                assertThat(second.statuses).isEmpty();

                // Cancelled while queued: its wait ends with it, and is recorded once.
                second.close();
                await()
                    .atMost(Duration.ofSeconds(10))
                    .untilAsserted(
                        () -> {
                          assertThat(gauge(registry, CachingConnectorMetrics.CALLS_QUEUED))
                              .isZero();
                          assertThat(queueWaits(registry)).isEqualTo(2);
                          assertThat(gauge(registry, CachingConnectorMetrics.CALLS_ACTIVE))
                              .isEqualTo(1);
                        });
              }
            }
          });
    }
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
              assertThat(closed(registry, "evicted")).isZero();

              LoopbackBackend.checkAndRelease(connector, backend.dnsAddress());
              // Reported by the dial thread once the dial's outcome is published.
              await()
                  .atMost(Duration.ofSeconds(10))
                  .untilAsserted(() -> assertThat(closed(registry, "evicted")).isEqualTo(1));
              assertThat(closed(registry, "max_age")).isZero();
              assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(1);
            });
  }

  @Test
  void channelsInUseExceedTheMaxGaugeUntilADialClosesIdleOnes() {
    contextRunner
        .withPropertyValues("grpc.connector.maximum-channels=1")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              MeterRegistry registry = context.getBean(MeterRegistry.class);
              assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS_MAX)).isEqualTo(1);
              try (LeasedChannel first = connector.dial(backend.address())) {
                assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(1);
                // The first channel is leased: it is not closed, the bound is exceeded.
                try (LeasedChannel second = connector.dial(backend.dnsAddress())) {
                  assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(2);
                }
              }
              // Released, both are idle: a dial of a third address closes them to fit its own.
              assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(2);
              LoopbackBackend.checkAndRelease(connector, "127.0.0.1:" + backend.port());
              assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS)).isEqualTo(1);
              assertThat(gauge(registry, CachingConnectorMetrics.CHANNELS_MAX)).isEqualTo(1);
              await()
                  .atMost(Duration.ofSeconds(10))
                  .untilAsserted(() -> assertThat(closed(registry, "evicted")).isEqualTo(2));
            });
  }

  @Test
  void maxGaugeIsRegisteredOnlyWithABound() {
    contextRunner.run(
        context -> {
          MeterRegistry registry = context.getBean(MeterRegistry.class);
          assertThat(registry.find(CachingConnectorMetrics.CHANNELS).gauges()).hasSize(1);
          assertThat(registry.find(CachingConnectorMetrics.CHANNELS_MAX).gauges()).isEmpty();
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
                    .until(() -> count(registry, CachingConnectorMetrics.LEASES_LEAKED) == 1);
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
          assertThat(registry.find(CachingConnectorMetrics.DIALS).meters()).hasSize(1);
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

  private static double closed(MeterRegistry registry, String cause) {
    return registry
        .get(CachingConnectorMetrics.CHANNELS_CLOSED)
        .tag("cause", cause)
        .counter()
        .count();
  }

  private static long creations(MeterRegistry registry, String result) {
    return registry
        .get(CachingConnectorMetrics.CHANNELS_CREATION)
        .tag("result", result)
        .timer()
        .count();
  }

  private static long queueWaits(MeterRegistry registry) {
    return registry
        .get(CachingConnectorMetrics.CALLS_QUEUE_WAIT)
        .tag("name", "cachingConnector")
        .timer()
        .count();
  }

  private static double gauge(MeterRegistry registry, String name) {
    return registry.get(name).tag("name", "cachingConnector").gauge().value();
  }

  private static void awaitUninterruptibly(CountDownLatch latch) {
    try {
      if (!latch.await(10, TimeUnit.SECONDS)) {
        throw new IllegalStateException("not released within 10 s");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
