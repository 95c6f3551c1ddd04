package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.context.annotation.Bean;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.core.env.Environment;

/**
 * With Spring gRPC on the class path (Spring Boot 4.1's {@code spring-boot-grpc-client}, or
 * spring-grpc 1.0 on Boot 4.0), the default dialer's channels get what Spring gRPC's channels get:
 * the application's global client interceptors, {@code GrpcChannelBuilderCustomizer} beans and
 * {@code ChannelCredentialsProvider} (see {@link SpringGrpcChannels}). Without Spring gRPC this
 * auto-configuration is skipped (its class conditions are read without loading the class).
 */
@AutoConfiguration(
    after = CachingConnectorAutoConfiguration.class,
    afterName = {
      "org.springframework.boot.grpc.client.autoconfigure.GrpcClientAutoConfiguration",
      "org.springframework.grpc.autoconfigure.client.GrpcClientAutoConfiguration"
    })
@ConditionalOnClass(
    name = {
      "org.springframework.grpc.client.GlobalClientInterceptor",
      "org.springframework.grpc.client.GrpcChannelBuilderCustomizer",
      "org.springframework.grpc.client.ChannelCredentialsProvider"
    })
@ConditionalOnBean(CachingConnector.class)
public final class CachingConnectorSpringGrpcAutoConfiguration {

  /**
   * The first of the channel customizers (the connector's own ones come after Spring gRPC's), and
   * the default credentials.
   */
  @Bean
  @Order(Ordered.HIGHEST_PRECEDENCE)
  SpringGrpcChannels cachingConnectorSpringGrpcChannels(
      ListableBeanFactory beanFactory, Environment environment) {
    return new SpringGrpcChannels(
        beanFactory,
        environment.getProperty("grpc.connector.observation.enabled", Boolean.class, true));
  }
}
