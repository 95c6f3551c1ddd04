package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;

/**
 * Customizes the {@link CachingConnector.Builder} of the auto-configured connector, after the
 * {@code grpc.connector.*} properties are applied: to add listeners, or set a clock, scheduler or
 * dial executor. Declare one or more as beans; they are applied in {@link
 * org.springframework.core.annotation.Order order}.
 */
@FunctionalInterface
public interface CachingConnectorBuilderCustomizer {

  /**
   * Customizes the builder.
   *
   * @param builder the builder of the auto-configured connector
   */
  void customize(CachingConnector.Builder builder);
}
