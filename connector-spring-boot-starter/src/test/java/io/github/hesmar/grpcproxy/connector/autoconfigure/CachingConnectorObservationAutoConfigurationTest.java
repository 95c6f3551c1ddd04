package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.CallOptions;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.grpc.DefaultGrpcClientObservationConvention;
import io.micrometer.core.instrument.binder.grpc.GrpcClientObservationConvention;
import io.micrometer.core.instrument.observation.DefaultMeterObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.FilteredClassLoader;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.ApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Per-call observations on the default dialer's channels and the bound on their meters, on every
 * Boot line, with Boot's metrics auto-configuration (which applies MeterFilter beans) and a real
 * loopback backend.
 */
class CachingConnectorObservationAutoConfigurationTest {

  private static LoopbackBackend backend;

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(AutoConfigurations.of(BootLine.METRICS_AUTO_CONFIGURATIONS))
          .withConfiguration(
              AutoConfigurations.of(
                  CachingConnectorAutoConfiguration.class,
                  CachingConnectorObservationAutoConfiguration.class,
                  CachingConnectorSpringGrpcAutoConfiguration.class))
          .withUserConfiguration(ObservedConfiguration.class)
          .withPropertyValues(
              "grpc.connector.channel.plaintext=true", "grpc.connector.expiry.enabled=false");

  @BeforeAll
  static void startBackend() {
    backend = LoopbackBackend.start();
  }

  @AfterAll
  static void stopBackend() throws InterruptedException {
    backend.close();
  }

  @Test
  void eachCallThroughALeasedChannelIsObservedOnce() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          for (int i = 0; i < 3; i++) {
            LoopbackBackend.checkAndRelease(connector, backend.address());
          }
          awaitCalls(context, "grpc.client", 3);
          assertThat(grpcClientTimers(context))
              .singleElement()
              .satisfies(
                  meter -> {
                    assertThat(meter.getId().getTag("rpc.service"))
                        .isEqualTo("grpc.health.v1.Health");
                    assertThat(meter.getId().getTag("rpc.method")).isEqualTo("Check");
                    // The peer would grow with the addresses a proxy dials.
                    assertThat(meter.getId().getTag("net.peer.name")).isNull();
                    assertThat(meter.getId().getTag("net.peer.port")).isNull();
                  });
        });
  }

  @Test
  void observationOfChannelsCanBeSwitchedOff() {
    contextRunner
        .withPropertyValues("grpc.connector.observation.enabled=false")
        .run(
            context -> {
              assertThat(context).doesNotHaveBean("cachingConnectorObservationCustomizer");
              assertThat(context).doesNotHaveBean("cachingConnectorGrpcClientMeterFilter");
              CachingConnector connector = context.getBean(CachingConnector.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              assertThat(context.getBean(MeterRegistry.class).find("grpc.client").meters())
                  .isEmpty();
            });
  }

  @Test
  void theApplicationsObservationConventionIsHonoured() {
    contextRunner
        .withUserConfiguration(ConventionConfiguration.class)
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              awaitCalls(context, "proxy.backend.calls", 1);
              assertThat(context.getBean(MeterRegistry.class).find("grpc.client").meters())
                  .isEmpty();
            });
  }

  @Test
  void callersChoosingThousandsOfMethodsCreateAtMostTheBoundOfSeries() {
    int methods = 5_000;
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          try (LeasedChannel channel = connector.dial(backend.address())) {
            for (int i = 0; i < methods; i++) {
              // A method the backend does not have, as a proxy's caller may ask for.
              MethodDescriptor<byte[], byte[]> method =
                  MethodDescriptor.newBuilder(BYTES, BYTES)
                      .setType(MethodDescriptor.MethodType.UNARY)
                      .setFullMethodName("caller.Chosen" + (i % 7) + "/Method" + i)
                      .build();
              StatusRuntimeException refused =
                  catchThrowableOfType(
                      StatusRuntimeException.class,
                      () ->
                          ClientCalls.blockingUnaryCall(
                              channel,
                              method,
                              CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS),
                              new byte[0]));
              assertThat(refused.getStatus().getCode()).isEqualTo(Status.Code.UNIMPLEMENTED);
            }
          }
          await().until(() -> connector.callCount() == 0);
          List<Meter> timers = grpcClientTimers(context);
          Set<String> methodTags =
              context.getBean(MeterRegistry.class).getMeters().stream()
                  .filter(meter -> meter.getId().getName().startsWith("grpc.client"))
                  .map(
                      meter ->
                          meter.getId().getTag("rpc.service")
                              + "/"
                              + meter.getId().getTag("rpc.method"))
                  .collect(Collectors.toSet());
          assertThat(methodTags).hasSize(100);
          assertThat(timers).hasSize(100);
          // Per meter name (grpc.client, grpc.client.active, ...), one series per method kept.
          Map<String, Long> seriesPerName =
              context.getBean(MeterRegistry.class).getMeters().stream()
                  .map(meter -> meter.getId().getName())
                  .filter(name -> name.startsWith("grpc.client"))
                  .collect(Collectors.groupingBy(name -> name, Collectors.counting()));
          assertThat(seriesPerName)
              .isNotEmpty()
              .allSatisfy((name, series) -> assertThat(series).as(name).isEqualTo(100));
        });
  }

  @Test
  void theBoundOfMethodTagsIsAProperty() {
    contextRunner
        .withPropertyValues("grpc.connector.observation.max-method-tags=0")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              assertThat(context.getBean(MeterRegistry.class).find("grpc.client").meters())
                  .isEmpty();
            });
  }

  @Test
  void withoutSpringGrpcTheChannelsGetOnlyTheConnectorsInterceptor() {
    contextRunner
        .withClassLoader(new FilteredClassLoader("org.springframework.grpc"))
        .run(
            context -> {
              assertThat(context).hasNotFailed();
              assertThat(context).doesNotHaveBean("cachingConnectorSpringGrpcChannels");
              assertThat(context).hasBean("cachingConnectorObservationCustomizer");
              CachingConnector connector = context.getBean(CachingConnector.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              awaitCalls(context, "grpc.client", 1);
            });
  }

  private static void awaitCalls(ApplicationContext context, String name, long count) {
    MeterRegistry registry = context.getBean(MeterRegistry.class);
    await()
        .untilAsserted(
            () ->
                assertThat(registry.find(name).timers().stream().mapToLong(t -> t.count()).sum())
                    .isEqualTo(count));
  }

  private static List<Meter> grpcClientTimers(ApplicationContext context) {
    return List.copyOf(context.getBean(MeterRegistry.class).find("grpc.client").timers());
  }

  static final MethodDescriptor.Marshaller<byte[]> BYTES =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          try {
            return stream.readAllBytes();
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
      };

  /** An observation registry that records to the meter registry, as Boot's would. */
  @Configuration(proxyBeanMethods = false)
  static class ObservedConfiguration {

    @Bean
    ObservationRegistry observationRegistry(MeterRegistry meterRegistry) {
      ObservationRegistry registry = ObservationRegistry.create();
      registry
          .observationConfig()
          .observationHandler(new DefaultMeterObservationHandler(meterRegistry));
      return registry;
    }
  }

  @Configuration(proxyBeanMethods = false)
  static class ConventionConfiguration {

    @Bean
    GrpcClientObservationConvention proxyConvention() {
      return new DefaultGrpcClientObservationConvention() {
        @Override
        public String getName() {
          return "proxy.backend.calls";
        }
      };
    }
  }
}
