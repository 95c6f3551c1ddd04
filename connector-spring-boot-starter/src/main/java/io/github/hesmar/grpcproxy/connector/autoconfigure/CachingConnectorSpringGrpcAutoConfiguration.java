package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.context.annotation.Bean;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;

/**
 * With Spring gRPC on the class path (Spring Boot 4.1's {@code spring-boot-grpc-client}, or
 * spring-grpc 1.0 on Boot 4.0), the default dialer's channels get what Spring gRPC's channels get:
 * the application's global client interceptors and {@code GrpcChannelBuilderCustomizer} beans (see
 * {@link SpringGrpcChannelCustomizer}). Without Spring gRPC this auto-configuration does nothing.
 * Spring gRPC's types are named as strings here: this class loads without them.
 */
@AutoConfiguration(
    after = CachingConnectorAutoConfiguration.class,
    afterName = "org.springframework.boot.grpc.client.autoconfigure.GrpcClientAutoConfiguration")
@ConditionalOnClass(
    name = {
      "org.springframework.grpc.client.GlobalClientInterceptor",
      "org.springframework.grpc.client.GrpcChannelBuilderCustomizer"
    })
@ConditionalOnBean(CachingConnector.class)
public final class CachingConnectorSpringGrpcAutoConfiguration {

  /** First of the channel customizers: the connector's own ones come after Spring gRPC's. */
  @Bean
  @Order(Ordered.HIGHEST_PRECEDENCE)
  ChannelBuilderCustomizer cachingConnectorSpringGrpcCustomizer(ListableBeanFactory beanFactory) {
    return new SpringGrpcChannelCustomizer(beanFactory);
  }
}
