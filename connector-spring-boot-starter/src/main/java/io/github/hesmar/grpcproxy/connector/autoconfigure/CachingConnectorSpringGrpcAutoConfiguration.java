package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.grpc.ChannelCredentials;
import io.grpc.TlsChannelCredentials;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.context.annotation.Bean;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.grpc.client.ChannelCredentialsProvider;

/**
 * With Spring gRPC on the class path (Spring Boot 4.1's {@code spring-boot-grpc-client}, or
 * spring-grpc 1.0 on Boot 4.0), the default dialer's channels get what Spring gRPC's channels get:
 * the application's global client interceptors and {@code GrpcChannelBuilderCustomizer} beans (see
 * {@link SpringGrpcChannelCustomizer}), and the credentials of the application's {@code
 * ChannelCredentialsProvider} where the {@code grpc.connector.channel.*} options set none. Without
 * Spring gRPC this auto-configuration is skipped (its class conditions are read without loading the
 * class).
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

  /**
   * The application's {@link ChannelCredentialsProvider}, looked up at each channel creation so
   * that it may depend on the connector. Spring Boot's own provider is not used: it answers
   * plaintext unless {@code spring.grpc.client.channel.default.ssl.*} is set, which would silently
   * turn the connector's TLS default into plaintext.
   */
  @Bean
  DefaultChannelCredentials cachingConnectorSpringGrpcCredentials(
      ObjectProvider<ChannelCredentialsProvider> providers) {
    ChannelCredentials tls = TlsChannelCredentials.create();
    return address -> {
      ChannelCredentialsProvider provider = providers.getIfUnique();
      if (provider == null || SpringGrpcChannelCustomizer.isSpringGrpcOwn(provider)) {
        return tls;
      }
      ChannelCredentials credentials = provider.getChannelCredentials(address);
      if (credentials == null) {
        throw new IllegalStateException(
            provider + " gave no channel credentials for '" + address + "'");
      }
      return credentials;
    };
  }
}
