package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.TlsChannelCredentials;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.ssl.SslBundle;

/**
 * The starter's default dialer: {@link Grpc#newChannelBuilder(String, ChannelCredentials)} with the
 * {@code grpc.connector.channel.*} options, then every {@link ChannelBuilderCustomizer}. Immutable
 * and thread-safe.
 */
final class ConfiguredDialer implements Dialer {

  private final ChannelCredentials credentials;
  private final CachingConnectorProperties.Channel options;
  private final List<ChannelBuilderCustomizer> customizers;

  ConfiguredDialer(
      ChannelCredentials credentials,
      CachingConnectorProperties.Channel options,
      List<ChannelBuilderCustomizer> customizers) {
    this.credentials = requireNonNull(credentials, "credentials");
    this.options = requireNonNull(options, "options");
    this.customizers = List.copyOf(customizers);
  }

  /**
   * The credentials the options ask for: plaintext, TLS with an SSL bundle's key and trust
   * material, or TLS with the JDK's defaults.
   */
  static ChannelCredentials credentials(
      CachingConnectorProperties.Channel options, @Nullable SslBundle bundle) {
    if (options.isPlaintext()) {
      return InsecureChannelCredentials.create();
    }
    if (bundle == null) {
      return TlsChannelCredentials.create();
    }
    return TlsChannelCredentials.newBuilder()
        .keyManager(bundle.getManagers().getKeyManagers())
        .trustManager(bundle.getManagers().getTrustManagers())
        .build();
  }

  @Override
  public ManagedChannel dial(String address) {
    ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(address, credentials);
    Duration idleTimeout = options.getIdle().getTimeout();
    if (idleTimeout != null) {
      builder.idleTimeout(idleTimeout.toNanos(), TimeUnit.NANOSECONDS);
    }
    CachingConnectorProperties.Channel.Keepalive keepalive = options.getKeepalive();
    if (keepalive.getTime() != null) {
      builder.keepAliveTime(keepalive.getTime().toNanos(), TimeUnit.NANOSECONDS);
    }
    if (keepalive.getTimeout() != null) {
      builder.keepAliveTimeout(keepalive.getTimeout().toNanos(), TimeUnit.NANOSECONDS);
    }
    builder.keepAliveWithoutCalls(keepalive.isWithoutCalls());
    builder.maxInboundMessageSize(
        Math.toIntExact(options.getInbound().getMessage().getMaxSize().toBytes()));
    builder.maxInboundMetadataSize(
        Math.toIntExact(options.getInbound().getMetadata().getMaxSize().toBytes()));
    if (options.getUserAgent() != null) {
      builder.userAgent(options.getUserAgent());
    }
    String policy = options.getDefault().getLoadBalancingPolicy();
    if (policy != null) {
      builder.defaultLoadBalancingPolicy(policy);
    }
    for (ChannelBuilderCustomizer customizer : customizers) {
      customizer.customize(address, builder);
    }
    return builder.build();
  }

  @Override
  public String toString() {
    return "ConfiguredDialer[plaintext=" + options.isPlaintext() + "]";
  }
}
