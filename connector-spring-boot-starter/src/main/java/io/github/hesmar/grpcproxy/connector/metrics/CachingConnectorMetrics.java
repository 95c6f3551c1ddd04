package io.github.hesmar.grpcproxy.connector.metrics;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectorListener;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;

/**
 * Micrometer meters of one {@link CachingConnector}, all tagged {@code name} and never with an
 * address (a proxy dials an unbounded set of addresses):
 *
 * <table>
 *   <caption>Meters</caption>
 *   <tr><th>name</th><th>type</th><th>extra tags</th></tr>
 *   <tr><td>{@value #DIALS}</td><td>counter</td><td></td></tr>
 *   <tr><td>{@value #CACHE_MISSES}</td><td>counter</td><td></td></tr>
 *   <tr><td>{@value #CONNECTIONS}</td><td>gauge</td><td></td></tr>
 *   <tr><td>{@value #CONNECTIONS_OVER_BOUND}</td><td>gauge, only with a bound</td><td></td></tr>
 *   <tr><td>{@value #LEASES}</td><td>gauge</td><td></td></tr>
 *   <tr><td>{@value #CALLS}</td><td>gauge</td><td></td></tr>
 *   <tr><td>{@value #DIAL_DURATION}</td><td>timer</td><td>{@code outcome}: success, failure</td></tr>
 *   <tr><td>{@value #CLOSES}</td><td>counter</td><td>{@code cause}: expired, released, stale,
 *       shutdown, evicted, max_age</td></tr>
 *   <tr><td>{@value #LEAKS}</td><td>counter</td><td></td></tr>
 * </table>
 *
 * <p>It is both the connector's {@link ConnectorListener}, which must be registered when the
 * connector is built, and the {@link MeterBinder} that registers the meters; the connector itself
 * is needed only by the {@value #LEASES} and {@value #CALLS} gauges and is looked up when they are
 * read:
 *
 * <pre>{@code
 * AtomicReference<CachingConnector> ref = new AtomicReference<>();
 * CachingConnectorMetrics metrics = new CachingConnectorMetrics(ref::get, "proxy", Tags.empty());
 * ref.set(CachingConnector.builder().listener(metrics).build());
 * metrics.bindTo(registry);
 * }</pre>
 *
 * <p>Events before {@link #bindTo} are not counted. Thread-safe; may be bound to several
 * registries.
 */
public final class CachingConnectorMetrics implements ConnectorListener, MeterBinder {

  /** Counter of dials, cached or not. */
  public static final String DIALS = "grpc.connector.dials";

  /** Counter of cache misses (channel creations). */
  public static final String CACHE_MISSES = "grpc.connector.cache.misses";

  /** Gauge of open channels. */
  public static final String CONNECTIONS = "grpc.connector.connections";

  /**
   * Gauge of open channels past the {@linkplain CachingConnector.Builder#maximumChannels(int)
   * bound}: above zero only when dials found no idle channel to close (the bound is soft: a channel
   * in use is never closed).
   */
  public static final String CONNECTIONS_OVER_BOUND = "grpc.connector.connections.over.bound";

  /** Gauge of outstanding leases. */
  public static final String LEASES = "grpc.connector.leases";

  /** Gauge of calls in flight, whether or not their lease was released. */
  public static final String CALLS = "grpc.connector.calls";

  /** Timer of the dialer's channel creation. */
  public static final String DIAL_DURATION = "grpc.connector.dial.duration";

  /** Counter of closed channels. */
  public static final String CLOSES = "grpc.connector.closes";

  /** Counter of detected lease leaks. */
  public static final String LEAKS = "grpc.connector.leaks";

  /** No bound, as the connector's default: no {@value #CONNECTIONS_OVER_BOUND} gauge. */
  private static final int UNBOUNDED = Integer.MAX_VALUE;

  private final Supplier<? extends @Nullable CachingConnector> connector;
  private final Tags tags;
  private final int maximumChannels;
  private final AtomicInteger connections = new AtomicInteger();
  private final List<Meters> bound = new CopyOnWriteArrayList<>();

  /**
   * Creates the meters of a connector.
   *
   * @param connector gives the connector for the {@value #LEASES} and {@value #CALLS} gauges when
   *     they are read; may return {@code null} (the gauges then read NaN)
   * @param name the value of the {@code name} tag, for example the connector's bean name
   * @param tags more tags for every meter
   */
  public CachingConnectorMetrics(
      Supplier<? extends @Nullable CachingConnector> connector, String name, Iterable<Tag> tags) {
    this(connector, name, tags, UNBOUNDED);
  }

  /**
   * Creates the meters of a connector built with a {@linkplain
   * CachingConnector.Builder#maximumChannels(int) bound}: they include the {@value
   * #CONNECTIONS_OVER_BOUND} gauge ({@link Integer#MAX_VALUE}, the connector's unbounded default,
   * gives none).
   *
   * @param connector gives the connector for the {@value #LEASES} and {@value #CALLS} gauges when
   *     they are read; may return {@code null} (the gauges then read NaN)
   * @param name the value of the {@code name} tag, for example the connector's bean name
   * @param tags more tags for every meter
   * @param maximumChannels the connector's bound; positive
   * @throws IllegalArgumentException if {@code maximumChannels} is not positive
   */
  public CachingConnectorMetrics(
      Supplier<? extends @Nullable CachingConnector> connector,
      String name,
      Iterable<Tag> tags,
      int maximumChannels) {
    if (maximumChannels <= 0) {
      throw new IllegalArgumentException(
          "maximumChannels must be positive, was " + maximumChannels);
    }
    this.connector = requireNonNull(connector, "connector");
    this.tags = Tags.concat(requireNonNull(tags, "tags"), "name", requireNonNull(name, "name"));
    this.maximumChannels = maximumChannels;
  }

  @Override
  public void bindTo(MeterRegistry registry) {
    requireNonNull(registry, "registry");
    Gauge.builder(CONNECTIONS, connections, AtomicInteger::get)
        .tags(tags)
        .description("Open channels, cached or closing.")
        .baseUnit("connections")
        .strongReference(true)
        .register(registry);
    if (maximumChannels != UNBOUNDED) {
      Gauge.builder(CONNECTIONS_OVER_BOUND, this, CachingConnectorMetrics::connectionsOverBound)
          .tags(tags)
          .description("Open channels past the maximum, exceeded only while no idle one can close.")
          .baseUnit("connections")
          .strongReference(true)
          .register(registry);
    }
    Gauge.builder(LEASES, this, CachingConnectorMetrics::leases)
        .tags(tags)
        .description("Leases taken and not yet released.")
        .baseUnit("leases")
        .strongReference(true)
        .register(registry);
    Gauge.builder(CALLS, this, CachingConnectorMetrics::calls)
        .tags(tags)
        .description("Calls in flight on the channels, whether or not their lease was released.")
        .baseUnit("calls")
        .strongReference(true)
        .register(registry);
    bound.add(new Meters(registry, tags));
  }

  private double connectionsOverBound() {
    return Math.max(0, connections.get() - maximumChannels);
  }

  private double leases() {
    CachingConnector current = connector.get();
    return current == null ? Double.NaN : current.leaseCount();
  }

  private double calls() {
    CachingConnector current = connector.get();
    return current == null ? Double.NaN : current.callCount();
  }

  @Override
  public void onConnect(String address) {
    for (Meters meters : bound) {
      meters.dials.increment();
    }
  }

  @Override
  public void onCacheMiss(String address) {
    for (Meters meters : bound) {
      meters.cacheMisses.increment();
    }
  }

  @Override
  public void onConnectionCountUpdate(int count) {
    connections.set(count);
  }

  @Override
  public void onDialComplete(String address, Duration duration, @Nullable Throwable failure) {
    for (Meters meters : bound) {
      (failure == null ? meters.dialSuccess : meters.dialFailure).record(duration);
    }
  }

  @Override
  public void onClose(String address, CloseCause cause) {
    for (Meters meters : bound) {
      requireNonNull(meters.closes.get(cause), "counter of every cause").increment();
    }
  }

  @Override
  public void onLeak(String address, Duration heldFor) {
    for (Meters meters : bound) {
      meters.leaks.increment();
    }
  }

  /** The event meters of one registry, registered up front so that events only increment. */
  private static final class Meters {

    final Counter dials;
    final Counter cacheMisses;
    final Timer dialSuccess;
    final Timer dialFailure;
    final Map<CloseCause, Counter> closes = new EnumMap<>(CloseCause.class);
    final Counter leaks;

    Meters(MeterRegistry registry, Tags tags) {
      dials =
          Counter.builder(DIALS)
              .tags(tags)
              .description("Dials of an address, cached or not.")
              .baseUnit("dials")
              .register(registry);
      cacheMisses =
          Counter.builder(CACHE_MISSES)
              .tags(tags)
              .description("Dials that found no cached channel and created one.")
              .baseUnit("dials")
              .register(registry);
      dialSuccess = dialTimer(registry, tags, "success");
      dialFailure = dialTimer(registry, tags, "failure");
      for (CloseCause cause : CloseCause.values()) {
        closes.put(
            cause,
            Counter.builder(CLOSES)
                .tags(tags)
                .tag("cause", cause.name().toLowerCase(Locale.ROOT))
                .description("Channels closed, by cause.")
                .baseUnit("connections")
                .register(registry));
      }
      leaks =
          Counter.builder(LEAKS)
              .tags(tags)
              .description("Leases held longer than the leak detection threshold.")
              .baseUnit("leases")
              .register(registry);
    }

    private static Timer dialTimer(MeterRegistry registry, Tags tags, String outcome) {
      return Timer.builder(DIAL_DURATION)
          .tags(tags)
          .tag("outcome", outcome)
          .description("Time the dialer took to create a channel.")
          .register(registry);
    }
  }
}
