package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannelBuilder;
import io.grpc.MethodDescriptor;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.grpc.ObservationGrpcClientInterceptor;
import io.micrometer.observation.ObservationRegistry;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.annotation.Order;
import org.springframework.grpc.client.ChannelCredentialsProvider;
import org.springframework.grpc.client.GlobalClientInterceptor;
import org.springframework.grpc.client.GrpcChannelBuilderCustomizer;

/**
 * The default dialer's channels in an application with Spring gRPC's beans (global interceptors,
 * channel builder customizers, a credentials provider): real calls through leased channels to a
 * loopback backend. Runs on every Boot line with spring-grpc-core alone, as on Boot 4.0 with
 * spring-grpc 1.0; {@code SpringGrpcChannelsTest} (src/test/spring-grpc) runs it again with Boot
 * 4.1's own gRPC client auto-configured.
 */
class SpringGrpcBeansTest {

  final ApplicationContextRunner contextRunner =
      contextRunner()
          .withUserConfiguration(
              ApplicationConfiguration.class,
              CachingConnectorObservationAutoConfigurationTest.ObservedConfiguration.class)
          .withPropertyValues(
              "grpc.connector.channel.plaintext=true", "grpc.connector.expiry.enabled=false");

  static LoopbackBackend backend;

  /** The application's context, before its configuration and properties. */
  ApplicationContextRunner contextRunner() {
    return new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(BootLine.METRICS_AUTO_CONFIGURATIONS))
        .withConfiguration(
            AutoConfigurations.of(
                CachingConnectorAutoConfiguration.class,
                CachingConnectorObservationAutoConfiguration.class,
                CachingConnectorSpringGrpcAutoConfiguration.class));
  }

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
  void aCustomizerForAnotherBuilderTypeIsSkippedAndTheDialSucceeds() {
    contextRunner
        .withUserConfiguration(OtherBuilderCustomizerConfiguration.class)
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              assertThat(context.getBean(ApplicationConfiguration.class).customized)
                  .containsExactly(backend.address());
            });
  }

  @Test
  void switchingObservationOffLeavesGlobalObservationInterceptorsOff() {
    contextRunner
        .withUserConfiguration(GlobalObservationConfiguration.class)
        .withPropertyValues("grpc.connector.observation.enabled=false")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              // The other global interceptors still apply.
              assertThat(context.getBean(ApplicationConfiguration.class).intercepted)
                  .containsExactly(
                      "first grpc.health.v1.Health/Check", "second grpc.health.v1.Health/Check");
              assertThat(context.getBean(MeterRegistry.class).find("grpc.client").meters())
                  .isEmpty();
            });
  }

  /** A builder type the channels are never built with. */
  abstract static class OtherChannelBuilder
      extends io.grpc.ForwardingChannelBuilder2<OtherChannelBuilder> {}

  @Configuration(proxyBeanMethods = false)
  static class OtherBuilderCustomizerConfiguration {

    @Bean
    GrpcChannelBuilderCustomizer<OtherChannelBuilder> otherBuilderCustomizer() {
      // A lambda: its class carries no type argument, so only the call can tell.
      return (target, builder) -> builder.maxInboundMessageSize(1);
    }
  }

  @Configuration(proxyBeanMethods = false)
  static class GlobalObservationConfiguration {

    @Bean
    @GlobalClientInterceptor
    ObservationGrpcClientInterceptor globalObservationInterceptor(
        ObservationRegistry observationRegistry) {
      return new ObservationGrpcClientInterceptor(observationRegistry);
    }
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
