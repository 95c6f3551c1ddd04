package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.concurrent.TimeUnit.NANOSECONDS;

import io.grpc.ManagedChannelBuilder;
import java.time.Duration;
import java.util.Objects;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.context.properties.PropertyMapper;
import org.springframework.util.StringUtils;
import org.springframework.util.unit.DataSize;

/**
 * The channel options in effect for an address: the global {@code grpc.connector.channel.*} ones,
 * or those of the matching {@code grpc.connector.targets.<name>} over them. Immutable.
 *
 * @param sslBundleProperty the property that named {@code sslBundle}, for start-up errors
 * @param keepalive whether the channels send keepalive pings; when false the other keepalive
 *     options are not applied (grpc-java's default: no pings)
 */
record ChannelOptions(
    boolean plaintext,
    @Nullable String sslBundle,
    String sslBundleProperty,
    @Nullable Duration idleTimeout,
    boolean keepalive,
    @Nullable Duration keepaliveTime,
    @Nullable Duration keepaliveTimeout,
    boolean keepaliveWithoutCalls,
    @Nullable DataSize maxInboundMessageSize,
    @Nullable DataSize maxInboundMetadataSize,
    @Nullable String userAgent,
    @Nullable String loadBalancingPolicy) {

  /**
   * Maps only the options that are set: Boot 3.5's mapper, which the starter also runs on, passes
   * null values on unless filtered, and its {@code whenNonNull()} is gone from Boot 4.
   */
  private static final PropertyMapper MAP =
      PropertyMapper.get().alwaysApplying(ChannelOptions::whenSet);

  /** The global options. */
  static ChannelOptions of(ChannelProperties channel) {
    String bundle = channel.getSsl().getBundle();
    return new ChannelOptions(
        Boolean.TRUE.equals(channel.getPlaintext()),
        StringUtils.hasText(bundle) ? bundle : null,
        CachingConnectorProperties.PREFIX + ".channel.ssl.bundle",
        channel.getIdle().getTimeout(),
        Boolean.TRUE.equals(channel.getKeepalive().getEnabled()),
        channel.getKeepalive().getTime(),
        channel.getKeepalive().getTimeout(),
        Boolean.TRUE.equals(channel.getKeepalive().getWithoutCalls()),
        channel.getInbound().getMessage().getMaxSize(),
        channel.getInbound().getMetadata().getMaxSize(),
        channel.getUserAgent(),
        channel.getDefault().getLoadBalancingPolicy());
  }

  /**
   * These options with those that {@code target} sets in their place. A target that names an SSL
   * bundle and does not set plaintext uses TLS, whatever the global plaintext; one that sets a
   * keepalive time and does not set keepalive.enabled has keepalive on, whatever the global switch.
   */
  ChannelOptions overriddenBy(String name, TargetProperties target) {
    String bundle = target.getSsl().getBundle();
    @Nullable Boolean targetPlaintext = target.getPlaintext();
    ChannelProperties.Keepalive targetKeepalive = target.getKeepalive();
    @Nullable Boolean withoutCalls = targetKeepalive.getWithoutCalls();
    @Nullable Boolean keepaliveOn = targetKeepalive.getEnabled();
    @Nullable DataSize messageSize = target.getInbound().getMessage().getMaxSize();
    @Nullable DataSize metadataSize = target.getInbound().getMetadata().getMaxSize();
    return new ChannelOptions(
        targetPlaintext != null ? targetPlaintext : (bundle == null && plaintext),
        bundle != null ? bundle : sslBundle,
        bundle != null
            ? CachingConnectorProperties.PREFIX + ".targets." + name + ".ssl.bundle"
            : sslBundleProperty,
        or(target.getIdle().getTimeout(), idleTimeout),
        keepaliveOn != null ? keepaliveOn : (targetKeepalive.getTime() != null || keepalive),
        or(targetKeepalive.getTime(), keepaliveTime),
        or(targetKeepalive.getTimeout(), keepaliveTimeout),
        withoutCalls != null ? withoutCalls : keepaliveWithoutCalls,
        or(messageSize, maxInboundMessageSize),
        or(metadataSize, maxInboundMetadataSize),
        or(target.getUserAgent(), userAgent),
        or(target.getDefault().getLoadBalancingPolicy(), loadBalancingPolicy));
  }

  private static <T> @Nullable T or(@Nullable T value, @Nullable T inherited) {
    return value != null ? value : inherited;
  }

  /** Sets every option but the credentials on {@code builder}. */
  void applyTo(ManagedChannelBuilder<?> builder) {
    MAP.from(idleTimeout).to(timeout -> builder.idleTimeout(timeout.toNanos(), NANOSECONDS));
    if (keepalive) {
      MAP.from(keepaliveTime).to(time -> builder.keepAliveTime(time.toNanos(), NANOSECONDS));
      MAP.from(keepaliveTimeout)
          .to(timeout -> builder.keepAliveTimeout(timeout.toNanos(), NANOSECONDS));
      MAP.from(keepaliveWithoutCalls).to(builder::keepAliveWithoutCalls);
    }
    MAP.from(maxInboundMessageSize)
        .to(size -> builder.maxInboundMessageSize(Math.toIntExact(size.toBytes())));
    MAP.from(maxInboundMetadataSize)
        .to(size -> builder.maxInboundMetadataSize(Math.toIntExact(size.toBytes())));
    MAP.from(userAgent).to(builder::userAgent);
    MAP.from(loadBalancingPolicy).to(builder::defaultLoadBalancingPolicy);
  }

  private static <T> PropertyMapper.Source<T> whenSet(PropertyMapper.Source<T> source) {
    return source.when(Objects::nonNull);
  }
}
