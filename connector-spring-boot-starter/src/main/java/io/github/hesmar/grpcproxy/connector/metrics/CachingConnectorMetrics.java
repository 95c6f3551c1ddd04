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
 * address (a proxy dials an unbounded set of addresses). The names are frozen: the README's
 * "Metrics" section gives the reason for each.
 *
 * <table>
 *   <caption>Meters</caption>
 *   <tr><th>name</th><th>type</th><th>base unit</th><th>extra tags</th><th>fed by</th></tr>
 *   <tr><td>{@value #DIALS}</td><td>counter</td><td>dials</td><td></td>
 *       <td>{@code onConnect}</td></tr>
 *   <tr><td>{@value #DIALS_MISSED}</td><td>counter</td><td>dials</td><td></td>
 *       <td>{@code onCacheMiss}</td></tr>
 *   <tr><td>{@value #CHANNELS}</td><td>gauge</td><td>channels</td><td></td>
 *       <td>{@code onConnectionCountUpdate}</td></tr>
 *   <tr><td>{@value #CHANNELS_MAX}</td><td>gauge, only with a bound</td><td>channels</td><td></td>
 *       <td>the bound</td></tr>
 *   <tr><td>{@value #CHANNELS_CREATION}</td><td>timer</td><td>seconds</td>
 *       <td>{@code result}: success, failure</td><td>{@code onDialComplete}</td></tr>
 *   <tr><td>{@value #CHANNELS_CLOSED}</td><td>counter</td><td>channels</td><td>{@code cause}:
 *       expired, released, stale, shutdown, evicted, max_age, unhealthy</td><td>{@code onClose}</td></tr>
 *   <tr><td>{@value #LEASES_ACTIVE}</td><td>gauge</td><td>leases</td><td></td>
 *       <td>{@link CachingConnector#leaseCount()}</td></tr>
 *   <tr><td>{@value #CALLS_ACTIVE}</td><td>gauge</td><td>calls</td><td></td>
 *       <td>{@link CachingConnector#callCount()}</td></tr>
 *   <tr><td>{@value #CALLS_QUEUED}</td><td>gauge</td><td>calls</td><td></td>
 *       <td>{@link CachingConnector#queuedCallCount()}</td></tr>
 *   <tr><td>{@value #CALLS_QUEUE_WAIT}</td><td>timer</td><td>seconds</td><td></td>
 *       <td>{@code onCallQueued}</td></tr>
 *   <tr><td>{@value #LEASES_LEAKED}</td><td>counter</td><td>leases</td><td></td>
 *       <td>{@code onLeak}</td></tr>
 * </table>
 *
 * <p>Hits are {@value #DIALS} minus {@value #DIALS_MISSED}, not a {@code result=hit} series: the
 * seed's {@code onConnect} is called when a dial starts, before the connector knows whether it will
 * hit, and {@code onCacheMiss} once per channel creation, on the thread that runs it; no callback
 * tells that a dial ended without creating a channel, so a {@code result=hit} counter could not be
 * fed, and one computed as the difference would go down while a miss is between its two callbacks.
 * A dial that waits for another dial's channel is not a miss (as in Caffeine, a caller that did not
 * load is a hit); a dial that opens an extra channel of an address whose channels are full is one.
 * The difference is exact once no dial is in flight, but for two rare cases: a dial whose extra
 * channel's address was detached meanwhile dials the address again and counts two misses, and a
 * dial whose dial executor refused it (as while the connector closes) counts none.
 *
 * <p>It is both the connector's {@link ConnectorListener}, which must be registered when the
 * connector is built, and the {@link MeterBinder} that registers the meters; the connector itself
 * is needed only by the {@value #LEASES_ACTIVE}, {@value #CALLS_ACTIVE} and {@value #CALLS_QUEUED}
 * gauges and is looked up when they are read:
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

  /** Counter of dials, cached or not (the seed's {@code onConnect}). */
  public static final String DIALS = "grpc.connector.dials";

  /**
   * Counter of dials that created a channel: of an address with none, or an extra one of an address
   * whose channels are full (the seed's {@code onCacheMiss}, once per channel creation).
   */
  public static final String DIALS_MISSED = "grpc.connector.dials.missed";

  /** Gauge of open channels, cached or closing (the seed's {@code onConnectionCountUpdate}). */
  public static final String CHANNELS = "grpc.connector.channels";

  /**
   * Gauge of the {@linkplain CachingConnector.Builder#maximumChannels(int) bound} on open channels,
   * registered only with a bound. The bound is soft (a channel in use is never closed), so {@value
   * #CHANNELS} exceeds it while dials find no idle channel to close.
   */
  public static final String CHANNELS_MAX = "grpc.connector.channels.max";

  /** Timer of the dialer's channel creations, tagged {@code result}: success or failure. */
  public static final String CHANNELS_CREATION = "grpc.connector.channels.creation";

  /** Counter of closed channels, tagged {@code cause}. */
  public static final String CHANNELS_CLOSED = "grpc.connector.channels.closed";

  /** Gauge of outstanding leases. */
  public static final String LEASES_ACTIVE = "grpc.connector.leases.active";

  /** Gauge of calls in flight, whether or not their lease was released. */
  public static final String CALLS_ACTIVE = "grpc.connector.calls.active";

  /**
   * Gauge of calls whose headers wait in their channel's transport: queued behind a connection's
   * limit of concurrent streams (the server's MAX_CONCURRENT_STREAMS), or for a moment for the
   * transport's event loop. Above 0 for more than a moment, a backend's stream limit holds calls
   * back; the connector then counts that channel as full at the calls it carries.
   */
  public static final String CALLS_QUEUED = "grpc.connector.calls.queued";

  /**
   * Timer of how long each call's headers waited in its channel's transport before being sent (or
   * before the call ended, if it ended first), one record per call made on a lease.
   */
  public static final String CALLS_QUEUE_WAIT = "grpc.connector.calls.queue.wait";

  /** Counter of leases held longer than the leak detection threshold. */
  public static final String LEASES_LEAKED = "grpc.connector.leases.leaked";

  /** No bound, as the connector's default: no {@value #CHANNELS_MAX} gauge. */
  private static final int UNBOUNDED = Integer.MAX_VALUE;

  private final Supplier<? extends @Nullable CachingConnector> connector;
  private final Tags tags;
  private final int maximumChannels;
  private final AtomicInteger channels = new AtomicInteger();
  private final List<Meters> bound = new CopyOnWriteArrayList<>();

  /**
   * Creates the meters of a connector.
   *
   * @param connector gives the connector for the {@value #LEASES_ACTIVE}, {@value #CALLS_ACTIVE}
   *     and {@value #CALLS_QUEUED} gauges when they are read; may return {@code null} (the gauges
   *     then read NaN)
   * @param name the value of the {@code name} tag, for example the connector's bean name
   * @param tags more tags for every meter
   */
  public CachingConnectorMetrics(
      Supplier<? extends @Nullable CachingConnector> connector, String name, Iterable<Tag> tags) {
    this(connector, name, tags, UNBOUNDED);
  }

  /**
   * Creates the meters of a connector built with a {@linkplain
   * CachingConnector.Builder#maximumChannels(int) bound}: they include the {@value #CHANNELS_MAX}
   * gauge ({@link Integer#MAX_VALUE}, the connector's unbounded default, gives none).
   *
   * @param connector gives the connector for the {@value #LEASES_ACTIVE}, {@value #CALLS_ACTIVE}
   *     and {@value #CALLS_QUEUED} gauges when they are read; may return {@code null} (the gauges
   *     then read NaN)
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
    Gauge.builder(CHANNELS, channels, AtomicInteger::get)
        .tags(tags)
        .description("Open channels, cached or closing.")
        .baseUnit("channels")
        .strongReference(true)
        .register(registry);
    if (maximumChannels != UNBOUNDED) {
      Gauge.builder(CHANNELS_MAX, this, metrics -> metrics.maximumChannels)
          .tags(tags)
          .description(
              "Most open channels before dials close idle ones; exceeded while none is idle.")
          .baseUnit("channels")
          .strongReference(true)
          .register(registry);
    }
    Gauge.builder(LEASES_ACTIVE, this, CachingConnectorMetrics::leasesActive)
        .tags(tags)
        .description("Leases taken and not yet released.")
        .baseUnit("leases")
        .strongReference(true)
        .register(registry);
    Gauge.builder(CALLS_ACTIVE, this, CachingConnectorMetrics::callsActive)
        .tags(tags)
        .description("Calls in flight on the channels, whether or not their lease was released.")
        .baseUnit("calls")
        .strongReference(true)
        .register(registry);
    Gauge.builder(CALLS_QUEUED, this, CachingConnectorMetrics::callsQueued)
        .tags(tags)
        .description(
            "Calls whose headers wait in their channel's transport: queued behind the"
                + " connection's stream limit or the event loop.")
        .baseUnit("calls")
        .strongReference(true)
        .register(registry);
    bound.add(new Meters(registry, tags));
  }

  private double leasesActive() {
    CachingConnector current = connector.get();
    return current == null ? Double.NaN : current.leaseCount();
  }

  private double callsActive() {
    CachingConnector current = connector.get();
    return current == null ? Double.NaN : current.callCount();
  }

  private double callsQueued() {
    CachingConnector current = connector.get();
    return current == null ? Double.NaN : current.queuedCallCount();
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
      meters.dialsMissed.increment();
    }
  }

  @Override
  public void onConnectionCountUpdate(int count) {
    channels.set(count);
  }

  @Override
  public void onDialComplete(String address, Duration duration, @Nullable Throwable failure) {
    for (Meters meters : bound) {
      (failure == null ? meters.creationSuccess : meters.creationFailure).record(duration);
    }
  }

  @Override
  public void onClose(String address, CloseCause cause) {
    for (Meters meters : bound) {
      requireNonNull(meters.closed.get(cause), "counter of every cause").increment();
    }
  }

  @Override
  public void onCallQueued(String address, Duration queued) {
    for (Meters meters : bound) {
      meters.queueWait.record(queued);
    }
  }

  @Override
  public void onLeak(String address, Duration heldFor) {
    for (Meters meters : bound) {
      meters.leasesLeaked.increment();
    }
  }

  /** The event meters of one registry, registered up front so that events only increment. */
  private static final class Meters {

    final Counter dials;
    final Counter dialsMissed;
    final Timer creationSuccess;
    final Timer creationFailure;
    final Map<CloseCause, Counter> closed = new EnumMap<>(CloseCause.class);
    final Timer queueWait;
    final Counter leasesLeaked;

    Meters(MeterRegistry registry, Tags tags) {
      dials =
          Counter.builder(DIALS)
              .tags(tags)
              .description("Dials of an address, cached or not.")
              .baseUnit("dials")
              .register(registry);
      dialsMissed =
          Counter.builder(DIALS_MISSED)
              .tags(tags)
              .description(
                  "Dials that created a channel: none was cached, or all were full and the"
                      + " address could have one more.")
              .baseUnit("dials")
              .register(registry);
      creationSuccess = creationTimer(registry, tags, "success");
      creationFailure = creationTimer(registry, tags, "failure");
      for (CloseCause cause : CloseCause.values()) {
        closed.put(
            cause,
            Counter.builder(CHANNELS_CLOSED)
                .tags(tags)
                .tag("cause", cause.name().toLowerCase(Locale.ROOT))
                .description("Channels closed, by cause.")
                .baseUnit("channels")
                .register(registry));
      }
      queueWait =
          Timer.builder(CALLS_QUEUE_WAIT)
              .tags(tags)
              .description(
                  "Time a call's headers waited in the channel's transport before being sent:"
                      + " queued behind the connection's stream limit or the event loop.")
              .register(registry);
      leasesLeaked =
          Counter.builder(LEASES_LEAKED)
              .tags(tags)
              .description("Leases held longer than the leak detection threshold.")
              .baseUnit("leases")
              .register(registry);
    }

    private static Timer creationTimer(MeterRegistry registry, Tags tags, String result) {
      return Timer.builder(CHANNELS_CREATION)
          .tags(tags)
          .tag("result", result)
          .description("Time the dialer took to create a channel, by result.")
          .register(registry);
    }
  }
}
