package io.github.hesmar.grpcproxy.connector.autoconfigure;

import java.time.Duration;
import org.jspecify.annotations.Nullable;
import org.springframework.util.unit.DataSize;

/**
 * Options of the channels built by the default dialer: the global ones under {@code
 * grpc.connector.channel}, with the defaults documented on each, and those of a target (see {@link
 * TargetProperties}), where every option starts unset (null) and an option left unset takes the
 * global value.
 *
 * <p>Not thread-safe; bound once at start-up.
 */
public class ChannelProperties {

  /** Whether to use plaintext (no TLS) instead of TLS. For loopback and development only. */
  private @Nullable Boolean plaintext = false;

  private final Ssl ssl = new Ssl();

  private final Idle idle = new Idle();

  private final Keepalive keepalive = new Keepalive();

  private final Inbound inbound = new Inbound();

  /** User agent sent by the channels. Unset: grpc-java's. */
  private @Nullable String userAgent;

  private final Default defaults = new Default();

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
   * Unsets every option that has a default, so that none is set (a target's options). An option
   * given a default must be unset here too.
   */
  final void unsetDefaults() {
    this.plaintext = null;
    this.keepalive.enabled = null;
    this.keepalive.time = null;
    this.keepalive.timeout = null;
    this.keepalive.withoutCalls = null;
    this.inbound.message.maxSize = null;
    this.inbound.metadata.maxSize = null;
  }

  /** TLS material of the channels. */
  public static class Ssl {

    /**
     * Name of a Spring Boot SSL bundle (spring.ssl.bundle.*) giving the trust material and the
     * client certificate. Unset: the JDK's default trust store, no client certificate.
     */
    private @Nullable String bundle;

    public @Nullable String getBundle() {
      return this.bundle;
    }

    public void setBundle(@Nullable String bundle) {
      this.bundle = bundle;
    }
  }

  /** Idle mode of the channels. */
  public static class Idle {

    /**
     * How long a channel may have no calls before its transport is released (the channel stays
     * cached and reconnects on the next call). Unset: grpc-java's default (30 minutes).
     */
    private @Nullable Duration timeout;

    public @Nullable Duration getTimeout() {
      return this.timeout;
    }

    public void setTimeout(@Nullable Duration timeout) {
      this.timeout = timeout;
    }
  }

  /**
   * HTTP/2 keepalive pings of the channels, on by default: a connection that nothing arrives on for
   * {@code time} is pinged, and closed if the ping is not acknowledged within {@code timeout}, so
   * that a dead connection (a dropped NAT or load-balancer entry, a peer gone without a FIN) is
   * found instead of holding calls until their deadlines.
   */
  public static class Keepalive {

    /**
     * Whether to send keepalive pings. Off: grpc-java's default, no pings (time, timeout and
     * without-calls are then not applied).
     */
    private @Nullable Boolean enabled = true;

    /**
     * How long a connection may receive nothing before it is pinged. Not below the servers' minimum
     * (permitKeepAliveTime, 5 minutes by default in grpc-java and grpc-go): a client that pings
     * more often is sent GOAWAY too_many_pings and loses its connection.
     */
    private @Nullable Duration time = Duration.ofMinutes(5);

    /** How long to wait for a ping's acknowledgement before closing the connection. */
    private @Nullable Duration timeout = Duration.ofSeconds(20);

    /**
     * Whether to send keepalive pings while there are no calls. Servers refuse those by default
     * (permitKeepAliveWithoutCalls is false in grpc-java and grpc-go) and answer with GOAWAY
     * too_many_pings.
     */
    private @Nullable Boolean withoutCalls = false;

    public @Nullable Boolean getEnabled() {
      return this.enabled;
    }

    public void setEnabled(@Nullable Boolean enabled) {
      this.enabled = enabled;
    }

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

  /** Limits on what the channels receive. */
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

      /** Largest message a channel accepts. */
      private @Nullable DataSize maxSize = DataSize.ofMegabytes(4);

      public @Nullable DataSize getMaxSize() {
        return this.maxSize;
      }

      public void setMaxSize(@Nullable DataSize maxSize) {
        this.maxSize = maxSize;
      }
    }

    /** Limits on received metadata. */
    public static class Metadata {

      /** Largest metadata (headers and trailers) a channel accepts. */
      private @Nullable DataSize maxSize = DataSize.ofKilobytes(8);

      public @Nullable DataSize getMaxSize() {
        return this.maxSize;
      }

      public void setMaxSize(@Nullable DataSize maxSize) {
        this.maxSize = maxSize;
      }
    }
  }

  /** Defaults of the channels' service config. */
  public static class Default {

    /**
     * Load-balancing policy, for example pick_first or round_robin. Unset: grpc-java's
     * (pick_first).
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
