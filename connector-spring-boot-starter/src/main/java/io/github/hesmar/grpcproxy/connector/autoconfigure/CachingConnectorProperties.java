package io.github.hesmar.grpcproxy.connector.autoconfigure;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.NestedConfigurationProperty;
import org.springframework.util.StringUtils;
import org.springframework.util.unit.DataSize;
import org.springframework.validation.Errors;
import org.springframework.validation.Validator;

/**
 * Configuration properties of the auto-configured {@link
 * io.github.hesmar.grpcproxy.connector.CachingConnector}, under {@code grpc.connector}.
 *
 * <p>The channel options apply to the default dialer only (not to a user's {@link
 * io.github.hesmar.grpcproxy.connector.Dialer} bean) and reuse the key names of Spring Boot's gRPC
 * client channels. Unset options keep grpc-java's defaults.
 *
 * <p>The properties validate themselves when bound: a bad value stops start-up with a message
 * naming the property. Not thread-safe; bound once at start-up.
 */
@ConfigurationProperties(CachingConnectorProperties.PREFIX)
public class CachingConnectorProperties implements Validator {

  /** The prefix of these properties. */
  public static final String PREFIX = "grpc.connector";

  /** Whether to auto-configure the CachingConnector bean. */
  private boolean enabled = true;

  /**
   * How long a lease may be held before it is reported as a leak (logged and counted). Unset or
   * zero: off.
   */
  private @Nullable Duration leakDetectionThreshold;

  /**
   * How long a dial may be in flight: a dialer that has not returned a channel by then is
   * abandoned, the callers waiting for it fail with DEADLINE_EXCEEDED, and the next dial of the
   * address starts a new one. A channel the abandoned dialer returns later is shut down.
   */
  private @Nullable Duration dialTimeout = Duration.ofSeconds(30);

  /**
   * Most channels open at once, over all addresses, for a proxy that dials an unbounded set of
   * addresses. Before a dial creates a channel past it, idle channels (no lease, no call in flight)
   * are closed, least recently used first; a channel in use is never closed, so while every channel
   * is in use the bound is exceeded. Unset: unbounded.
   */
  private @Nullable Integer maximumChannels;

  /**
   * Age past which a channel is retired (give or take 10 %): the first expiry pass after it
   * detaches the channel, new dials get a new channel (the address is resolved again and
   * connections rebalance behind L4 load balancers), and the old one closes once its leases and
   * calls have ended. Unset: channels are never retired for their age.
   */
  private @Nullable Duration maxChannelAge;

  private final Expiry expiry = new Expiry();

  private final Pool pool = new Pool();

  private final SilentChannel silentChannel = new SilentChannel();

  private final Shutdown shutdown = new Shutdown();

  @NestedConfigurationProperty private final ChannelProperties channel = new ChannelProperties();

  /**
   * Channel options for the addresses matching a pattern, by target name: the target's pattern
   * (pattern: a glob where * matches any run of characters and ? one character, or regex: and a
   * Java regular expression; either over the whole address) and any of the channel.* keys
   * (plaintext, ssl.bundle, idle.timeout, keepalive.*, inbound.*, user-agent,
   * default.load-balancing-policy), which replace the global ones for those addresses; an unset key
   * keeps the global value. The first target whose pattern matches an address wins, in declaration
   * order.
   */
  private final Map<String, TargetProperties> targets = new LinkedHashMap<>();

  private final Observation observation = new Observation();

  private final Health health = new Health();

  public boolean isEnabled() {
    return this.enabled;
  }

  public void setEnabled(boolean enabled) {
    this.enabled = enabled;
  }

  public @Nullable Duration getLeakDetectionThreshold() {
    return this.leakDetectionThreshold;
  }

  public void setLeakDetectionThreshold(@Nullable Duration leakDetectionThreshold) {
    this.leakDetectionThreshold = leakDetectionThreshold;
  }

  public @Nullable Duration getDialTimeout() {
    return this.dialTimeout;
  }

  public void setDialTimeout(@Nullable Duration dialTimeout) {
    this.dialTimeout = dialTimeout;
  }

  public @Nullable Integer getMaximumChannels() {
    return this.maximumChannels;
  }

  public void setMaximumChannels(@Nullable Integer maximumChannels) {
    this.maximumChannels = maximumChannels;
  }

  public @Nullable Duration getMaxChannelAge() {
    return this.maxChannelAge;
  }

  public void setMaxChannelAge(@Nullable Duration maxChannelAge) {
    this.maxChannelAge = maxChannelAge;
  }

  public Expiry getExpiry() {
    return this.expiry;
  }

  public Pool getPool() {
    return this.pool;
  }

  public SilentChannel getSilentChannel() {
    return this.silentChannel;
  }

  public Shutdown getShutdown() {
    return this.shutdown;
  }

  public ChannelProperties getChannel() {
    return this.channel;
  }

  /**
   * Returns the targets, in declaration order: the order of a properties or YAML file; targets from
   * a source of higher precedence (the command line, for example) come before those of one of lower
   * precedence. Command-line arguments and environment variables have no order among themselves
   * (Spring keeps them in hash maps): declare targets whose patterns overlap in one file.
   *
   * @return the targets by name, a mutable {@link LinkedHashMap}
   */
  public Map<String, TargetProperties> getTargets() {
    return this.targets;
  }

  public Observation getObservation() {
    return this.observation;
  }

  public Health getHealth() {
    return this.health;
  }

  @Override
  public boolean supports(Class<?> type) {
    return CachingConnectorProperties.class.isAssignableFrom(type);
  }

  /**
   * Rejects values the connector or grpc-java would refuse later. Each message starts with the full
   * property name, so that the start-up failure says which property to fix.
   */
  @Override
  public void validate(Object target, Errors errors) {
    CachingConnectorProperties properties = (CachingConnectorProperties) target;
    Duration interval = properties.expiry.interval;
    if (interval == null || interval.isNegative() || interval.isZero()) {
      reject(errors, "expiry.interval", "expiry.interval", "must be positive, for example 30s");
    }
    notNegative(
        errors,
        "leakDetectionThreshold",
        "leak-detection-threshold",
        properties.leakDetectionThreshold);
    Duration dialTimeout = properties.dialTimeout;
    if (dialTimeout == null || dialTimeout.isNegative() || dialTimeout.isZero()) {
      reject(errors, "dialTimeout", "dial-timeout", "must be positive, for example 30s");
    }
    Integer maximumChannels = properties.maximumChannels;
    if (maximumChannels != null) {
      positive(errors, "maximumChannels", "maximum-channels", maximumChannels, 1000);
    }
    Duration maxChannelAge = properties.maxChannelAge;
    if (maxChannelAge != null && (maxChannelAge.isNegative() || maxChannelAge.isZero())) {
      reject(
          errors,
          "maxChannelAge",
          "max-channel-age",
          "must be positive, was " + maxChannelAge + " (for example 30m)");
    }
    positive(
        errors,
        "pool.maxCallsPerChannel",
        "pool.max-calls-per-channel",
        properties.pool.maxCallsPerChannel,
        100);
    positive(
        errors,
        "pool.maxChannelsPerAddress",
        "pool.max-channels-per-address",
        properties.pool.maxChannelsPerAddress,
        8);
    positive(
        errors,
        "silentChannel.failedCalls",
        "silent-channel.failed-calls",
        properties.silentChannel.failedCalls,
        3);
    Duration silence = properties.silentChannel.silence;
    if (silence == null) {
      reject(
          errors,
          "silentChannel.silence",
          "silent-channel.silence",
          "must be set, for example 10s");
    } else if (silence.toMillis() <= 0) {
      reject(
          errors,
          "silentChannel.silence",
          "silent-channel.silence",
          "must be at least 1ms, was " + silence + " (for example 10s)");
    }
    if (properties.observation.maxMethodTags < 0) {
      reject(
          errors,
          "observation.maxMethodTags",
          "observation.max-method-tags",
          "must not be negative, was "
              + properties.observation.maxMethodTags
              + " (for example 100)");
    }
    Duration gracePeriod = properties.shutdown.gracePeriod;
    if (gracePeriod == null || gracePeriod.isNegative()) {
      reject(
          errors,
          "shutdown.gracePeriod",
          "shutdown.grace-period",
          "must not be negative, for example 30s");
    }
    ChannelProperties channel = properties.channel;
    positive(
        errors, "channel.idle.timeout", "channel.idle.timeout", channel.getIdle().getTimeout());
    positive(
        errors,
        "channel.keepalive.time",
        "channel.keepalive.time",
        channel.getKeepalive().getTime());
    positive(
        errors,
        "channel.keepalive.timeout",
        "channel.keepalive.timeout",
        channel.getKeepalive().getTimeout());
    positiveInt(
        errors,
        "channel.inbound.message.maxSize",
        "channel.inbound.message.max-size",
        channel.getInbound().getMessage().getMaxSize());
    positiveInt(
        errors,
        "channel.inbound.metadata.maxSize",
        "channel.inbound.metadata.max-size",
        channel.getInbound().getMetadata().getMaxSize());
    if (Boolean.TRUE.equals(channel.getPlaintext())
        && StringUtils.hasText(channel.getSsl().getBundle())) {
      reject(
          errors,
          "channel.ssl.bundle",
          "channel.ssl.bundle",
          "must not be set when " + PREFIX + ".channel.plaintext is true");
    }
    String userAgent = channel.getUserAgent();
    if (userAgent != null && !StringUtils.hasText(userAgent)) {
      reject(errors, "channel.userAgent", "channel.user-agent", "must not be blank");
    }
    String policy = channel.getDefault().getLoadBalancingPolicy();
    if (policy != null && !StringUtils.hasText(policy)) {
      reject(
          errors,
          "channel.default.loadBalancingPolicy",
          "channel.default.load-balancing-policy",
          "must not be blank");
    }
    properties.targets.forEach((name, options) -> options.validate(name, errors));
  }

  private static void reject(Errors errors, String field, String property, String message) {
    errors.rejectValue(field, "invalid", PREFIX + "." + property + " " + message);
  }

  private static void notNegative(
      Errors errors, String field, String property, @Nullable Duration value) {
    if (value != null && value.isNegative()) {
      reject(errors, field, property, "must not be negative");
    }
  }

  private static void positive(
      Errors errors, String field, String property, @Nullable Duration value) {
    if (value != null && (value.isNegative() || value.isZero())) {
      reject(errors, field, property, "must be positive");
    }
  }

  private static void positive(
      Errors errors, String field, String property, int value, int example) {
    if (value <= 0) {
      reject(
          errors,
          field,
          property,
          "must be positive, was " + value + " (for example " + example + ")");
    }
  }

  private static void positiveInt(
      Errors errors, String field, String property, @Nullable DataSize value) {
    if (value != null && (value.toBytes() <= 0 || value.toBytes() > Integer.MAX_VALUE)) {
      reject(errors, field, property, "must be between 1B and 2047MB");
    }
  }

  /** Scheduled expiry. */
  public static class Expiry {

    /**
     * Whether to call expire() on a schedule. When on, the starter enables Spring's scheduling
     * (@EnableScheduling) for the application.
     */
    private boolean enabled = true;

    /**
     * Delay between the end of one expiry pass and the start of the next. An unused channel closes
     * at the second pass that finds it unused.
     */
    private @Nullable Duration interval = Duration.ofSeconds(30);

    public boolean isEnabled() {
      return this.enabled;
    }

    public void setEnabled(boolean enabled) {
      this.enabled = enabled;
    }

    public @Nullable Duration getInterval() {
      return this.interval;
    }

    public void setInterval(@Nullable Duration interval) {
      this.interval = interval;
    }
  }

  /**
   * The channels of one address. Calls to one address share a channel; past a number of calls in
   * flight the connector opens another channel (another HTTP/2 connection) to the same address.
   */
  public static class Pool {

    /**
     * Calls in flight at which a channel counts as full: a dial of an address whose channels are
     * all full opens one more channel. Match it to the smallest limit of concurrent streams per
     * HTTP/2 connection on the way to the backends (servers and proxies commonly allow 100; past it
     * grpc-java queues calls inside the channel, silently).
     */
    private int maxCallsPerChannel = 100;

    /**
     * Most channels per address. Past it, dials lease the least-loaded full channel. 1 gives one
     * channel per address, as the Go package does.
     */
    private int maxChannelsPerAddress = 8;

    public int getMaxCallsPerChannel() {
      return this.maxCallsPerChannel;
    }

    public void setMaxCallsPerChannel(int maxCallsPerChannel) {
      this.maxCallsPerChannel = maxCallsPerChannel;
    }

    public int getMaxChannelsPerAddress() {
      return this.maxChannelsPerAddress;
    }

    public void setMaxChannelsPerAddress(int maxChannelsPerAddress) {
      this.maxChannelsPerAddress = maxChannelsPerAddress;
    }
  }

  /**
   * Channels whose connection went silent: it stopped carrying anything from the server without
   * closing (a dropped NAT or load-balancer entry, a frozen backend), so the channel stays READY
   * and every call on it runs into its deadline. Such a channel is retired, as one past its maximum
   * age is: new dials get a fresh channel, and the old one closes once its leases and calls have
   * ended (counted in grpc.connector.channels.closed with cause unhealthy). An address retires at
   * most half its channels (at least one) between two expiry passes.
   */
  public static class SilentChannel {

    /**
     * Whether to retire silent channels. Off: failed calls are not counted and no probe is sent, so
     * a silent channel stays until its connection closes (keepalive, see channel.keepalive.*) or it
     * expires.
     */
    private boolean retire = true;

    /**
     * Calls in a row on a channel that must end DEADLINE_EXCEEDED (or UNAVAILABLE because keepalive
     * failed), with nothing from the server in between, before the channel counts as silent.
     */
    private int failedCalls = 3;

    /**
     * How long the server must stay silent: the first failed call of a run sends one probe (a
     * grpc.health.v1.Health/Check call, which any live gRPC server answers, if only with
     * UNIMPLEMENTED) with this deadline; the channel counts as silent only if the probe heard
     * nothing. A backend that is merely slow answers the probe and is never retired.
     */
    private @Nullable Duration silence = Duration.ofSeconds(10);

    public boolean isRetire() {
      return this.retire;
    }

    public void setRetire(boolean retire) {
      this.retire = retire;
    }

    public int getFailedCalls() {
      return this.failedCalls;
    }

    public void setFailedCalls(int failedCalls) {
      this.failedCalls = failedCalls;
    }

    public @Nullable Duration getSilence() {
      return this.silence;
    }

    public void setSilence(@Nullable Duration silence) {
      this.silence = silence;
    }
  }

  /** Closing of the connector with the application context. */
  public static class Shutdown {

    /**
     * How long closing channels may take to finish their calls before they are forced; the
     * connector's close waits at most this long.
     */
    private @Nullable Duration gracePeriod = Duration.ofSeconds(30);

    public @Nullable Duration getGracePeriod() {
      return this.gracePeriod;
    }

    public void setGracePeriod(@Nullable Duration gracePeriod) {
      this.gracePeriod = gracePeriod;
    }
  }

  /** Micrometer observation of the calls on channels built by the default dialer. */
  public static class Observation {

    /**
     * Whether channels built by the default dialer get Micrometer's
     * ObservationGrpcClientInterceptor (per-call metrics and traces) when an ObservationRegistry
     * bean exists.
     */
    private boolean enabled = true;

    /**
     * Most distinct gRPC methods (service and method pairs) tagged on the grpc.client meters of the
     * application; a meter for another method is not registered, so a proxy's callers cannot grow
     * the meter registry without bound. The peer tags (net.peer.name, net.peer.port) are removed
     * from these meters. Zero: no grpc.client meters at all.
     */
    private int maxMethodTags = 100;

    public boolean isEnabled() {
      return this.enabled;
    }

    public void setEnabled(boolean enabled) {
      this.enabled = enabled;
    }

    public int getMaxMethodTags() {
      return this.maxMethodTags;
    }

    public void setMaxMethodTags(int maxMethodTags) {
      this.maxMethodTags = maxMethodTags;
    }
  }

  /** The grpcConnector health contributor. */
  public static class Health {

    /**
     * Whether an address all of whose channels are in TRANSIENT_FAILURE makes the grpcConnector
     * health DOWN (one failing channel beside a working sibling does not). Off by default: a
     * backend being down does not make this application down; the health lists such addresses, with
     * since when, either way.
     */
    private boolean downOnTransientFailure = false;

    public boolean isDownOnTransientFailure() {
      return this.downOnTransientFailure;
    }

    public void setDownOnTransientFailure(boolean downOnTransientFailure) {
      this.downOnTransientFailure = downOnTransientFailure;
    }
  }
}
