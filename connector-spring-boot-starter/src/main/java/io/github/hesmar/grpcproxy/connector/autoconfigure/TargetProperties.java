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
public class TargetProperties extends ChannelProperties {

  /**
   * The addresses these options apply to, matched against the whole address as dialed. A glob by
   * default: '*' matches any run of characters (':' and '/' included), '?' one character, anything
   * else itself, for example 127.0.0.1:* or dns:///*.internal:443. With the prefix regex:, a Java
   * regular expression that must match the whole address, for example
   * regex:(localhost|127\.0\.0\.1):\d+.
   */
  private @Nullable String pattern;

  /** Creates a target that sets no option. */
  public TargetProperties() {
    unsetDefaults();
  }

  public @Nullable String getPattern() {
    return this.pattern;
  }

  public void setPattern(@Nullable String pattern) {
    this.pattern = pattern;
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
    String bundle = getSsl().getBundle();
    if (bundle != null && !StringUtils.hasText(bundle)) {
      reject(errors, prefix + "ssl.bundle", "must not be blank");
    }
    if (Boolean.TRUE.equals(getPlaintext()) && bundle != null) {
      reject(
          errors,
          prefix + "ssl.bundle",
          "must not be set when " + prefix + "plaintext is true, was '" + bundle + "'");
    }
    positive(errors, prefix + "idle.timeout", getIdle().getTimeout());
    positive(errors, prefix + "keepalive.time", getKeepalive().getTime());
    positive(errors, prefix + "keepalive.timeout", getKeepalive().getTimeout());
    intSize(errors, prefix + "inbound.message.max-size", getInbound().getMessage().getMaxSize());
    intSize(errors, prefix + "inbound.metadata.max-size", getInbound().getMetadata().getMaxSize());
    String userAgent = getUserAgent();
    if (userAgent != null && !StringUtils.hasText(userAgent)) {
      reject(errors, prefix + "user-agent", "must not be blank");
    }
    String policy = getDefault().getLoadBalancingPolicy();
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
    return getPlaintext() != null
        || getSsl().getBundle() != null
        || getIdle().getTimeout() != null
        || getKeepalive().getEnabled() != null
        || getKeepalive().getTime() != null
        || getKeepalive().getTimeout() != null
        || getKeepalive().getWithoutCalls() != null
        || getInbound().getMessage().getMaxSize() != null
        || getInbound().getMetadata().getMaxSize() != null
        || getUserAgent() != null
        || getDefault().getLoadBalancingPolicy() != null;
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
}
