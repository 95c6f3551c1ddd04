package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.ChannelCount.Closed;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import org.jspecify.annotations.Nullable;

/**
 * A cache of gRPC {@link ManagedChannel}s keyed by target address, handing out leases.
 *
 * <p>{@link #dial(String)} returns a {@link LeasedChannel} on the cached channel for an address,
 * creating the channel with the {@link Dialer} on a miss; at most one dial per address is in
 * flight, and callers of the same address wait for it, each for at most its own timeout. Each
 * successful dial must be matched by one release: {@link LeasedChannel#close()}
 * (try-with-resources) or {@link #release(String, ManagedChannel)}. Calls started on a lease hold
 * its channel until they end, even past the release. {@link #expire()}, called periodically, closes
 * the channels that had no lease, no call and no dial at two consecutive passes, and the channels
 * detached by {@link #closeOnRelease(String)} once their leases and calls have ended.
 *
 * <pre>{@code
 * CachingConnector connector = CachingConnector.builder().dialer(Dialer.tls()).build();
 * try (LeasedChannel channel = connector.dial("dns:///backend.example:443")) {
 *   HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance());
 * }
 * // every 30 s or so: connector.expire();
 * }</pre>
 *
 * <p>Thread-safe. Dialing and releasing a cached address takes no lock and allocates only the
 * lease; {@link #expire()} does not stall concurrent dials. Listeners run after the change they
 * report, never inside it: one that throws, or that calls the connector again, cannot leave an
 * address wedged or a channel unclosable.
 */
public final class CachingConnector implements AutoCloseable {

  /*
   * Design
   * ======
   *
   * Where each rule of DESIGN.md lives. This class is the façade: the map, dial (rules 1, 6),
   * release (2), expire (3), closeOnRelease (4), the connection count (5), close (7), the maximum
   * age (11), the dial timeout (12) and the snapshots, with the argument below. The mechanisms are
   * package-private classes, each opening with its part of the argument: Entry, a channel's state
   * word, lease cells and count of calls (rules 2, 3, 8); LeasedChannel, the lease and its counted
   * calls (2, 8); AddressPool, several channels per address (9); ChannelBound, the bound on open
   * channels and eviction (10); PendingDial, waiting for a dial and each caller's bound (1, 12);
   * Drainer, graceful closing (3, 7); LeakDetector; SafeListener, callbacks that throw;
   * AddressCheck, bad addresses.
   *
   * Two collections hold the channels this connector created and has not closed yet:
   *
   *   entries:  ConcurrentHashMap<String, Entry>, the attached entry of each address. An entry is
   *             put in the map (putIfAbsent) *before* its channel exists: winning putIfAbsent is
   *             the claim to dial that address, so at most one dial per address is in flight, and
   *             later callers find the pending entry and wait on its PendingDial (which the entry
   *             drops once its channel is published).
   *   detached: a concurrent set of entries taken out of the map by closeOnRelease (or found shut
   *             down by someone else) that expire() closes once their leases and calls end.
   *
   * Each Entry has one 64-bit state word (LEASES, DIALED, PENDING, DETACHED, CLOSED, CLOSING,
   * RECENT; see Entry), changed only by compare-and-set, atomic add and atomic bit operations.
   *
   * Leases. Leasing (the hot path) is map.get + one CAS that adds a lease and sets DIALED and
   * RECENT (the marks of use for expiry and for eviction), and
   * fails if PENDING, DETACHED or CLOSED is set; closing is a CAS that sets CLOSED and fails if a
   * lease was taken meanwhile. So a lease and a close of the same entry are ordered by the state
   * word: no dial ever returns a lease on a channel this connector has shut down, and no lock is
   * needed. Releasing is an atomic decrement, guarded against double release by a flag on the
   * lease.
   *
   * Striping. When two leases of one entry collide (a lease CAS fails while only the lease count
   * changed), the entry gets lease cells: counters on separate cache lines, one per thread slot,
   * so that threads leasing one hot address stop writing one word. A thread's slot comes from its
   * thread id (Entry.addToCell), so threads started one after the other use different cells. A
   * lease then adds 1 to its thread's cell and *then* reads the state: if a flag is set it takes
   * the 1 back. A non-forced
   * close sets CLOSING (only when the state word counts no lease), *then* reads the cells: if any
   * counts a lease it clears CLOSING, else it flips CLOSING to CLOSED. Both sides write before
   * they read (volatile), so at least one sees the other: no lease is ever granted on a channel
   * that closes. While CLOSING, leases, starting calls, detaches and forced closes wait for the few
   * loads of the sum (Entry.spin: spin briefly, then yield). Leases taken before striping stay in
   * the state word; a lease remembers where it is counted.
   *
   * Calls. A call made on a lease (LeasedChannel.newCall) is counted in its entry's `calls` from
   * its start() to its listener's onClose, and in its lease (for awaitTermination). A channel is
   * idle only with no lease and no call: expire() counts an idle pass only then, and the
   * non-forced close reads `calls` under CLOSING as it reads the cells. A call counts itself
   * *before* it reads the state word, the close sets CLOSING *before* it reads the calls: the same
   * Dekker pairing as the cells, so a close never wins against a starting call. A call starts
   * on a held lease, which by itself keeps any close but a forced one away; the count is what
   * keeps the channel open once the lease is released. Only close() forces a channel with calls,
   * after its grace period.
   *
   * Pools. An address may have several channels (rule 9; AddressPool, whose comment has the
   * argument): the entry in the map is its first channel, which lists the others in a copy-on-write
   * array of extra channels. Each extra channel is an Entry with everything said here; the map only finds it
   * through its first channel, so every walk over the map (expire, close, the snapshots) walks the
   * extra channels too, and a first channel neither expires while it has extra channels nor is detached without them.
   *
   * Dialing. The caller that wins putIfAbsent does not lease afterwards: its lease is reserved in
   * the pending state, and the CAS that publishes the channel (flipping PENDING off and DIALED on)
   * turns it into a lease. So no closeOnRelease() or expire() can detach or close a fresh channel
   * before the caller that dialed it holds its lease (CachingConnectorLincheckTest). A caller that
   * stops waiting gives the reservation back, so a late channel is cached with no lease. A
   * pending entry ends in exactly one of two CASes: publish (PENDING off) or fail (state :=
   * CLOSED). The dialer failing, the dial timeout passing (noticed by a waiter, a later dial or
   * expire(): no timer per dial) and close() all fail it the same way; a channel the dialer
   * returns after its entry failed is shut down at once and never counted. Waiting is bounded per
   * caller, once (the earlier of its timeout and its Context's deadline, fixed at its first wait),
   * and by the dial timeout; a waiter leaves nothing behind (PendingDial). One dial() starts at
   * most one dial of its own for an address it finds cached (an extra channel, AddressPool), and
   * at most one for an address it finds missing: at most two in all (the second when the address
   * was detached while its extra channel was dialed), so a dialer is never called in a loop.
   *
   * Callbacks. Every listener call comes after the state change it reports is complete: a miss
   * is reported by the dial thread before it calls the dialer, a dial's outcome after the entry
   * is published or failed, a close after the channel is shut down and registered for draining,
   * and expire() reports its closes after it released expireLock. So a listener that throws
   * leaves nothing half done, and one that re-enters the connector finds a consistent state. The
   * one re-entrance that cannot work, a dial of the address whose dial the current thread is
   * running (from the dialer or onCacheMiss), fails fast with IllegalStateException instead of
   * waiting for itself.
   *
   * expire() walks the map (weakly consistent iteration, no lock held against dials) under
   * expireLock, which only serializes expire() with itself. Idle passes are counted in a field
   * written only under that lock; a dial resets the count lazily by setting DIALED, which the next
   * pass sees and clears. A pass that finds no lease and no call counts as idle, so a channel
   * closes at the second pass after its last use (as in the seed), and a channel dialed between
   * every two passes never closes.
   *
   * The bound (ChannelBound, whose comment has the argument). A dial thread takes a place for its
   * channel just before it calls the dialer, closing idle channels while the bound is reached; the
   * close is the non-forced close of expiry (CLOSING, then read leases, calls and extra channels), so
   * eviction races leases, calls and expiry exactly as expiry does, and whoever sets CLOSED shuts
   * the channel down. A place is given back in countClosed, after the shutdown (so the count never
   * undercounts what is open), or when the dial fails: its PendingDial records the place held,
   * and the dial thread (which records it, then reads the state) and the failure (failPending: a
   * dialer that threw, close(), the dial timeout; it sets the state, then reads the record) each
   * try to take it back by compare-and-set: at least one sees the other, exactly one wins, and a
   * hung dialer holds no place. The dial reports its evictions to the listeners after its own
   * outcome is published.
   *
   * The maximum age. An expiry pass detaches (cause MAX_AGE) each attached channel whose age, on
   * the injected clock, is past its jittered maximum: the same detach as closeOnRelease, so the
   * channel closes at a pass after its leases and calls end, and new dials get a new channel.
   *
   * close() sets `closed` and then sweeps both collections, failing pending dials (their waiters
   * get IllegalStateException at once) and forcing the rest. Every path that publishes an entry
   * (putIfAbsent of a pending entry, dial completion, detach) re-reads `closed` afterwards and
   * fails or closes the entry itself if it is set; with volatile accesses on both sides, at least
   * one of the two sees the other, and the CLOSED bit makes sure only one of them acts.
   *
   * Draining (Drainer). A channel is closed with shutdown(), then shutdownNow() once the grace
   * period has passed; close() waits up to the grace for every channel still draining, those that
   * expiry shut down before included, forces what is left, then drops the pending tasks with its
   * own scheduler's shutdownNow(): its thread ends at once, not a grace period later. A channel a
   * concurrent expire() adds later either had its task accepted before that shutdownNow(), and the
   * forceAll() that follows it forces it, or has its task refused, and is forced on the spot.
   *
   * The connection count is an AtomicInteger changed with the CLOSED transitions; its callback is
   * delivered by whichever thread wins a "delivering" flag, which loops until the delivered value
   * equals the current one, so calls never overlap and the last value delivered is the final count.
   */

  private static final System.Logger LOG = System.getLogger(CachingConnector.class.getName());

  /** Longest address accepted by {@link #dial(String)}. */
  static final int MAX_ADDRESS_LENGTH = AddressCheck.MAX_LENGTH;

  /** The first channels, the detached ones, and whether this connector is closed. */
  final ChannelTable table;

  /** Closes channels gracefully; {@link #close()} waits for them. */
  private final Drainer drainer;

  private final Dialer dialer;
  private final ConnectorListener listener;
  private final Executor dialExecutor;
  private final @Nullable ExecutorService ownedDialExecutor;
  private final ScheduledExecutorService scheduler;
  private final boolean ownsScheduler;
  private final InstantSource clock;
  private final @Nullable LeakDetector leakDetector;
  private final Duration shutdownGracePeriod;
  private final Duration dialTimeout;
  private final long dialTimeoutNanos;

  /** Which channel of an address a dial leases, and when the address gets one more. */
  final AddressPool pool;

  /**
   * The hit path leases an address's first channel at once below this many calls in flight: {@code
   * maxCallsPerChannel}, or {@link Long#MAX_VALUE} with one channel per address (the pool's limits
   * copied into a field of this class: one dependent load fewer per dial).
   */
  private final long leaseFirstCalls;

  /** The bound on open channels (rule 10), or null if unbounded. */
  private final @Nullable ChannelBound bound;

  /** The maximum age of a channel (rule 11) before its jitter, in ms; 0 for none. */
  private final long maxChannelAgeMillis;

  /** Mixed with a channel's id to draw its jitter: connectors do not retire channels in step. */
  private final long jitterSeed = ThreadLocalRandom.current().nextLong();

  private final ReentrantLock expireLock = new ReentrantLock();

  /** Runs the expiry passes. */
  private final Expirer expirer;

  /** Runs the dials. */
  final DialRunner runner;

  /** The open channels, and the reports of their closes. */
  private final ChannelCount count;

  private CachingConnector(Builder builder) {
    this.dialer = builder.dialer;
    this.listener = SafeListener.of(builder.listeners);
    this.clock = builder.clock;
    this.shutdownGracePeriod = builder.shutdownGracePeriod;
    this.dialTimeout = builder.dialTimeout;
    this.dialTimeoutNanos = saturatedNanos(builder.dialTimeout);
    this.pool = new AddressPool(builder.maxCallsPerChannel, builder.maxChannelsPerAddress);
    this.leaseFirstCalls =
        builder.maxChannelsPerAddress == 1 ? Long.MAX_VALUE : builder.maxCallsPerChannel;
    this.bound =
        builder.maximumChannels == Integer.MAX_VALUE
            ? null
            : new ChannelBound(builder.maximumChannels);
    this.count = new ChannelCount(listener, bound);
    Duration maxAge = builder.maxChannelAge;
    this.maxChannelAgeMillis = maxAge == null ? 0 : Math.max(1, saturatedNanos(maxAge) / 1_000_000);
    if (builder.dialExecutor != null) {
      this.dialExecutor = builder.dialExecutor;
      this.ownedDialExecutor = null;
    } else {
      ExecutorService executor = Executors.newCachedThreadPool(daemonThreads("dial"));
      this.dialExecutor = executor;
      this.ownedDialExecutor = executor;
    }
    if (builder.scheduler != null) {
      this.scheduler = builder.scheduler;
      this.ownsScheduler = false;
    } else {
      ScheduledThreadPoolExecutor executor =
          new ScheduledThreadPoolExecutor(1, daemonThreads("scheduler"));
      executor.setRemoveOnCancelPolicy(true);
      this.scheduler = executor;
      this.ownsScheduler = true;
    }
    this.drainer = new Drainer(shutdownGracePeriod, scheduler);
    this.table = new ChannelTable(drainer, count);
    this.runner =
        new DialRunner(
            table, count, bound, dialer, listener, clock, dialExecutor, builder.dialTimeout);
    this.expirer = new Expirer(table, count, runner, clock, bound, builder.maxChannelAge);
    Duration threshold = builder.leakDetectionThreshold;
    if (threshold == null) {
      this.leakDetector = null;
    } else {
      LeakDetector detector = new LeakDetector(threshold, clock, scheduler, listener);
      detector.start();
      this.leakDetector = detector;
    }
  }

  /**
   * Returns a new builder, with the TLS {@linkplain Dialer#tls() default dialer}.
   *
   * @return a new builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * Leases the cached channel for {@code address}, dialing it on a miss, waiting for a dial in
   * flight for at most the deadline of {@link Context#current()}, if it has one, and the dial
   * timeout.
   *
   * @param address the target address, for example {@code dns:///backend.example:443}
   * @return a lease on the channel; release it exactly once
   * @throws NullPointerException if {@code address} is null
   * @throws IllegalArgumentException if {@code address} is empty, blank, longer than 2048
   *     characters, or contains whitespace or control characters
   * @throws IllegalStateException if this connector is closed (also while waiting for a dial), or
   *     if called from the dial of the same address (by the dialer or {@code onCacheMiss}), which
   *     would wait for itself
   * @throws StatusRuntimeException with {@code UNAVAILABLE} if the dialer failed or returned a
   *     channel that is shut down, {@code DEADLINE_EXCEEDED} if the context's deadline or the
   *     {@linkplain Builder#dialTimeout(Duration) dial timeout} passed while waiting for the dial,
   *     {@code CANCELLED} if the context was cancelled or the thread interrupted (its interrupt
   *     flag stays set)
   */
  public LeasedChannel dial(String address) {
    return dial(address, Long.MAX_VALUE, null);
  }

  /**
   * Leases the cached channel for {@code address}, dialing it on a miss, waiting for a dial in
   * flight for at most {@code timeout} (or the deadline of {@link Context#current()}, if sooner).
   * The bound is fixed once, however often the call has to wait. A dial that completes after its
   * callers stopped waiting, within the dial timeout, is cached, not lost.
   *
   * @param address the target address, for example {@code dns:///backend.example:443}
   * @param timeout the longest this call waits for a dial; positive
   * @return a lease on the channel; release it exactly once
   * @throws NullPointerException if an argument is null
   * @throws IllegalArgumentException if {@code timeout} is not positive, or {@code address} is
   *     empty, blank, longer than 2048 characters, or contains whitespace or control characters
   * @throws IllegalStateException as {@link #dial(String)}
   * @throws StatusRuntimeException with {@code UNAVAILABLE} if the dialer failed, {@code
   *     DEADLINE_EXCEEDED} if the timeout (or the dial timeout) passed while waiting for the dial,
   *     {@code CANCELLED} if the context was cancelled or the thread interrupted
   */
  public LeasedChannel dial(String address, Duration timeout) {
    requireNonNull(timeout, "timeout");
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive, was " + timeout);
    }
    return dial(address, saturatedNanos(timeout), timeout);
  }

  private LeasedChannel dial(String address, long timeoutNanos, @Nullable Duration timeout) {
    requireNonNull(address, "address");
    table.checkOpen();
    Entry entry = table.get(address);
    if (entry == null) {
      // Only on a miss: a cached address was checked when it was dialed.
      AddressCheck.check(address);
      listener.onConnect(address);
    } else {
      listener.onConnect(address);
      if (leaseFirstCalls == Long.MAX_VALUE || entry.calls() < leaseFirstCalls) {
        LeasedChannel lease = tryLease(entry); // the hit path: small, so that it is inlined
        if (lease != null) {
          return lease;
        }
      }
    }
    return new DialAttempt(this, address, timeoutNanos, timeout).lease(entry);
  }

  /**
   * Takes a lease on {@code entry}, or returns null if it is pending, closing or closed (the caller
   * looks the address up again). Drops an entry whose channel someone else shut down.
   */
  @Nullable LeasedChannel tryLease(Entry entry) {
    int slot = entry.lease(clock);
    if (slot < Entry.BASE) {
      if (slot == Entry.GONE) {
        table.unlink(entry); // help a concurrent close or detach
      } else if (slot == Entry.STALE) {
        table.detachAndReport(entry, CloseCause.STALE);
      }
      return null;
    }
    return newLease(entry, slot);
  }

  /** A lease on {@code entry}, counted in {@code slot}. */
  LeasedChannel newLease(Entry entry, int slot) {
    return new LeasedChannel(this, entry, slot, watchForLeak(entry));
  }

  private LeakDetector.@Nullable Watch watchForLeak(Entry entry) {
    LeakDetector detector = leakDetector;
    return detector == null ? null : detector.watch(entry.address);
  }

  /** The dial in flight for {@code address}, if any; for tests. */
  @Nullable PendingDial pendingDial(String address) {
    Entry entry = table.get(address);
    return entry == null ? null : entry.pendingDial();
  }

  /**
   * Releases a lease taken by {@link #dial(String)}. Equivalent to {@link LeasedChannel#close()}.
   * Releasing a lease twice, or after this connector closed, is a no-op. Calls started on the lease
   * go on, and hold the channel until they end.
   *
   * @param address the address the lease was dialed for
   * @param channel the {@link LeasedChannel} that {@code dial(address)} returned
   * @throws NullPointerException if an argument is null
   * @throws IllegalArgumentException if {@code channel} is not a lease of this connector on {@code
   *     address}
   */
  public void release(String address, ManagedChannel channel) {
    requireNonNull(address, "address");
    requireNonNull(channel, "channel");
    if (!(channel instanceof LeasedChannel lease) || !lease.belongsTo(this)) {
      throw new IllegalArgumentException(
          "channel "
              + channel
              + " is not a lease of this CachingConnector; release the"
              + " LeasedChannel that dial(\""
              + address
              + "\") returned");
    }
    if (!lease.address().equals(address)) {
      throw new IllegalArgumentException(
          "channel " + channel + " was dialed for " + lease.address() + ", not " + address);
    }
    release(lease);
  }

  void release(LeasedChannel lease) {
    if (!lease.markReleased()) {
      return;
    }
    lease.entry.release(lease.slot);
    LeakDetector.Watch watch = lease.leakWatch;
    if (watch != null) {
      requireNonNull(leakDetector, "leakDetector").released(watch);
    }
  }

  /**
   * Runs one expiry pass: closes every channel that had no lease, no call in flight and no dial at
   * this pass and the one before, and every channel detached by {@link #closeOnRelease(String)} (or
   * past its {@linkplain Builder#maxChannelAge(Duration) maximum age}, which this pass detaches)
   * whose leases have all been released and whose calls have ended. Closing is graceful ({@link
   * ManagedChannel#shutdown()}, then {@link ManagedChannel#shutdownNow()} after the shutdown grace
   * period) and does not block. Also abandons dials in flight past the dial timeout. Concurrent
   * dials are not stalled; concurrent calls of {@code expire()} run one after the other. Listeners
   * hear of the closes after the pass.
   *
   * @return the address of each channel closed by this pass
   */
  public List<String> expire() {
    return expirer.expire();
  }

  /** When {@code entry} passes its maximum age; for tests. */
  long retireAt(Entry entry) {
    return expirer.retireAt(entry);
  }

  /**
   * Detaches the channels cached for {@code address}: the next {@link #dial(String)} of it creates
   * a new channel, and each old one closes at the first {@link #expire()} after its last lease is
   * released and its last call has ended.
   *
   * @param address the target address
   * @return whether a channel was cached for {@code address} (false while its first dial is still
   *     in flight)
   * @throws NullPointerException if {@code address} is null
   * @throws IllegalArgumentException if {@code address} is not a valid address (see {@link
   *     #dial(String)})
   */
  public boolean closeOnRelease(String address) {
    AddressCheck.check(address);
    for (; ; ) {
      Entry entry = table.get(address);
      if (entry == null) {
        return false;
      }
      if (entry.isPending()) {
        PendingDial pending = entry.pendingDial();
        if (pending != null && runner.isOverdue(pending)) {
          runner.abandon(entry, pending);
        }
        return false; // a dial in flight: nothing cached yet
      }
      if (table.detachAndReport(entry, CloseCause.RELEASED)) {
        return true;
      }
      table.unlink(entry);
    }
  }

  /**
   * Returns a snapshot of the cached channels, detached ones included, sorted by address, then id.
   * Not atomic: it reads one channel after the other, so while other operations run it may miss a
   * change or list a channel that is being detached twice; it is exact when nothing else runs.
   *
   * @return one entry per open channel
   */
  public List<ConnectionInfo> connections() {
    return table.connections();
  }

  /**
   * Returns the number of open channels: cached, and detached but not yet closed.
   *
   * @return the number of channels created and not yet closed
   */
  public int connectionCount() {
    return count.get();
  }

  /**
   * Returns the number of outstanding leases over all channels. Walks every entry: meant for
   * gauges, not hot paths. Not an atomic snapshot: it reads the channels one after the other, so
   * while leases are taken, released or detached it may return a sum that never existed (a lease
   * counted on two channels, or twice while its channel is detached); it is exact when nothing else
   * runs.
   *
   * @return the number of leases taken and not yet released
   */
  public int leaseCount() {
    return table.leaseCount();
  }

  /**
   * Returns the number of calls in flight over all open channels: calls started on a lease whose
   * listener has not been closed yet, whether or not their lease was released. Walks every entry,
   * and is not an atomic snapshot, as {@link #leaseCount()}.
   *
   * @return the number of calls started on leases and not yet ended
   */
  public int callCount() {
    return table.callCount();
  }

  /**
   * Shuts every channel down, leased or not, and waits up to the shutdown grace period for them,
   * and for channels that expiry closed earlier and that are still finishing their calls, to
   * terminate before forcing them with {@link ManagedChannel#shutdownNow()}. Callers waiting for a
   * dial fail at once with {@link IllegalStateException}; a dialer still running is not waited for
   * (its thread is interrupted if it is one of the connector's own), and a channel it returns later
   * is shut down at once. When it returns, every channel it holds is shut down, and the threads it
   * started itself end (a dial thread once its dialer returns). A channel whose shutdown throws is
   * logged and does not stop the others. Afterwards {@link #dial(String)} throws {@link
   * IllegalStateException}, and releasing a lease is a no-op. Idempotent.
   */
  @Override
  public void close() {
    if (!table.markClosed()) {
      return;
    }
    List<Closed> closes = new ArrayList<>();
    boolean selfInterrupted = false;
    try {
      for (Entry entry : table.firstChannels()) {
        // Extra channels first: one added later sees `closed` before it dials (see AddressPool).
        for (Entry extra : AddressPool.extras(entry)) {
          if (closeOnShutdown(extra)) {
            closes.add(new Closed(extra.address, CloseCause.SHUTDOWN));
          }
        }
        if (closeOnShutdown(entry)) {
          closes.add(new Closed(entry.address, CloseCause.SHUTDOWN));
        }
        table.unlink(entry);
      }
      for (Entry entry : table.detached()) {
        for (Entry extra : AddressPool.extras(entry)) {
          if (closeOnShutdown(extra)) { // pending when its first channel was detached
            closes.add(new Closed(extra.address, CloseCause.SHUTDOWN));
          }
        }
        if (table.close(entry, /* force= */ true)) {
          closes.add(new Closed(entry.address, CloseCause.SHUTDOWN));
        }
      }
    } finally {
      try {
        if (ownedDialExecutor != null) {
          boolean wasInterrupted = Thread.currentThread().isInterrupted();
          ownedDialExecutor.shutdownNow(); // interrupts dialers still running
          // close() running on one of those dial threads (from a dialer or a listener) keeps the
          // grace period for the channels, and gets its interrupt back once it is over.
          selfInterrupted = !wasInterrupted && Thread.interrupted();
        }
        LeakDetector detector = leakDetector;
        if (detector != null) {
          detector.stop();
        }
        count.reportAll(closes, /* counted= */ false);
      } finally {
        try {
          endDraining();
        } finally {
          if (selfInterrupted) {
            Thread.currentThread().interrupt();
          }
        }
      }
    }
  }

  /** Fails {@code entry} if its dial is in flight, else forces it closed; returns if it closed. */
  private boolean closeOnShutdown(Entry entry) {
    for (; ; ) {
      PendingDial pending = entry.pendingDial();
      if (pending == null) {
        return table.close(entry, /* force= */ true);
      }
      if (runner.fail(entry, pending, ChannelTable.closedException())) {
        return false; // nothing was open
      }
    }
  }

  /**
   * Waits for the draining channels, forces the rest, and ends the scheduler's thread if the
   * connector owns it. See "Draining" in the design comment.
   */
  private void endDraining() {
    try {
      // Every channel shut down gracefully, by close() or by an expiry pass before, is in
      // draining (with a zero grace period none is: they were forced at once).
      drainer.awaitAll();
    } finally {
      if (ownsScheduler) {
        // Drops the forced shutdowns still scheduled (their channels were awaited or forced) and
        // the leak scan, so that its thread ends now rather than a grace period later.
        scheduler.shutdownNow();
      }
      // A channel that a concurrent expire() shut down after the wait, whose forced shutdown was
      // just dropped (or, on a user's scheduler, is still to come: forced now instead). From now
      // on an owned scheduler refuses the task and the channel is forced on the spot.
      drainer.forceAll();
    }
  }

  /**
   * The {@link System#nanoTime()} at {@code nanos} after {@code start}, or {@link Long#MAX_VALUE}
   * (no deadline) if {@code nanos} is {@code Long.MAX_VALUE} or the sum overflows. A negative
   * {@code nanos} gives a deadline in the past.
   */
  static long deadlineAfter(long start, long nanos) {
    long sum = start + nanos;
    if (nanos == Long.MAX_VALUE || (nanos > 0 && sum < start)) {
      return Long.MAX_VALUE;
    }
    return sum;
  }

  static long saturatedNanos(Duration duration) {
    try {
      return duration.toNanos();
    } catch (ArithmeticException e) {
      return duration.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
    }
  }

  private static ThreadFactory daemonThreads(String role) {
    AtomicInteger counter = new AtomicInteger();
    return task -> {
      Thread thread = new Thread(task, "grpc-connector-" + role + "-" + counter.incrementAndGet());
      thread.setDaemon(true);
      return thread;
    };
  }

  @Override
  public String toString() {
    return "CachingConnector{channels=" + connectionCount() + ", closed=" + table.isClosed() + "}";
  }

  /**
   * Builds a {@link CachingConnector}. Not thread-safe; each {@link #build()} returns a new,
   * independent connector.
   */
  public static final class Builder {

    private Dialer dialer = Dialer.tls();
    private final List<ConnectorListener> listeners = new ArrayList<>();
    private @Nullable Executor dialExecutor;
    private @Nullable ScheduledExecutorService scheduler;
    private InstantSource clock = InstantSource.system();
    private @Nullable Duration leakDetectionThreshold;
    private Duration shutdownGracePeriod = Duration.ofSeconds(30);
    private Duration dialTimeout = Duration.ofSeconds(30);
    private int maxCallsPerChannel = 100;
    private int maxChannelsPerAddress = 8;
    private int maximumChannels = Integer.MAX_VALUE;
    private @Nullable Duration maxChannelAge;

    private Builder() {}

    /**
     * Bounds the channels open at once, over all addresses. Before a dial creates a channel past
     * the bound, idle channels (no lease, no call in flight) are closed, least recently leased
     * first (cause {@link CloseCause#EVICTED}), so that a burst of distinct addresses does not hold
     * a connection each until expiry. A channel in use is never closed: when none is idle the bound
     * is exceeded, and later dials close idle channels to come back under it. The order is
     * approximate (the clock algorithm: a channel leased since the last look is passed over once),
     * and a dial examines at most 64 channels: no lock, no walk of the whole cache. Expiry runs as
     * before. Unbounded by default.
     *
     * @param maximum the most channels open at once while idle ones can be closed; positive
     * @return this builder
     * @throws IllegalArgumentException if {@code maximum} is not positive
     */
    public Builder maximumChannels(int maximum) {
      if (maximum <= 0) {
        throw new IllegalArgumentException("maximumChannels must be positive, was " + maximum);
      }
      this.maximumChannels = maximum;
      return this;
    }

    /**
     * Retires channels past an age: the first {@link CachingConnector#expire()} pass after a
     * channel's age exceeds {@code maxAge} (give or take 10 %, drawn per channel so that channels
     * created together do not all retire in one pass) detaches it, as {@link
     * CachingConnector#closeOnRelease(String)} does (cause {@link CloseCause#MAX_AGE}): new dials
     * get a new channel, which resolves the address again and connects anew (grpc-java resolves
     * again only when a connection closes; behind an L4 load balancer a long-lived channel stays on
     * one backend), and the old one closes once its leases and calls have ended. Retiring an
     * address's first channel retires its extra channels with it. Ages are measured on the
     * {@linkplain #clock(InstantSource) clock}. None by default.
     *
     * @param maxAge the age past which a channel is retired; positive
     * @return this builder
     * @throws IllegalArgumentException if {@code maxAge} is not positive
     */
    public Builder maxChannelAge(Duration maxAge) {
      requireNonNull(maxAge, "maxAge");
      if (maxAge.isNegative() || maxAge.isZero()) {
        throw new IllegalArgumentException("maxChannelAge must be positive, was " + maxAge);
      }
      this.maxChannelAge = maxAge;
      return this;
    }

    /**
     * Sets how many calls in flight make a channel full. A dial leases the first channel of its
     * address with fewer calls in flight, in the order they were created; when every channel of the
     * address is full, the dial opens one more, up to {@link #maxChannelsPerAddress(int)}, and the
     * extra channels expire once unused. Match it to the smallest limit of concurrent streams per
     * HTTP/2 connection on the way to the backends (servers and proxies commonly allow 100; past it
     * grpc-java queues calls inside the channel). Only calls made on a lease ({@link
     * LeasedChannel#newCall}) count. Defaults to 100.
     *
     * @param maxCalls the calls in flight at which a channel counts as full; positive
     * @return this builder
     * @throws IllegalArgumentException if {@code maxCalls} is not positive
     */
    public Builder maxCallsPerChannel(int maxCalls) {
      if (maxCalls <= 0) {
        throw new IllegalArgumentException("maxCallsPerChannel must be positive, was " + maxCalls);
      }
      this.maxCallsPerChannel = maxCalls;
      return this;
    }

    /**
     * Sets how many channels one address may have: a dial of an address whose channels are all full
     * ({@link #maxCallsPerChannel(int)}) opens one more, up to this many; past it, dials lease the
     * least-loaded full channel. 1 gives one channel per address, as in the Go package. Defaults to
     * 8.
     *
     * @param maxChannels the most channels per address; positive
     * @return this builder
     * @throws IllegalArgumentException if {@code maxChannels} is not positive
     */
    public Builder maxChannelsPerAddress(int maxChannels) {
      if (maxChannels <= 0) {
        throw new IllegalArgumentException(
            "maxChannelsPerAddress must be positive, was " + maxChannels);
      }
      this.maxChannelsPerAddress = maxChannels;
      return this;
    }

    /**
     * Sets the dialer that creates channels on a miss (the seed's {@code WithDialer}). Defaults to
     * {@link Dialer#tls()}.
     *
     * @param dialer the dialer
     * @return this builder
     */
    public Builder dialer(Dialer dialer) {
      this.dialer = requireNonNull(dialer, "dialer");
      return this;
    }

    /**
     * Adds a callback called on every dial (the seed's {@code OnConnect}).
     *
     * @param callback called with the address dialed
     * @return this builder
     */
    public Builder onConnect(Consumer<String> callback) {
      requireNonNull(callback, "callback");
      return listener(
          new ConnectorListener() {
            @Override
            public void onConnect(String address) {
              callback.accept(address);
            }
          });
    }

    /**
     * Adds a callback called once per channel creation (the seed's {@code OnCacheMiss}).
     *
     * @param callback called with the address about to be dialed
     * @return this builder
     */
    public Builder onCacheMiss(Consumer<String> callback) {
      requireNonNull(callback, "callback");
      return listener(
          new ConnectorListener() {
            @Override
            public void onCacheMiss(String address) {
              callback.accept(address);
            }
          });
    }

    /**
     * Adds a callback called with the number of open channels whenever it changes, up and down (the
     * seed's {@code OnConnectionCountUpdate}); see {@link
     * ConnectorListener#onConnectionCountUpdate(int)} for ordering.
     *
     * @param callback called with the number of open channels
     * @return this builder
     */
    public Builder onConnectionCountUpdate(IntConsumer callback) {
      requireNonNull(callback, "callback");
      return listener(
          new ConnectorListener() {
            @Override
            public void onConnectionCountUpdate(int count) {
              callback.accept(count);
            }
          });
    }

    /**
     * Adds a listener for every event of the connector: dials, misses, counts, dial outcomes and
     * durations, closes with their causes, leaks.
     *
     * @param listener the listener
     * @return this builder
     */
    public Builder listener(ConnectorListener listener) {
      listeners.add(requireNonNull(listener, "listener"));
      return this;
    }

    /**
     * Enables leak detection: a lease held longer than {@code threshold} is logged once as a
     * warning, with the thread and time of the {@code dial} that took it (and its stack trace, see
     * below), and again at info level if it is released later. A leak is reported between one
     * threshold and one and a quarter thresholds after its dial (one scan every quarter threshold).
     * Off by default; {@link Duration#ZERO} turns it off. When off it costs nothing; when on,
     * nothing is scheduled per lease, and stacks are sampled: until a leak is found, the first dial
     * and one dial in 8 per thread record their stack, since a stack costs microseconds; once a
     * leak was found, every dial does.
     *
     * @param threshold how long a lease may be held before it is reported; zero for off
     * @return this builder
     * @throws IllegalArgumentException if {@code threshold} is negative
     */
    public Builder leakDetectionThreshold(Duration threshold) {
      requireNonNull(threshold, "threshold");
      if (threshold.isNegative()) {
        throw new IllegalArgumentException(
            "leakDetectionThreshold must not be negative, was " + threshold);
      }
      this.leakDetectionThreshold = threshold.isZero() ? null : threshold;
      return this;
    }

    /**
     * Sets how long a closed channel may take to finish its calls after {@link
     * ManagedChannel#shutdown()} before {@link ManagedChannel#shutdownNow()} cancels them; {@link
     * #close()} waits at most this long. Defaults to 30 seconds; zero closes at once.
     *
     * @param gracePeriod the grace period
     * @return this builder
     * @throws IllegalArgumentException if {@code gracePeriod} is negative
     */
    public Builder shutdownGracePeriod(Duration gracePeriod) {
      requireNonNull(gracePeriod, "gracePeriod");
      if (gracePeriod.isNegative()) {
        throw new IllegalArgumentException(
            "shutdownGracePeriod must not be negative, was " + gracePeriod);
      }
      this.shutdownGracePeriod = gracePeriod;
      return this;
    }

    /**
     * Sets how long a dial may be in flight: a dialer that has not returned a channel by then is
     * abandoned. Its waiters fail with {@code DEADLINE_EXCEEDED}, the next dial of the address
     * starts a new one, and a channel the abandoned dialer returns later is shut down at once. A
     * hung dialer thus never wedges its address. Defaults to 30 seconds.
     *
     * @param timeout the longest a dial may be in flight; positive
     * @return this builder
     * @throws IllegalArgumentException if {@code timeout} is not positive
     */
    public Builder dialTimeout(Duration timeout) {
      requireNonNull(timeout, "timeout");
      if (timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("dialTimeout must be positive, was " + timeout);
      }
      this.dialTimeout = timeout;
      return this;
    }

    /**
     * Sets the clock for the times in {@link ConnectionInfo} and leak reports. Defaults to the
     * system clock; tests inject their own.
     *
     * @param clock the clock
     * @return this builder
     */
    public Builder clock(InstantSource clock) {
      this.clock = requireNonNull(clock, "clock");
      return this;
    }

    /**
     * Sets the scheduler for delayed work: the forced shutdown after the grace period, and the scan
     * of leak detection. Defaults to a single daemon thread owned (and shut down) by the connector;
     * a scheduler given here is not shut down by the connector.
     *
     * @param scheduler the scheduler
     * @return this builder
     */
    public Builder scheduler(ScheduledExecutorService scheduler) {
      this.scheduler = requireNonNull(scheduler, "scheduler");
      return this;
    }

    /**
     * Sets the executor that runs the dialer. Defaults to a cached pool of daemon threads owned by
     * the connector. Dials run off the caller's thread so that each caller waits only for its own
     * timeout; a direct executor ({@code Runnable::run}) makes the first caller run the dial.
     *
     * @param executor the executor
     * @return this builder
     */
    public Builder dialExecutor(Executor executor) {
      this.dialExecutor = requireNonNull(executor, "executor");
      return this;
    }

    /**
     * Builds the connector.
     *
     * @return a new connector
     */
    public CachingConnector build() {
      return new CachingConnector(this);
    }
  }
}
