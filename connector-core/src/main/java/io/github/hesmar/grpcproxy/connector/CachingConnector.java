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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
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
   * Design (docs/design.md)
   * =======================
   *
   * This class is the façade: the public API, the wiring, the hit path and close(). Each mechanism
   * drives itself in a package-private class that opens with its part of the argument:
   *
   *   Entry          one channel: its state word, lease cells and calls; every state transition
   *   ChannelTable   the first channel of each address, the detached channels, the closed mark,
   *                  detaching and closing an entry, the snapshots
   *   DialAttempt    one dial() call past the hit path: a miss, a wait, the pool's growth
   *   DialRunner     one dial on the dial executor: its place under the bound, the dialer,
   *                  publish or fail, the dial timeout
   *   PendingDial    a dial in flight and its waiters, each caller's bound
   *   AddressPool    the channels of one address ("9. The pool of an address")
   *   ChannelBound   the bound on open channels and its clock hand ("10. The bound")
   *   Expirer        the expiry pass: idle passes, detached channels, the maximum age
   *   ChannelCount   the count of open channels and the reports of closes
   *   Drainer        graceful closing; LeakDetector; SafeListener; AddressCheck
   *
   * The hit path ("Leases and striping"): a map lookup and one compare-and-set on the entry's
   * state word, which orders every lease against every close of that entry, so no dial returns a
   * lease on a channel this connector has shut down, and no lock is taken. Everything else goes
   * through DialAttempt.
   */

  /** Longest address accepted by {@link #dial(String)}. */
  static final int MAX_ADDRESS_LENGTH = AddressCheck.MAX_LENGTH;

  /**
   * The first channel of each address, the detached channels, and whether this connector is closed.
   */
  final ChannelTable table;

  /** Which channel of an address a dial leases, and when the address gets one more. */
  final AddressPool pool;

  /** Runs the dials. */
  final DialRunner runner;

  private final Expirer expirer;
  private final ChannelCount count;
  private final Drainer drainer;
  private final ConnectorListener listener;
  private final InstantSource clock;
  private final @Nullable LeakDetector leakDetector;

  /**
   * Whether the load of each channel is counted against its limit: with more than one channel per
   * address (the pool's setting copied here: one dependent load fewer per dial).
   */
  private final boolean countsLoad;

  /** The dial executor, if the connector made it (it then shuts it down). */
  private final @Nullable ExecutorService ownedDialExecutor;

  private final ScheduledExecutorService scheduler;
  private final boolean ownsScheduler;

  /** The thread running the close() that won the mark, until its sweep is done. */
  private volatile @Nullable Thread closingThread;

  /** Opened once the close() that won the mark has shut every channel down; see close(). */
  private final CountDownLatch swept = new CountDownLatch(1);

  private CachingConnector(Builder builder) {
    this.listener = SafeListener.of(builder.listeners);
    this.clock = builder.clock;
    this.pool = new AddressPool(builder.maxChannelsPerAddress);
    this.countsLoad = builder.maxChannelsPerAddress > 1;
    ChannelBound bound =
        builder.maximumChannels == Integer.MAX_VALUE
            ? null
            : new ChannelBound(builder.maximumChannels);
    Executor dialExecutor = builder.dialExecutor;
    if (dialExecutor != null) {
      this.ownedDialExecutor = null;
    } else {
      ExecutorService executor = Executors.newCachedThreadPool(daemonThreads("dial"));
      dialExecutor = executor;
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
    this.count = new ChannelCount(listener, bound);
    this.drainer = new Drainer(builder.shutdownGracePeriod, scheduler);
    ChannelStreams.Watch watch =
        new ChannelStreams.Watch(
            scheduler,
            SafeListener.isSilent(listener) ? null : listener,
            builder.maxCallsPerChannel,
            /* learns= */ builder.maxChannelsPerAddress > 1,
            new ChannelHealth.Policy(
                clock,
                builder.retiresSilentChannels,
                builder.silentFailedCalls,
                builder.silence.toMillis(),
                this::retireSilent));
    this.table = new ChannelTable(drainer, count, watch);
    this.runner =
        new DialRunner(
            table,
            count,
            bound,
            builder.dialer,
            listener,
            clock,
            dialExecutor,
            builder.dialTimeout);
    this.expirer = new Expirer(table, count, runner, drainer, clock, bound, builder.maxChannelAge);
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
    return dial(address, Nanos.saturated(timeout), timeout);
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
      // The hit path: small, so that it is inlined. The first channel, if it has room.
      LeasedChannel lease = tryLease(entry, limitOf(entry));
      if (lease != null) {
        return lease;
      }
    }
    return new DialAttempt(this, address, timeoutNanos, timeout).lease(entry);
  }

  /**
   * Leases a cached channel of {@code address} that has room, if there is one; never dials, never
   * waits and never blocks: the door of an event loop's hit. Counted as a dial by the listeners
   * ({@code onConnect}) only when it returns a lease, so a try then a {@link #dialAsync} is one
   * dial.
   *
   * @param address the target address
   * @return a lease on the channel, or {@code null} if the address has no published channel with
   *     room (not dialed, a dial in flight, all its channels full)
   * @throws NullPointerException if {@code address} is null
   * @throws IllegalArgumentException if {@code address} is not a valid address (see {@link
   *     #dial(String)})
   * @throws IllegalStateException if this connector is closed
   */
  public @Nullable LeasedChannel tryDial(String address) {
    requireNonNull(address, "address");
    table.checkOpen();
    Entry entry = table.get(address);
    if (entry == null) {
      AddressCheck.check(address);
      return null;
    }
    LeasedChannel lease = tryLease(entry, limitOf(entry));
    if (lease == null && countsLoad && !entry.isPending()) {
      Entry best = pool.choose(entry);
      if (best != null && best != entry && !best.isFull()) {
        lease = tryLease(best, best.limit());
      }
    }
    if (lease != null) {
      listener.onConnect(address);
    }
    return lease;
  }

  /**
   * Leases the cached channel for {@code address} as {@link #dial(String)} does, without blocking:
   * the future is complete on return on a hit, and completes when the dial does on a miss. The
   * caller's thread never waits and holds nothing; the future completes on the thread that
   * completes the dial (the dial executor's, for a dial of this call or another; the connector's
   * scheduler's, for a timeout; the caller of {@link #close()}), so dependent stages that may block
   * belong on an executor of their own ({@code thenApplyAsync}). With a {@linkplain
   * Builder#dialExecutor(Executor) dial executor} that runs tasks inline, a miss dials on the
   * caller's thread.
   *
   * <p>The future fails as {@code dial(String)} throws ({@link StatusRuntimeException} with the
   * same status, {@link IllegalStateException} once the connector is closed, also while it waits),
   * bound by the dial timeout and the deadline of {@link Context#current()} at the call. Cancelling
   * it leaves nothing behind: no waiter, no lease; a lease that completes a future already
   * cancelled is released.
   *
   * @param address the target address
   * @return the lease, when it is had; release it exactly once
   * @throws NullPointerException if {@code address} is null
   * @throws IllegalArgumentException if {@code address} is not a valid address
   */
  public CompletableFuture<LeasedChannel> dialAsync(String address) {
    return dialAsync(address, Long.MAX_VALUE, null);
  }

  /**
   * {@link #dialAsync(String)}, waiting for a dial for at most {@code timeout} (or the Context's
   * deadline, if sooner): past it, the future fails with {@code DEADLINE_EXCEEDED} and the dial
   * goes on.
   *
   * @param address the target address
   * @param timeout the longest the future waits for a dial; positive
   * @return the lease, when it is had; release it exactly once
   * @throws NullPointerException if an argument is null
   * @throws IllegalArgumentException if {@code timeout} is not positive, or {@code address} is not
   *     a valid address
   */
  public CompletableFuture<LeasedChannel> dialAsync(String address, Duration timeout) {
    requireNonNull(timeout, "timeout");
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive, was " + timeout);
    }
    return dialAsync(address, Nanos.saturated(timeout), timeout);
  }

  private CompletableFuture<LeasedChannel> dialAsync(
      String address, long timeoutNanos, @Nullable Duration timeout) {
    requireNonNull(address, "address");
    if (table.isClosed()) {
      return CompletableFuture.failedFuture(ChannelTable.closedException());
    }
    Entry entry = table.get(address);
    if (entry == null) {
      AddressCheck.check(address);
    } else {
      LeasedChannel lease = tryLease(entry, limitOf(entry));
      if (lease != null) {
        listener.onConnect(address);
        return CompletableFuture.completedFuture(lease);
      }
    }
    listener.onConnect(address);
    return new AsyncDial(this, address, timeoutNanos, timeout, scheduler).start(entry);
  }

  /**
   * Takes a lease on {@code entry} within {@code limit} (see {@link Entry#lease}), or returns null
   * if it is pending, closing, closed (the caller looks the address up again) or full. Drops an
   * entry whose channel someone else shut down.
   */
  @Nullable LeasedChannel tryLease(Entry entry, long limit) {
    int slot = entry.lease(clock, limit);
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

  /** The limit a dial leases {@code entry} within (see {@link Entry#lease}). */
  long limitOf(Entry entry) {
    return countsLoad ? entry.limit() : Entry.NO_LIMIT;
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

  /** Retires a channel its health found silent; see {@link ChannelTable#retireSilent}. */
  boolean retireSilent(Entry entry) {
    return table.retireSilent(entry);
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
   * Returns the number of calls whose headers wait in their channel's transport now: queued behind
   * a connection's limit of concurrent streams (MAX_CONCURRENT_STREAMS), or for a moment for the
   * transport's event loop. Walks every entry and is not an atomic snapshot, as {@link
   * #leaseCount()}.
   *
   * @return the calls queued in the transports of this connector's channels
   */
  public int queuedCallCount() {
    return table.queuedCallCount();
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
   * IllegalStateException}, and releasing a lease is a no-op. Idempotent: a call made while another
   * thread's close() runs returns once that one has shut every channel down (it does not wait for
   * the grace period).
   */
  /*
   * close(), step by step (docs/design.md, "7. Closing the connector"); each step runs even if one
   * before it threw:
   *   1. table.markClosed(): every path that adds an entry where the sweep looks reads the mark
   *      afterwards ("close() against publication");
   *   2-3. table.closeAll(): the map, then the detached set; a dial in flight is failed (its
   *      waiters get IllegalStateException at once), every channel closed by force, extra channels
   *      before their first channel. Then `swept` opens: a close() called meanwhile on another
   *      thread returns only now, when every channel is shut down (one called from inside the
   *      sweep, on its thread, returns at once); no listener has run yet, so none can hold it;
   *   4. the connector's own dial threads are interrupted (a dialer is never waited for); on one of
   *      them, close() takes its own interrupt back for the rest;
   *   5. leak detection stops;
   *   6. the closes are reported;
   *   7. drainer.end(): waits up to the grace period for every channel still draining, forces the
   *      rest, ends its own scheduler's thread ("Draining");
   *   8. the interrupt taken in step 4 is handed back.
   */
  @Override
  public void close() {
    if (!table.markClosed()) {
      awaitSwept();
      return;
    }
    closingThread = Thread.currentThread();
    List<Closed> closes = new ArrayList<>();
    boolean selfInterrupted = false;
    try {
      table.closeAll(runner, closes);
    } finally {
      closingThread = null;
      swept.countDown();
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
          drainer.end(ownsScheduler);
        } finally {
          if (selfInterrupted) {
            Thread.currentThread().interrupt();
          }
        }
      }
    }
  }

  /**
   * Waits until the close() that won the mark has shut every channel down; returns at once if
   * called from inside its sweep, and when interrupted (with the interrupt flag set).
   */
  private void awaitSwept() {
    if (closingThread == Thread.currentThread()) {
      return;
    }
    try {
      swept.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
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
    private boolean retiresSilentChannels = true;
    private int silentFailedCalls = 3;
    private Duration silence = Duration.ofSeconds(10);

    private Builder() {}

    /**
     * Bounds the channels open at once, over all addresses. Before a dial creates a channel past
     * the bound, idle channels (no lease, no call in flight) are closed, least recently leased
     * first (cause {@link CloseCause#EVICTED}), so that a burst of distinct addresses does not hold
     * a connection each until expiry. A channel in use is never closed: when none is idle the bound
     * is exceeded, and later dials close idle channels to come back under it. The order is
     * approximate (the clock algorithm: a channel leased since the last look is passed over once,
     * and looked at again). No lock is taken; a dial examines at most 64 channels in use, so the
     * bound is also exceeded when that many in a row are busy. Expiry is the same with a bound.
     * Unbounded by default.
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
     * Sets when a channel counts as silent: {@code failedCalls} calls on it in a row ended
     * DEADLINE_EXCEEDED (or UNAVAILABLE because keepalive failed), and a probe sent at the first of
     * them ({@code grpc.health.v1.Health/Check}, which any server answers, if only UNIMPLEMENTED)
     * heard nothing from the server for {@code silence}. A silent channel is retired (cause {@link
     * ConnectorListener.CloseCause#UNHEALTHY}): new dials get a fresh channel, the old one closes
     * once its leases and calls end; an address retires at most half its channels (at least one)
     * between two expiry passes. Defaults to 3 calls and 10 seconds.
     *
     * @param failedCalls the failed calls in a row; positive
     * @param silence how long the probe waits for an answer; positive
     * @return this builder
     * @throws IllegalArgumentException if {@code failedCalls} or {@code silence} is not positive
     */
    public Builder silentChannel(int failedCalls, Duration silence) {
      requireNonNull(silence, "silence");
      if (failedCalls <= 0) {
        throw new IllegalArgumentException(
            "silentChannel failedCalls must be positive, was " + failedCalls);
      }
      if (silence.toMillis() <= 0) {
        throw new IllegalArgumentException(
            "silentChannel silence must be at least 1 ms, was " + silence);
      }
      this.silentFailedCalls = failedCalls;
      this.silence = silence;
      return this;
    }

    /**
     * Sets whether silent channels ({@link #silentChannel(int, Duration)}) are retired. Defaults to
     * true.
     *
     * @param retire false to keep silent channels
     * @return this builder
     */
    public Builder retireSilentChannels(boolean retire) {
      this.retiresSilentChannels = retire;
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
