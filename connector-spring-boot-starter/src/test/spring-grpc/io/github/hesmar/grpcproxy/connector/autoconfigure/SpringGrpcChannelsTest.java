package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.InsecureChannelCredentials;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ManagedChannelBuilder;
import io.grpc.MethodDescriptor;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.observation.DefaultMeterObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.autoconfigure.ssl.SslAutoConfiguration;
import org.springframework.boot.grpc.client.autoconfigure.GrpcClientAutoConfiguration;
import org.springframework.boot.grpc.client.autoconfigure.GrpcClientObservationAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.annotation.Order;
import org.springframework.grpc.client.ChannelCredentialsProvider;
import org.springframework.grpc.client.GlobalClientInterceptor;
import org.springframework.grpc.client.GrpcChannelBuilderCustomizer;

/**
 * The default dialer's channels in an application with Spring Boot 4.1's own gRPC client
 * ({@code spring-boot-grpc-client}, which auto-configures Spring gRPC): real calls through leased
 * channels to a loopback backend. Compiled and run only on Boot 4.1 (profile
 * boot41-grpc-client).
 */
class SpringGrpcChannelsTest {

  private static LoopbackBackend backend;

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(AutoConfigurations.of(BootLine.METRICS_AUTO_CONFIGURATIONS))
          .withConfiguration(
              AutoConfigurations.of(
                  SslAutoConfiguration.class,
                  GrpcClientAutoConfiguration.class,
                  GrpcClientObservationAutoConfiguration.class,
                  CachingConnectorAutoConfiguration.class,
                  CachingConnectorObservationAutoConfiguration.class,
                  CachingConnectorSpringGrpcAutoConfiguration.class))
          .withUserConfiguration(ApplicationConfiguration.class)
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
  void aCallThroughALeasedChannelPassesEachGlobalInterceptorOnceInTheirOrder() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          LoopbackBackend.checkAndRelease(connector, backend.address());
          LoopbackBackend.checkAndRelease(connector, backend.address());
          assertThat(context.getBean(ApplicationConfiguration.class).intercepted)
              .containsExactly(
                  "first grpc.health.v1.Health/Check",
                  "second grpc.health.v1.Health/Check",
                  "first grpc.health.v1.Health/Check",
                  "second grpc.health.v1.Health/Check");
        });
  }

  @Test
  void theApplicationsChannelBuilderCustomizersAreAppliedOncePerChannel() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          LoopbackBackend.checkAndRelease(connector, backend.address());
          LoopbackBackend.checkAndRelease(connector, backend.dnsAddress());
          LoopbackBackend.checkAndRelease(connector, backend.address());
          assertThat(context.getBean(ApplicationConfiguration.class).customized)
              .containsExactly(backend.address(), backend.dnsAddress());
        });
  }

  @Test
  void bootsObservationInterceptorMeasuresEachCallOnceAndTheConnectorsIsNotAdded() {
    contextRunner.run(
        context -> {
          assertThat(context).hasBean("grpcClientObservationInterceptor");
          assertThat(context).doesNotHaveBean("cachingConnectorObservationCustomizer");
          CachingConnector connector = context.getBean(CachingConnector.class);
          for (int i = 0; i < 3; i++) {
            LoopbackBackend.checkAndRelease(connector, backend.address());
          }
          MeterRegistry registry = context.getBean(MeterRegistry.class);
          await()
              .untilAsserted(
                  () ->
                      assertThat(registry.find("grpc.client").timer())
                          .isNotNull()
                          .satisfies(timer -> assertThat(timer.count()).isEqualTo(3)));
          assertThat(registry.find("grpc.client").timers()).hasSize(1);
        });
  }

  @Test
  void theApplicationsCredentialsProviderGivesTheCredentialsOptionsDoNotSet() {
    contextRunner
        .withPropertyValues("grpc.connector.channel.plaintext=false")
        .withUserConfiguration(CredentialsConfiguration.class)
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              // TLS by the options' default, but the provider's plaintext credentials win.
              LoopbackBackend.checkAndRelease(connector, backend.address());
              assertThat(context.getBean(CredentialsConfiguration.class).asked)
                  .containsExactly(backend.address());
            });
  }

  @Test
  void credentialsSetByTheOptionsWinOverTheProvider() {
    contextRunner
        .withUserConfiguration(CredentialsConfiguration.class)
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              assertThat(context.getBean(CredentialsConfiguration.class).asked).isEmpty();
            });
  }

  @Test
  void bootsOwnCredentialsProviderDoesNotTurnTheTlsDefaultIntoPlaintext() {
    contextRunner
        .withPropertyValues("grpc.connector.channel.plaintext=false")
        .run(
            context -> {
              // Boot's properties-based provider exists, and would answer plaintext.
              assertThat(context).hasSingleBean(ChannelCredentialsProvider.class);
              CachingConnector connector = context.getBean(CachingConnector.class);
              try (LeasedChannel channel = connector.dial(backend.address())) {
                // The plaintext backend cannot complete a TLS handshake.
                assertThat(catchThrowableOfType(
                        StatusRuntimeException.class, () -> LoopbackBackend.check(channel)))
                    .extracting(e -> e.getStatus().getCode())
                    .isEqualTo(Status.Code.UNAVAILABLE);
              }
            });
  }

  @Configuration(proxyBeanMethods = false)
  static class CredentialsConfiguration {

    final Queue<String> asked = new ConcurrentLinkedQueue<>();

    @Bean
    ChannelCredentialsProvider applicationCredentials() {
      return target -> {
        asked.add(target);
        return InsecureChannelCredentials.create();
      };
    }
  }

  @Configuration(proxyBeanMethods = false)
  static class ApplicationConfiguration {

    final Queue<String> intercepted = new ConcurrentLinkedQueue<>();

    final Queue<String> customized = new ConcurrentLinkedQueue<>();

    @Bean
    ObservationRegistry observationRegistry(MeterRegistry meterRegistry) {
      ObservationRegistry registry = ObservationRegistry.create();
      registry
          .observationConfig()
          .observationHandler(new DefaultMeterObservationHandler(meterRegistry));
      return registry;
    }

    @Bean
    @GlobalClientInterceptor
    @Order(2)
    ClientInterceptor secondInterceptor() {
      return recording("second");
    }

    @Bean
    @GlobalClientInterceptor
    @Order(1)
    ClientInterceptor firstInterceptor() {
      return recording("first");
    }

    /** Not global: Spring gRPC does not put it on channels, and neither does the connector. */
    @Bean
    ClientInterceptor localInterceptor() {
      return recording("local");
    }

    @Bean
    <T extends ManagedChannelBuilder<T>> GrpcChannelBuilderCustomizer<T> recordingCustomizer() {
      return (target, builder) -> customized.add(target);
    }

    private ClientInterceptor recording(String name) {
      return new ClientInterceptor() {
        @Override
        public <Q, R> ClientCall<Q, R> interceptCall(
            MethodDescriptor<Q, R> method, CallOptions callOptions, Channel next) {
          intercepted.add(name + " " + method.getFullMethodName());
          return next.newCall(method, callOptions);
        }
      };
    }
  }
}
