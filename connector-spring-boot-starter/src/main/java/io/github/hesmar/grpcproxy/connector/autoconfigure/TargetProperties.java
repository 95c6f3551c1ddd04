package io.github.hesmar.grpcproxy.connector.autoconfigure;

import java.time.Duration;
import org.jspecify.annotations.Nullable;
import org.springframework.util.StringUtils;
import org.springframework.util.unit.DataSize;
import org.springframework.validation.Errors;

/**
 * Channel options for the addresses that match a pattern, under {@code
 * grpc.connector.targets.<name>}: the {@link #getPattern() pattern} plus any of the {@code
 * grpc.connector.channel.*} keys. A key left unset here (null) takes the global {@code
 * grpc.connector.channel.*} value; the first target whose pattern matches an address wins, in
 * declaration order (see {@link CachingConnectorProperties#getTargets()}).
 *
 * <p>Validated with the other properties (see {@link CachingConnectorProperties#validate}). Not
 * thread-safe; bound once at start-up.
 */
public class TargetProperties {

  /**
   * The addresses these options apply to, matched against the whole address as dialed. A glob by
   * default: '*' matches any run of characters (':' and '/' included), '?' one character, anything
   * else itself, for example 127.0.0.1:* or dns:///*.internal:443. With the prefix regex:, a Java
   * regular expression that must match the whole address, for example
   * regex:(localhost|127\.0\.0\.1):\d+.
   */
  private @Nullable String pattern;

  /** Whether to use plaintext (no TLS) instead of TLS. Unset: the global channel.plaintext. */
  private @Nullable Boolean plaintext;

  private final Ssl ssl = new Ssl();

  private final Idle idle = new Idle();

  private final Keepalive keepalive = new Keepalive();

  private final Inbound inbound = new Inbound();

  /** User agent sent by the channels. Unset: the global channel.user-agent. */
  private @Nullable String userAgent;

  private final Default defaults = new Default();

  public @Nullable String getPattern() {
    return this.pattern;
  }

  public void setPattern(@Nullable String pattern) {
    this.pattern = pattern;
  }

  public @Nullable Boolean getPlaintext() {
    return this.plaintext;
  }

  public void setPlaintext(@Nullable Boolean plaintext) {
    this.plaintext = plaintext;
  }

  public Ssl getSsl() {
    return this.ssl;
  }

  public Idle getIdle() {
    return this.idle;
  }

  public Keepalive getKeepalive() {
    return this.keepalive;
  }

  public Inbound getInbound() {
    return this.inbound;
  }

  public @Nullable String getUserAgent() {
    return this.userAgent;
  }

  public void setUserAgent(@Nullable String userAgent) {
    this.userAgent = userAgent;
  }

  /**
   * Returns the {@code default.*} options.
   *
   * @return the default options
   */
  public Default getDefault() {
    return this.defaults;
  }

  /**
   * Rejects what the dialer would refuse, each message starting with the full property name and
   * saying the value. Called by {@link CachingConnectorProperties#validate}.
   */
  void validate(String name, Errors errors) {
    String prefix = CachingConnectorProperties.PREFIX + ".targets." + name + ".";
    if (pattern == null) {
      reject(
          errors,
          prefix + "pattern",
          "must be set, for example 127.0.0.1:* or regex:.*\\.internal:443");
    } else {
      try {
        AddressPattern.compile(pattern);
      } catch (IllegalArgumentException e) {
        reject(errors, prefix + "pattern", e.getMessage());
      }
    }
    String bundle = ssl.bundle;
    if (bundle != null && !StringUtils.hasText(bundle)) {
      reject(errors, prefix + "ssl.bundle", "must not be blank");
    }
    if (Boolean.TRUE.equals(plaintext) && bundle != null) {
      reject(
          errors,
          prefix + "ssl.bundle",
          "must not be set when " + prefix + "plaintext is true, was '" + bundle + "'");
    }
    positive(errors, prefix + "idle.timeout", idle.timeout);
    positive(errors, prefix + "keepalive.time", keepalive.time);
    positive(errors, prefix + "keepalive.timeout", keepalive.timeout);
    intSize(errors, prefix + "inbound.message.max-size", inbound.message.maxSize);
    intSize(errors, prefix + "inbound.metadata.max-size", inbound.metadata.maxSize);
    if (userAgent != null && !StringUtils.hasText(userAgent)) {
      reject(errors, prefix + "user-agent", "must not be blank");
    }
    String policy = defaults.loadBalancingPolicy;
    if (policy != null && !StringUtils.hasText(policy)) {
      reject(errors, prefix + "default.load-balancing-policy", "must not be blank");
    }
    if (pattern != null && !setsAnyOption()) {
      // Most likely a misspelt key (unknown keys are ignored when binding), e.g. channel.plaintext.
      reject(
          errors,
          prefix + "pattern",
          "is set but the target sets no channel option (plaintext, ssl.bundle, idle.timeout,"
              + " keepalive.*, inbound.*, user-agent, default.load-balancing-policy): check its"
              + " keys");
    }
  }

  private boolean setsAnyOption() {
    return plaintext != null
        || ssl.bundle != null
        || idle.timeout != null
        || keepalive.time != null
        || keepalive.timeout != null
        || keepalive.withoutCalls != null
        || inbound.message.maxSize != null
        || inbound.metadata.maxSize != null
        || userAgent != null
        || defaults.loadBalancingPolicy != null;
  }

  private static void reject(Errors errors, String property, @Nullable String message) {
    // A global error: the target's name may not be usable in a field path.
    errors.reject("invalid", property + " " + message);
  }

  private static void positive(Errors errors, String property, @Nullable Duration value) {
    if (value != null && (value.isNegative() || value.isZero())) {
      reject(errors, property, "must be positive, was " + value);
    }
  }

  private static void intSize(Errors errors, String property, @Nullable DataSize value) {
    if (value != null && (value.toBytes() <= 0 || value.toBytes() > Integer.MAX_VALUE)) {
      reject(errors, property, "must be between 1B and 2047MB, was " + value);
    }
  }

  /** TLS material of the target's channels. */
  public static class Ssl {

    /**
     * Name of a Spring Boot SSL bundle (spring.ssl.bundle.*), resolved at start-up. Unset: the
     * global channel.ssl.bundle.
     */
    private @Nullable String bundle;

    public @Nullable String getBundle() {
      return this.bundle;
    }

    public void setBundle(@Nullable String bundle) {
      this.bundle = bundle;
    }
  }

  /** Idle mode of the target's channels. */
  public static class Idle {

    /**
     * How long a channel may have no calls before its transport is released. Unset: the global
     * channel.idle.timeout.
     */
    private @Nullable Duration timeout;

    public @Nullable Duration getTimeout() {
      return this.timeout;
    }

    public void setTimeout(@Nullable Duration timeout) {
      this.timeout = timeout;
    }
  }

  /** HTTP/2 keepalive pings of the target's channels. */
  public static class Keepalive {

    /** Delay between keepalive pings. Unset: the global channel.keepalive.time. */
    private @Nullable Duration time;

    /**
     * How long to wait for a ping's acknowledgement. Unset: the global channel.keepalive.timeout.
     */
    private @Nullable Duration timeout;

    /**
     * Whether to send keepalive pings while there are no calls. Unset: the global
     * channel.keepalive.without-calls.
     */
    private @Nullable Boolean withoutCalls;

    public @Nullable Duration getTime() {
      return this.time;
    }

    public void setTime(@Nullable Duration time) {
      this.time = time;
    }

    public @Nullable Duration getTimeout() {
      return this.timeout;
    }

    public void setTimeout(@Nullable Duration timeout) {
      this.timeout = timeout;
    }

    public @Nullable Boolean getWithoutCalls() {
      return this.withoutCalls;
    }

    public void setWithoutCalls(@Nullable Boolean withoutCalls) {
      this.withoutCalls = withoutCalls;
    }
  }

  /** Limits on what the target's channels receive. */
  public static class Inbound {

    private final Message message = new Message();

    private final Metadata metadata = new Metadata();

    public Message getMessage() {
      return this.message;
    }

    public Metadata getMetadata() {
      return this.metadata;
    }

    /** Limits on received messages. */
    public static class Message {

      /** Largest message a channel accepts. Unset: the global channel.inbound.message.max-size. */
      private @Nullable DataSize maxSize;

      public @Nullable DataSize getMaxSize() {
        return this.maxSize;
      }

      public void setMaxSize(@Nullable DataSize maxSize) {
        this.maxSize = maxSize;
      }
    }

    /** Limits on received metadata. */
    public static class Metadata {

      /**
       * Largest metadata (headers and trailers) a channel accepts. Unset: the global
       * channel.inbound.metadata.max-size.
       */
      private @Nullable DataSize maxSize;

      public @Nullable DataSize getMaxSize() {
        return this.maxSize;
      }

      public void setMaxSize(@Nullable DataSize maxSize) {
        this.maxSize = maxSize;
      }
    }
  }

  /** Defaults of the target's channels' service config. */
  public static class Default {

    /**
     * Load-balancing policy, for example round_robin. Unset: the global
     * channel.default.load-balancing-policy.
     */
    private @Nullable String loadBalancingPolicy;

    public @Nullable String getLoadBalancingPolicy() {
      return this.loadBalancingPolicy;
    }

    public void setLoadBalancingPolicy(@Nullable String loadBalancingPolicy) {
      this.loadBalancingPolicy = loadBalancingPolicy;
    }
  }
}
