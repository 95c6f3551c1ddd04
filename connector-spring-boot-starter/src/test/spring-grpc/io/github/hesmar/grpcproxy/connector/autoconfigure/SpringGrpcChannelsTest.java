package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.InsecureChannelCredentials;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.netty.handler.ssl.NotSslRecordException;
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
 * {@link SpringGrpcBeansTest} again, in an application with Spring Boot 4.1's own gRPC client
 * ({@code spring-boot-grpc-client}, which auto-configures Spring gRPC and declares its observation
 * interceptor and credentials provider), and what Boot's beans change. Compiled and run only on
 * Boot 4.1 (profile boot41-grpc-client).
 */
class SpringGrpcChannelsTest extends SpringGrpcBeansTest {

  @Override
  ApplicationContextRunner contextRunner() {
    return super.contextRunner()
        .withConfiguration(
            AutoConfigurations.of(
                SslAutoConfiguration.class,
                GrpcClientAutoConfiguration.class,
                GrpcClientObservationAutoConfiguration.class));
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
                StatusRuntimeException refused =
                    catchThrowableOfType(
                        StatusRuntimeException.class, () -> LoopbackBackend.check(channel));
                assertThat(refused.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                assertThat(refused).hasRootCauseInstanceOf(NotSslRecordException.class);
              }
            });
  }
}
