package io.github.hesmar.grpcproxy.connector;

import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * Receives the events of a {@link CachingConnector}, for metrics and logging. Register listeners
 * with {@link CachingConnector.Builder#listener(ConnectorListener)}; every method has an empty
 * default, so a listener overrides only what it needs.
 *
 * <p>Methods are called on the thread that caused the event (a dialing, releasing or expiring
 * thread, or the connector's dial executor and scheduler), possibly concurrently, and must be
 * thread-safe and fast: {@link #onConnect} runs on every {@link CachingConnector#dial dial}. Each
 * is called after the change it reports is complete, never inside it: an exception a listener
 * throws ({@link Error}s included) is logged and otherwise ignored, and a listener may call the
 * connector again. The one call that cannot work, a {@code dial} of the address whose dial is
 * running on the current thread (from {@link #onCacheMiss}), throws {@link IllegalStateException}
 * at once rather than wait for itself.
 */
public interface ConnectorListener {

  /**
   * Called on every dial, cached or not (the seed's {@code OnConnect}).
   *
   * @param address the address dialed
   */
  default void onConnect(String address) {}

  /**
   * Called once per channel creation, by the thread that runs the dial, before it calls the dialer
   * (the seed's {@code OnCacheMiss}).
   *
   * @param address the address about to be dialed
   */
  default void onCacheMiss(String address) {}

  /**
   * Called with the number of open channels (pending-close included) whenever it changes, up and
   * down (the seed's {@code OnConnectionCountUpdate}). Calls never overlap and arrive in order;
   * under concurrent changes intermediate values may be skipped, but once activity stops the last
   * value delivered equals {@link CachingConnector#connectionCount()}.
   *
   * @param count the number of open channels
   */
  default void onConnectionCountUpdate(int count) {}

  /**
   * Called when a call of the {@link Dialer} returns or throws.
   *
   * @param address the address dialed
   * @param duration how long the dialer took
   * @param failure what the dialer threw, or {@code null} if it returned a channel
   */
  default void onDialComplete(String address, Duration duration, @Nullable Throwable failure) {}

  /**
   * Called when the connector has closed a channel it created: after its {@code shutdown()} (its
   * calls may still be finishing, within the shutdown grace period), and, for the channels of one
   * {@link CachingConnector#expire()} pass, after the pass.
   *
   * @param address the address the channel was dialed for
   * @param cause why it is closed
   */
  default void onClose(String address, CloseCause cause) {}

  /**
   * Called once per call made on a lease, when its headers leave the channel's transport (or the
   * call ends before they do), with how long they waited there: queued behind the connection's
   * limit of concurrent streams, or for a moment for the transport's event loop. On a transport
   * thread: keep it short.
   *
   * @param address the address of the call's channel
   * @param queued how long the call's headers waited in the transport
   */
  default void onCallQueued(String address, Duration queued) {}

  /**
   * Called when a lease has been held longer than the {@link
   * CachingConnector.Builder#leakDetectionThreshold(Duration) leak detection threshold}; at most
   * once per lease.
   *
   * @param address the address of the leased channel
   * @param heldFor how long the lease had been held when detected
   */
  default void onLeak(String address, Duration heldFor) {}

  /** Why a {@link CachingConnector} closed a channel. */
  enum CloseCause {
    /** Unused for two consecutive {@link CachingConnector#expire() expiry passes}. */
    EXPIRED,
    /**
     * Detached by {@link CachingConnector#closeOnRelease(String)}, and closed after its last lease
     * was released.
     */
    RELEASED,
    /** Found shut down by someone other than the connector, and dropped. */
    STALE,
    /** The connector was {@linkplain CachingConnector#close() closed}. */
    SHUTDOWN,
    /**
     * Closed while idle to make room for a new channel under {@link
     * CachingConnector.Builder#maximumChannels(int) the bound}.
     */
    EVICTED,
    /**
     * Detached past {@link CachingConnector.Builder#maxChannelAge(Duration) the maximum age}, and
     * closed after its last lease was released and its last call ended.
     */
    MAX_AGE,
    /**
     * Found silent (calls ran into their deadlines while nothing arrived from the server, see
     * {@link CachingConnector.Builder#silentChannel(int, Duration)}), detached, and closed after
     * its last lease was released and its last call ended.
     */
    UNHEALTHY
  }
}
