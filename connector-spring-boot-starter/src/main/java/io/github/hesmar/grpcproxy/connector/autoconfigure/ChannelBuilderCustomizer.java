package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.grpc.ManagedChannelBuilder;

/**
 * Customizes the {@link ManagedChannelBuilder} of every channel that the auto-configured default
 * dialer builds, after the {@code grpc.connector.channel.*} options are applied. Declare one or
 * more as beans; they are applied in {@link org.springframework.core.annotation.Order order}.
 * Ignored when the application provides its own {@link io.github.hesmar.grpcproxy.connector.Dialer}
 * bean.
 *
 * <p>Called on the connector's dial executor, possibly for several addresses at once: must be
 * thread-safe.
 */
@FunctionalInterface
public interface ChannelBuilderCustomizer {

  /**
   * Customizes the builder of a channel to {@code address}.
   *
   * @param address the target address being dialed
   * @param builder the builder, with the configured options applied; do not call {@code build()}
   */
  void customize(String address, ManagedChannelBuilder<?> builder);
}
