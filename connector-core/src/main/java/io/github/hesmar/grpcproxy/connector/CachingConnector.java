package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.lang.System.Logger.Level;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
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
 * (try-with-resources) or {@link #release(String, ManagedChannel)}. {@link #expire()}, called
 * periodically, closes the channels that had no lease and no dial at two consecutive passes, and
 * the channels detached by {@link #closeOnRelease(String)} once their leases are released.
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
 * lease; {@link #expire()} does not stall concurrent dials.
 */
public final class CachingConnector implements AutoCloseable {

  /*
   * Design
   * ======
   *
   * Two collections hold the channels this connector created and has not closed yet:
   *
   *   entries:  ConcurrentHashMap<String, Entry>, the attached entry of each address. An entry is
   *             put in the map (putIfAbsent) *before* its channel exists: winning putIfAbsent is
   *             the claim to dial that address, so at most one dial per address is in flight, and
   *             later callers find the pending entry and wait on its future (which the entry
   *             drops once its channel is published).
   *   detached: a concurrent set of entries taken out of the map by closeOnRelease (or found shut
   *             down by someone else) that expire() closes once their leases reach zero.
   *
   * Each Entry has one 64-bit state word, changed by compare-and-set, by an atomic add (release),
   * an atomic flip (a dial publishing its channel) and, when a dial fails, a volatile write of
   * CLOSED (the only concurrent change then, the waiting caller dropping its reservation, is
   * meaningless on a failed entry):
   *
   *   bits 0-31  LEASES    outstanding leases; while PENDING, 1 if the caller that started the
   *                        dial still waits for it (its reserved lease), else 0
   *   bit  32    DIALED    a lease was taken since the last expire() pass (lazy idle reset)
   *   bit  33    PENDING   the dialer has not returned yet: no leases can be taken
   *   bit  34    DETACHED  no new leases; close when LEASES reaches zero
   *   bit  35    CLOSED    terminal: whoever sets it shuts the channel down, exactly once
   *   bit  36    CLOSING   transient: a close is summing the lease cells (below)
   *
   * Leasing (the hot path) is map.get + one CAS that adds a lease and sets DIALED, and fails if
   * PENDING, DETACHED or CLOSED is set; closing is a CAS that sets CLOSED and fails if a lease was
   * taken meanwhile. So a lease and a close of the same entry are ordered by the state word: no
   * dial ever returns a lease on a channel this connector has shut down, and no lock is needed.
   * Releasing is an atomic decrement, guarded against double release by a flag on the lease.
   *
   * Striping. When two leases of one entry collide (a lease CAS fails while only the lease count
   * changed), the entry gets lease cells: counters on separate cache lines, one per thread slot,
   * so that threads leasing one hot address stop writing one word. A lease then adds 1 to its
   * thread's cell and *then* reads the state: if a flag is set it takes the 1 back. A non-forced
   * close sets CLOSING (only when the state word counts no lease), *then* reads the cells: if any
   * counts a lease it clears CLOSING, else it sets CLOSED. Both sides write before they read
   * (volatile), so at least one sees the other: no lease is ever granted on a channel that closes.
   * While CLOSING, leases, detaches and forced closes spin for the few loads of the sum. Leases
   * taken before striping stay in the state word; a lease remembers where it is counted.
   *
   * The caller that wins putIfAbsent does not lease afterwards: its lease is reserved in the
   * pending state, and the atomic step that publishes the channel (flipping PENDING off and DIALED
   * on) turns it into a lease. So no closeOnRelease() or expire() can detach or close a fresh
   * channel before the caller that dialed it holds its lease; otherwise that caller would dial a
   * second channel while closeOnRelease() reported the first, which no sequential order of the two
   * calls gives (CachingConnectorLincheckTest). A caller that stops waiting gives the reservation
   * back, so a late channel is cached with no lease.
   *
   * expire() walks the map (weakly consistent iteration, no lock held against dials) under
   * expireLock, which only serializes expire() with itself. Idle passes are counted in a field
   * written only under that lock; a dial resets the count lazily by setting DIALED, which the next
   * pass sees and clears. A pass that finds no lease counts as idle, so a channel closes at the
   * second pass after its last release (as in the seed), and a channel dialed between every two
   * passes never closes.
   *
   * close() sets `closed` and then sweeps both collections. Every path that publishes an entry
   * (dial completion, detach) re-reads `closed` afterwards and closes the entry itself if it is
   * set; with volatile accesses on both sides, at least one of the two sees the other, and the
   * CLOSED bit makes sure only one of them shuts the channel down.
   *
   * A channel shut down with a grace period goes into `draining`, and a task forces it once the
   * grace has passed. Whoever removes it from the set (that task, or close()) forces it, so it is
   * forced at most once. close() waits for every draining channel, those that expiry shut down
   * before included, up to the grace, forces what is left, then drops the pending tasks with its
   * own scheduler's shutdownNow(): its thread ends at once, not a grace period later. A channel a
   * concurrent expire() adds later either had its task accepted before that shutdownNow(), and the
   * forEach that follows it forces it, or has its task refused, and is forced on the spot.
   *
   * The connection count is an AtomicInteger changed with the CLOSED transitions; its callback is
   * delivered by whichever thread wins a "delivering" flag, which loops until the delivered value
   * equals the current one, so calls never overlap and the last value delivered is the final count.
   */

  private static final System.Logger LOG = System.getLogger(CachingConnector.class.getName());

  /** Longest address accepted by {@link #dial(String)}. */
  static final int MAX_ADDRESS_LENGTH = 2048;

  static final long LEASES = 0xFFFF_FFFFL;
  static final long DIALED = 1L << 32;
  static final long PENDING = 1L << 33;
  static final long DETACHED = 1L << 34;
  static final long CLOSED = 1L << 35;

  /** Transient: a close is summing the lease cells; leases wait, and it ends CLOSED or cleared. */
  static final long CLOSING = 1L << 36;

  /** {@link LeasedChannel#slot} of a lease counted in the state word, not in a cell. */
  static final int BASE = -1;

  private final ConcurrentHashMap<String, Entry> entries = new ConcurrentHashMap<>();
  private final Set<Entry> detached = ConcurrentHashMap.newKeySet();

  /**
   * Channels shut down gracefully whose forced shutdown is still to come: {@link #close()} waits
   * for them too. Whoever removes a channel forces it, so it is forced at most once.
   */
  private final Set<ManagedChannel> draining = ConcurrentHashMap.newKeySet();

  private final Dialer dialer;
  private final ConnectorListener listener;
  private final Executor dialExecutor;
  private final @Nullable ExecutorService ownedDialExecutor;
  private final ScheduledExecutorService scheduler;
  private final boolean ownsScheduler;
  private final InstantSource clock;
  private final @Nullable Duration leakDetectionThreshold;
  private final Duration shutdownGracePeriod;

  private final ReentrantLock expireLock = new ReentrantLock();
  private final AtomicBoolean closed = new AtomicBoolean();
  private final AtomicInteger openChannels = new AtomicInteger();
  private final AtomicBoolean deliveringCount = new AtomicBoolean();

  /** Written only by the holder of {@link #deliveringCount}. */
  private volatile int deliveredCount;

  private CachingConnector(Builder builder) {
    this.dialer = builder.dialer;
    this.listener = SafeListener.of(builder.listeners);
    this.clock = builder.clock;
    this.leakDetectionThreshold = builder.leakDetectionThreshold;
    this.shutdownGracePeriod = builder.shutdownGracePeriod;
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
   * flight for at most the deadline of {@link Context#current()}, if it has one.
   *
   * @param address the target address, for example {@code dns:///backend.example:443}
   * @return a lease on the channel; release it exactly once
   * @throws NullPointerException if {@code address} is null
   * @throws IllegalArgumentException if {@code address} is empty, blank, longer than 2048
   *     characters, or contains whitespace or control characters
   * @throws IllegalStateException if this connector is closed
   * @throws StatusRuntimeException with {@code UNAVAILABLE} if the dialer failed, {@code
   *     DEADLINE_EXCEEDED} if the context's deadline passed while waiting for the dial, {@code
   *     CANCELLED} if the context was cancelled or the thread interrupted while waiting
   */
  public LeasedChannel dial(String address) {
    return dial(address, Long.MAX_VALUE, null);
  }

  /**
   * Leases the cached channel for {@code address}, dialing it on a miss, waiting for a dial in
   * flight for at most {@code timeout} (or the deadline of {@link Context#current()}, if sooner). A
   * dial that completes after its callers stopped waiting is cached, not lost.
   *
   * @param address the target address, for example {@code dns:///backend.example:443}
   * @param timeout the longest this call waits for a dial; positive
   * @return a lease on the channel; release it exactly once
   * @throws NullPointerException if an argument is null
   * @throws IllegalArgumentException if {@code timeout} is not positive, or {@code address} is
   *     empty, blank, longer than 2048 characters, or contains whitespace or control characters
   * @throws IllegalStateException if this connector is closed
   * @throws StatusRuntimeException with {@code UNAVAILABLE} if the dialer failed, {@code
   *     DEADLINE_EXCEEDED} if the timeout passed while waiting for the dial, {@code CANCELLED} if
   *     the context was cancelled or the thread interrupted while waiting
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
    checkOpen();
    Entry entry = entries.get(address);
    if (entry == null) {
      checkAddress(address); // only on a miss: a cached address was checked when it was dialed
    }
    listener.onConnect(address);
    long start = 0;
    for (; ; ) {
      if (entry == null) {
        checkOpen();
        Entry fresh = new Entry(address);
        entry = entries.putIfAbsent(address, fresh);
        if (entry == null) {
          startDial(fresh);
          if (start == 0) {
            start = System.nanoTime();
          }
          LeasedChannel lease = awaitOwnDial(fresh, start, timeoutNanos, timeout);
          if (lease != null) {
            return lease;
          }
          entry = entries.get(address);
          continue;
        }
      }
      if ((entry.state & PENDING) != 0) {
        if (start == 0) {
          start = System.nanoTime();
        }
        awaitDial(entry, start, timeoutNanos, timeout);
      } else {
        LeasedChannel lease = tryLease(entry);
        if (lease != null) {
          return lease;
        }
        checkOpen();
      }
      entry = entries.get(address);
    }
  }

  /**
   * Takes a lease on {@code entry}, or returns null if it is closing or closed (the caller looks
   * the address up again). Drops an entry whose channel someone else shut down.
   */
  private @Nullable LeasedChannel tryLease(Entry entry) {
    for (; ; ) {
      long state = entry.state;
      if ((state & PENDING) != 0) {
        return null;
      }
      if ((state & (DETACHED | CLOSED)) != 0) {
        entries.remove(entry.address, entry); // help a concurrent close or detach
        return null;
      }
      if ((state & CLOSING) != 0) {
        Thread.onSpinWait(); // an expiry pass is summing the cells: a few loads
        continue;
      }
      if (entry.channel().isShutdown()) {
        detach(entry, CloseCause.STALE);
        return null;
      }
      AtomicLongArray cells = entry.cells;
      int slot;
      if (cells == null) {
        if (!Entry.STATE.compareAndSet(entry, state, (state + 1) | DIALED)) {
          if ((entry.state & ~LEASES) == (state & ~LEASES)) {
            entry.stripe(); // lost to another lease of this entry: count leases in cells
          }
          continue;
        }
        slot = BASE;
      } else {
        // Dekker with closeIfUnleased(): add to a cell, then read the flags; a close sets CLOSING,
        // then sums the cells. One of the two sees the other.
        slot = Entry.slotOfCurrentThread(cells);
        cells.getAndIncrement(slot);
        long now = entry.state;
        if ((now & (PENDING | DETACHED | CLOSED | CLOSING)) != 0) {
          cells.getAndDecrement(slot);
          continue;
        }
        if ((now & DIALED) == 0) {
          Entry.STATE.getAndBitwiseOr(entry, DIALED);
        }
        state = now;
      }
      if ((state & DIALED) == 0) {
        entry.lastDialedMillis = clock.millis();
      }
      LeakWatch leakWatch = leakDetectionThreshold == null ? null : watchForLeak(entry);
      return new LeasedChannel(this, entry, slot, leakWatch);
    }
  }

  /**
   * Waits for the dial this call started on {@code entry} and returns the lease reserved for this
   * call, which the dial's completion turned into a lease; null if the channel is unusable (shut
   * down already) and the caller should look the address up again. Gives the reservation back if it
   * stops waiting.
   */
  private @Nullable LeasedChannel awaitOwnDial(
      Entry entry, long start, long timeoutNanos, @Nullable Duration timeout) {
    try {
      awaitDial(entry, start, timeoutNanos, timeout);
    } catch (RuntimeException | Error e) {
      // Still pending: drop the reservation, so the channel is cached with no lease. Completed
      // meanwhile: a failed dial left no lease (LEASES is 0); a successful one holds ours.
      if (!Entry.STATE.compareAndSet(entry, PENDING | 1L, PENDING) && (entry.state & LEASES) != 0) {
        Entry.STATE.getAndAdd(entry, -1L);
      }
      throw e;
    }
    long state = entry.state;
    if ((state & CLOSED) != 0 || entry.channel().isShutdown()) {
      // Closed by close() (nothing else closes an entry with a lease), or the dialer returned a
      // channel that is shut down already: never handed out.
      Entry.STATE.getAndAdd(entry, -1L);
      if ((state & CLOSED) == 0) {
        detach(entry, CloseCause.STALE);
      }
      checkOpen();
      return null;
    }
    LeakWatch leakWatch = leakDetectionThreshold == null ? null : watchForLeak(entry);
    return new LeasedChannel(this, entry, BASE, leakWatch);
  }

  private void startDial(Entry entry) {
    listener.onCacheMiss(entry.address);
    try {
      dialExecutor.execute(() -> runDial(entry));
    } catch (RejectedExecutionException e) {
      failDial(entry, isClosed() ? closedException() : e);
    }
  }

  /** Runs the dialer for {@code entry}, on the dial executor. */
  private void runDial(Entry entry) {
    long start = System.nanoTime();
    ManagedChannel channel;
    try {
      channel = dialer.dial(entry.address);
      if (channel == null) {
        throw new NullPointerException("Dialer " + dialer + " returned null");
      }
    } catch (Throwable t) {
      listener.onDialComplete(entry.address, Duration.ofNanos(System.nanoTime() - start), t);
      failDial(entry, t);
      if (t instanceof VirtualMachineError error) {
        throw error;
      }
      return;
    }
    listener.onDialComplete(entry.address, Duration.ofNanos(System.nanoTime() - start), null);
    long now = clock.millis();
    entry.createdMillis = now;
    entry.lastDialedMillis = now;
    entry.channel = channel;
    openChannels.incrementAndGet();
    // Publishes the channel: leases can be taken from here on, and the lease reserved for the
    // caller that started the dial, if it still waits, is its lease from this step on. Only that
    // caller changes the state of a pending entry (to drop its reservation), so flipping PENDING
    // off and DIALED on is enough. DIALED makes the first expiry pass count as idle pass 1.
    Entry.STATE.getAndBitwiseXor(entry, PENDING | DIALED);
    // Deliver the count before waking the waiters, so that a caller whose dial returned has seen
    // its channel counted.
    deliverConnectionCount();
    CompletableFuture<Entry> dialed = requireNonNull(entry.dialed, "dialed of a pending entry");
    // Only waiters need the future: it is not kept for the entry's life (24 bytes an entry). A
    // waiter that reads it after this sees no future and looks the address up again.
    entry.dialed = null;
    dialed.complete(entry);
    if (isClosed()) {
      closeEntry(entry, CloseCause.SHUTDOWN, /* force= */ true);
    }
  }

  private void failDial(Entry entry, Throwable cause) {
    entry.state = CLOSED;
    entries.remove(entry.address, entry);
    requireNonNull(entry.dialed, "dialed of a pending entry").completeExceptionally(cause);
  }

  /** Waits for the pending {@code entry}'s dial, within the caller's bounds. */
  private void awaitDial(Entry entry, long start, long timeoutNanos, @Nullable Duration timeout) {
    Context context = Context.current();
    long waitNanos = timeoutNanos;
    Deadline deadline = context.getDeadline();
    boolean contextBound = false;
    if (deadline != null) {
      long contextNanos = deadline.timeRemaining(TimeUnit.NANOSECONDS);
      if (contextNanos < timeoutNanos) {
        waitNanos = contextNanos;
        contextBound = true;
      }
    }
    waitNanos -= System.nanoTime() - start;
    CompletableFuture<Entry> dialed = entry.dialed;
    if (dialed == null) {
      return; // the dial completed successfully meanwhile
    }
    CompletableFuture<Object> cancelled = new CompletableFuture<>();
    Context.CancellationListener onCancel = ctx -> cancelled.complete(ctx);
    context.addListener(onCancel, Runnable::run);
    try {
      if (waitNanos <= 0) {
        if (!dialed.isDone()) {
          throw new TimeoutException();
        }
      } else {
        CompletableFuture.anyOf(dialed, cancelled).get(waitNanos, TimeUnit.NANOSECONDS);
      }
      if (!dialed.isDone() && cancelled.isDone()) {
        if (deadline != null && deadline.isExpired()) {
          throw new TimeoutException(); // a Context is cancelled when its deadline passes
        }
        throw Status.CANCELLED
            .withDescription("Context cancelled while waiting for the dial of " + entry.address)
            .withCause(context.cancellationCause())
            .asRuntimeException();
      }
      dialed.join();
    } catch (TimeoutException e) {
      String bound =
          contextBound
              ? "the deadline of the current gRPC Context"
              : "the timeout of " + requireNonNull(timeout);
      throw Status.DEADLINE_EXCEEDED
          .withDescription(
              "Dial of "
                  + entry.address
                  + " did not complete within "
                  + bound
                  + "; it goes on, and its channel will be cached")
          .asRuntimeException();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw Status.CANCELLED
          .withDescription("Interrupted while waiting for the dial of " + entry.address)
          .withCause(e)
          .asRuntimeException();
    } catch (ExecutionException | CompletionException e) {
      throw dialFailure(entry, e.getCause() == null ? e : e.getCause());
    } catch (CancellationException e) {
      throw dialFailure(entry, e);
    } finally {
      context.removeListener(onCancel);
    }
  }

  private RuntimeException dialFailure(Entry entry, Throwable cause) {
    if (cause instanceof IllegalStateException && isClosed()) {
      return closedException();
    }
    return Status.UNAVAILABLE
        .withDescription("Dial of " + entry.address + " failed: " + cause)
        .withCause(cause)
        .asRuntimeException();
  }

  /**
   * Releases a lease taken by {@link #dial(String)}. Equivalent to {@link LeasedChannel#close()}.
   * Releasing a lease twice, or after this connector closed, is a no-op.
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
    Entry entry = lease.entry;
    if (lease.slot == BASE) {
      Entry.STATE.getAndAdd(entry, -1L);
    } else {
      requireNonNull(entry.cells, "cells of a striped entry").getAndDecrement(lease.slot);
    }
    LeakWatch leakWatch = lease.leakWatch;
    if (leakWatch != null) {
      leakWatch.released();
    }
  }

  /**
   * Runs one expiry pass: closes every channel that had no lease and no dial at this pass and the
   * one before, and every channel detached by {@link #closeOnRelease(String)} whose leases have all
   * been released. Closing is graceful ({@link ManagedChannel#shutdown()}, then {@link
   * ManagedChannel#shutdownNow()} after the shutdown grace period) and does not block. Concurrent
   * dials are not stalled; concurrent calls of {@code expire()} run one after the other.
   *
   * @return the addresses of the channels closed by this pass
   */
  @SuppressWarnings("ModifyCollectionInEnhancedForLoop") // the detached set is concurrent
  public List<String> expire() {
    List<String> expired = new ArrayList<>();
    expireLock.lock();
    try {
      for (Entry entry : entries.values()) {
        if (expireAttached(entry)) {
          expired.add(entry.address);
        }
      }
      for (Entry entry : detached) {
        if ((entry.state & CLOSED) != 0) {
          detached.remove(entry); // a concurrent set: removal while iterating is safe
        } else if (closeEntry(entry, requireNonNull(entry.detachCause), /* force= */ false)) {
          expired.add(entry.address);
        }
      }
    } finally {
      expireLock.unlock();
    }
    return expired;
  }

  /** One pass over one attached entry; returns whether it closed it. Under expireLock. */
  private boolean expireAttached(Entry entry) {
    for (; ; ) {
      long state = entry.state;
      if ((state & (PENDING | DETACHED | CLOSED | CLOSING)) != 0) {
        return false;
      }
      if (entry.channel().isShutdown()) {
        detach(entry, CloseCause.STALE);
        return closeEntry(entry, CloseCause.STALE, /* force= */ false);
      }
      long leases = entry.leases(state);
      if ((state & DIALED) != 0) {
        if (Entry.STATE.compareAndSet(entry, state, state & ~DIALED)) {
          entry.idlePasses = leases == 0 ? 1 : 0;
          return false;
        }
      } else if (leases != 0) {
        entry.idlePasses = 0;
        return false;
      } else if (entry.idlePasses < 1) {
        entry.idlePasses = 1;
        return false;
      } else {
        switch (closeIfUnleased(entry, state)) {
          case CLOSED_NOW -> {
            entry.idlePasses = 2;
            entries.remove(entry.address, entry);
            shutdownChannel(entry, CloseCause.EXPIRED);
            return true;
          }
          case LEASED -> {
            entry.idlePasses = 0;
            return false;
          }
          case CHANGED -> {} // look again
        }
      }
    }
  }

  /** What {@link #closeIfUnleased} did. */
  private enum CloseAttempt {
    CLOSED_NOW,
    LEASED,
    CHANGED
  }

  /**
   * Sets CLOSED on {@code entry} if it holds no lease, given {@code state}, a state without
   * PENDING, CLOSED or CLOSING and with no lease in the state word. Leases in cells are summed
   * under CLOSING, which holds new leases back (see tryLease).
   */
  private static CloseAttempt closeIfUnleased(Entry entry, long state) {
    if ((state & LEASES) != 0) {
      return CloseAttempt.LEASED;
    }
    if (!Entry.STATE.compareAndSet(entry, state, state | CLOSING)) {
      return CloseAttempt.CHANGED;
    }
    AtomicLongArray cells = entry.cells; // read after CLOSING is set
    if (cells != null && Entry.sum(cells) != 0) {
      Entry.STATE.getAndBitwiseAnd(entry, ~CLOSING);
      return CloseAttempt.LEASED;
    }
    // Nothing changes a CLOSING state but this thread: leases wait, detach and close spin.
    entry.state = state | CLOSED;
    return CloseAttempt.CLOSED_NOW;
  }

  /**
   * Detaches the channel cached for {@code address}: the next {@link #dial(String)} of it creates a
   * new channel, and the old one closes at the first {@link #expire()} after its last lease is
   * released.
   *
   * @param address the target address
   * @return whether a channel was cached for {@code address} (false while its first dial is still
   *     in flight)
   * @throws NullPointerException if {@code address} is null
   * @throws IllegalArgumentException if {@code address} is not a valid address (see {@link
   *     #dial(String)})
   */
  public boolean closeOnRelease(String address) {
    checkAddress(address);
    for (; ; ) {
      Entry entry = entries.get(address);
      if (entry == null) {
        return false;
      }
      if ((entry.state & PENDING) != 0) {
        return false; // a dial in flight: nothing cached yet
      }
      if (detach(entry, CloseCause.RELEASED)) {
        return true;
      }
      entries.remove(address, entry);
    }
  }

  /** Moves a ready entry from the map to the detached set; returns whether this call did it. */
  private boolean detach(Entry entry, CloseCause cause) {
    for (; ; ) {
      long state = entry.state;
      if ((state & (PENDING | DETACHED | CLOSED)) != 0) {
        return false;
      }
      if ((state & CLOSING) != 0) {
        Thread.onSpinWait();
        continue;
      }
      entry.detachCause = cause;
      if (Entry.STATE.compareAndSet(entry, state, state | DETACHED)) {
        entries.remove(entry.address, entry);
        detached.add(entry);
        if (isClosed()) {
          closeEntry(entry, CloseCause.SHUTDOWN, /* force= */ true);
        }
        return true;
      }
    }
  }

  /**
   * Closes {@code entry} if no one else did: always if {@code force}, else only at zero leases.
   * Returns whether this call closed it.
   */
  private boolean closeEntry(Entry entry, CloseCause cause, boolean force) {
    for (; ; ) {
      long state = entry.state;
      if ((state & (PENDING | CLOSED)) != 0) {
        return false;
      }
      if ((state & CLOSING) != 0) {
        Thread.onSpinWait();
        continue;
      }
      boolean closed;
      if (force) {
        closed = Entry.STATE.compareAndSet(entry, state, state | CLOSED);
      } else {
        CloseAttempt attempt = closeIfUnleased(entry, state);
        if (attempt == CloseAttempt.LEASED) {
          return false;
        }
        closed = attempt == CloseAttempt.CLOSED_NOW;
      }
      if (closed) {
        entries.remove(entry.address, entry);
        detached.remove(entry);
        shutdownChannel(entry, cause);
        return true;
      }
    }
  }

  /** Shuts down the channel of an entry whose CLOSED bit this thread set. */
  private void shutdownChannel(Entry entry, CloseCause cause) {
    ManagedChannel channel = entry.channel();
    openChannels.decrementAndGet();
    listener.onClose(entry.address, cause);
    channel.shutdown();
    if (shutdownGracePeriod.isZero()) {
      channel.shutdownNow();
    } else {
      draining.add(channel);
      try {
        ScheduledFuture<?> unused =
            scheduler.schedule(
                () -> forceIfDraining(channel),
                saturatedNanos(shutdownGracePeriod),
                TimeUnit.NANOSECONDS);
      } catch (RejectedExecutionException e) {
        forceIfDraining(channel); // closing: the scheduler is shut down
      }
    }
    deliverConnectionCount();
  }

  /**
   * Forces {@code channel} shut unless it terminated or someone else took it off {@link #draining}.
   */
  private void forceIfDraining(ManagedChannel channel) {
    if (draining.remove(channel) && !channel.isTerminated()) {
      channel.shutdownNow();
    }
  }

  /**
   * Returns a snapshot of the cached channels, detached ones included, sorted by address. Not
   * atomic: it reads one channel after the other, so while other operations run it may miss a
   * change or list a channel that is being detached twice; it is exact when nothing else runs.
   *
   * @return one entry per open channel
   */
  public List<ConnectionInfo> connections() {
    List<ConnectionInfo> infos = new ArrayList<>();
    for (Entry entry : entries.values()) {
      addInfo(entry, infos);
    }
    for (Entry entry : detached) {
      addInfo(entry, infos);
    }
    infos.sort(Comparator.comparing(ConnectionInfo::address));
    return infos;
  }

  private void addInfo(Entry entry, List<ConnectionInfo> infos) {
    long state = entry.state;
    if ((state & (PENDING | CLOSED)) != 0) {
      return;
    }
    ConnectivityState connectivity;
    try {
      connectivity = entry.channel().getState(/* requestConnection= */ false);
    } catch (UnsupportedOperationException e) {
      connectivity = null;
    }
    infos.add(
        new ConnectionInfo(
            entry.address,
            (int) Math.min(Integer.MAX_VALUE, entry.leases(state)),
            (state & DIALED) != 0 ? 0 : entry.idlePasses,
            connectivity,
            (state & DETACHED) != 0,
            Instant.ofEpochMilli(entry.createdMillis),
            Instant.ofEpochMilli(entry.lastDialedMillis)));
  }

  /**
   * Returns the number of open channels: cached, and detached but not yet closed.
   *
   * @return the number of channels created and not yet closed
   */
  public int connectionCount() {
    return openChannels.get();
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
    long leases = 0;
    for (Entry entry : entries.values()) {
      leases += entry.leases();
    }
    for (Entry entry : detached) {
      leases += entry.leases();
    }
    return (int) Math.min(Integer.MAX_VALUE, leases);
  }

  /**
   * Shuts every channel down, leased or not, and waits up to the shutdown grace period for them,
   * and for channels that expiry closed earlier and that are still finishing their calls, to
   * terminate before forcing them with {@link ManagedChannel#shutdownNow()}. When it returns, every
   * channel it holds is shut down (a dial still in flight shuts its channel down as it completes),
   * and the threads it started itself end (a dial thread once its dial completes). Afterwards
   * {@link #dial(String)} throws {@link IllegalStateException}, and releasing a lease is a no-op.
   * Idempotent.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    for (Entry entry : entries.values()) {
      closeEntry(entry, CloseCause.SHUTDOWN, /* force= */ true);
      entries.remove(entry.address, entry);
    }
    for (Entry entry : detached) {
      closeEntry(entry, CloseCause.SHUTDOWN, /* force= */ true);
    }
    if (ownedDialExecutor != null) {
      ownedDialExecutor.shutdown();
    }
    // Every channel shut down gracefully, by this call or by an expiry pass before, is in draining
    // (with a zero grace period none is: they were forced at once).
    awaitDraining();
    if (ownsScheduler) {
      // Drops the forced shutdowns still scheduled (their channels were awaited or forced above)
      // and leak checks, so that its thread ends now rather than a grace period later.
      scheduler.shutdownNow();
    }
    // A channel that a concurrent expire() shut down after the wait, whose forced shutdown was
    // just dropped (or, on a user's scheduler, is still to come: forced now instead). From now on
    // an owned scheduler refuses the task and the channel is forced on the spot.
    draining.forEach(this::forceIfDraining);
  }

  /** Waits until the draining channels terminate, forcing the ones left at the grace's end. */
  @SuppressWarnings("ModifyCollectionInEnhancedForLoop") // draining is a concurrent set
  private void awaitDraining() {
    long deadline = System.nanoTime() + saturatedNanos(shutdownGracePeriod);
    try {
      for (ManagedChannel channel : draining) {
        long remaining = deadline - System.nanoTime();
        if (remaining > 0 && channel.awaitTermination(remaining, TimeUnit.NANOSECONDS)) {
          draining.remove(channel);
        } else {
          forceIfDraining(channel);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      draining.forEach(this::forceIfDraining);
    }
  }

  private boolean isClosed() {
    return closed.get();
  }

  private void checkOpen() {
    if (isClosed()) {
      throw closedException();
    }
  }

  private static IllegalStateException closedException() {
    return new IllegalStateException("CachingConnector is closed");
  }

  /** Delivers the connection count to the listener; see the design comment on ordering. */
  private void deliverConnectionCount() {
    do {
      if (!deliveringCount.compareAndSet(false, true)) {
        return;
      }
      try {
        int count = openChannels.get();
        if (count != deliveredCount) {
          deliveredCount = count;
          listener.onConnectionCountUpdate(count);
        }
      } finally {
        deliveringCount.set(false);
      }
    } while (openChannels.get() != deliveredCount);
  }

  private LeakWatch watchForLeak(Entry entry) {
    LeakWatch watch = new LeakWatch(entry.address, clock.instant());
    try {
      watch.future =
          scheduler.schedule(
              watch, saturatedNanos(requireNonNull(leakDetectionThreshold)), TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) {
      // Closing: leak detection ends with the connector.
    }
    return watch;
  }

  /**
   * Checks an address given to {@link #dial(String)} or {@link #closeOnRelease(String)}.
   *
   * @throws NullPointerException if null
   * @throws IllegalArgumentException saying what is wrong with it
   */
  static String checkAddress(String address) {
    requireNonNull(address, "address");
    if (address.isEmpty()) {
      throw new IllegalArgumentException("address must not be empty");
    }
    if (address.length() > MAX_ADDRESS_LENGTH) {
      throw new IllegalArgumentException(
          "address is "
              + address.length()
              + " characters long; the limit is "
              + MAX_ADDRESS_LENGTH);
    }
    if (address.isBlank()) {
      throw new IllegalArgumentException("address must not be blank");
    }
    for (int i = 0; i < address.length(); ) {
      int c = address.codePointAt(i);
      String problem = null;
      if (Character.isWhitespace(c) || Character.isSpaceChar(c)) {
        problem = "whitespace";
      } else if (Character.isISOControl(c)) {
        problem = "a control character";
      } else if (Character.getType(c) == Character.FORMAT) {
        problem = "an invisible format character";
      } else if (Character.isSurrogate((char) c) && Character.charCount(c) == 1) {
        problem = "an unpaired surrogate";
      }
      if (problem != null) {
        throw new IllegalArgumentException(
            String.format(
                "address must not contain %s, found U+%04X at index %d of \"%s\"",
                problem, c, i, printable(address)));
      }
      i += Character.charCount(c);
    }
    return address;
  }

  private static String printable(String address) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < address.length() && out.length() < 80; i++) {
      char c = address.charAt(i);
      if (c >= 0x20 && c < 0x7F) {
        out.append(c);
      } else {
        out.append(String.format("\\u%04X", (int) c));
      }
    }
    return out.length() < address.length() ? out.append("...").toString() : out.toString();
  }

  private static long saturatedNanos(Duration duration) {
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
    return "CachingConnector{channels=" + connectionCount() + ", closed=" + isClosed() + "}";
  }

  /** A channel of one address, from the claim to dial it until it is closed. */
  static final class Entry {

    static final VarHandle STATE;
    static final VarHandle CELLS;

    static {
      try {
        STATE = MethodHandles.lookup().findVarHandle(Entry.class, "state", long.class);
        CELLS = MethodHandles.lookup().findVarHandle(Entry.class, "cells", AtomicLongArray.class);
      } catch (ReflectiveOperationException e) {
        throw new ExceptionInInitializerError(e);
      }
    }

    final String address;

    /**
     * Completed when the dial ends, with this entry or the dialer's failure; null once the dial
     * succeeded (kept after a failure, for the waiters to see it).
     */
    volatile @Nullable CompletableFuture<Entry> dialed = new CompletableFuture<>();

    /** Set before PENDING is cleared, read only after reading a state without PENDING. */
    private @Nullable ManagedChannel channel;

    /**
     * See the design comment: LEASES, DIALED, PENDING, DETACHED, CLOSED. Starts pending, with the
     * lease reserved for the caller that dials.
     */
    volatile long state = PENDING | 1L;

    /** Consecutive idle passes; written only under expireLock. */
    volatile int idlePasses;

    volatile long createdMillis;
    volatile long lastDialedMillis;

    /** Why the entry was detached; written before DETACHED is set. */
    volatile @Nullable CloseCause detachCause;

    /**
     * Lease counters, one per thread slot, each on its own cache line; null until two leases of
     * this entry collide (then set once, never replaced). Leases of a striped entry are counted
     * here; those taken before stay in the state word.
     */
    volatile @Nullable AtomicLongArray cells;

    /** Longs between two cells: 128 bytes, two cache lines (adjacent-line prefetch). */
    private static final int CELL_STRIDE = 16;

    private static final int CELL_COUNT =
        Math.min(
            16, Integer.highestOneBit(Math.max(1, Runtime.getRuntime().availableProcessors())) * 2);

    /** Counts the leases of this entry in cells from now on. */
    void stripe() {
      if (cells == null) {
        AtomicLongArray striped = new AtomicLongArray((CELL_COUNT + 1) * CELL_STRIDE);
        CELLS.compareAndSet(this, null, striped);
      }
    }

    /** The cell of the calling thread: a fixed one per thread, spread by a hash of its identity. */
    static int slotOfCurrentThread(AtomicLongArray cells) {
      int hash = System.identityHashCode(Thread.currentThread()) * 0x9E3779B9;
      int count = cells.length() / CELL_STRIDE - 1;
      return ((hash >>> 16) & (count - 1)) * CELL_STRIDE + CELL_STRIDE;
    }

    static long sum(AtomicLongArray cells) {
      long sum = 0;
      for (int slot = CELL_STRIDE; slot < cells.length(); slot += CELL_STRIDE) {
        sum += cells.get(slot);
      }
      return sum;
    }

    /** The leases of this entry, given a state of it read before: state word plus cells. */
    long leases(long state) {
      AtomicLongArray striped = cells;
      return (state & LEASES) + (striped == null ? 0 : sum(striped));
    }

    Entry(String address) {
      this.address = address;
    }

    ManagedChannel channel() {
      return requireNonNull(channel, "channel of a pending entry");
    }

    long leases() {
      long state = this.state;
      return (state & (PENDING | CLOSED)) != 0 ? 0 : leases(state);
    }
  }

  /** Watches one lease for the leak detection threshold; logs once if it is exceeded. */
  final class LeakWatch implements Runnable {

    private final String address;
    private final Instant takenAt;
    private final Throwable takenBy;
    volatile @Nullable ScheduledFuture<?> future;
    private volatile boolean reported;

    LeakWatch(String address, Instant takenAt) {
      this.address = address;
      this.takenAt = takenAt;
      this.takenBy =
          new Throwable(
              "Lease on "
                  + address
                  + " taken by thread "
                  + Thread.currentThread().getName()
                  + " at "
                  + takenAt
                  + ", here");
    }

    @Override
    public void run() {
      reported = true;
      Duration heldFor = Duration.between(takenAt, clock.instant());
      LOG.log(
          Level.WARNING,
          "Possible lease leak: the lease on "
              + address
              + " has been held for "
              + heldFor
              + " (leak detection threshold "
              + leakDetectionThreshold
              + ")",
          takenBy);
      listener.onLeak(address, heldFor);
    }

    void released() {
      ScheduledFuture<?> future = this.future;
      if (future != null) {
        future.cancel(/* mayInterruptIfRunning= */ false);
      }
      if (reported) {
        LOG.log(
            Level.INFO,
            "Lease on "
                + address
                + " reported as a possible leak was released after "
                + Duration.between(takenAt, clock.instant()));
      }
    }
  }

  /** Calls the registered listeners, logging and swallowing what they throw. */
  private static final class SafeListener implements ConnectorListener {

    private static final ConnectorListener NONE = new ConnectorListener() {};

    private final ConnectorListener[] listeners;

    private SafeListener(ConnectorListener[] listeners) {
      this.listeners = listeners;
    }

    static ConnectorListener of(List<ConnectorListener> listeners) {
      return listeners.isEmpty()
          ? NONE
          : new SafeListener(listeners.toArray(new ConnectorListener[0]));
    }

    private static void failed(String callback, Throwable t) {
      if (t instanceof VirtualMachineError error) {
        throw error;
      }
      LOG.log(Level.WARNING, "CachingConnector listener " + callback + " threw; ignored", t);
    }

    @Override
    public void onConnect(String address) {
      for (ConnectorListener l : listeners) {
        try {
          l.onConnect(address);
        } catch (Throwable t) {
          failed("onConnect", t);
        }
      }
    }

    @Override
    public void onCacheMiss(String address) {
      for (ConnectorListener l : listeners) {
        try {
          l.onCacheMiss(address);
        } catch (Throwable t) {
          failed("onCacheMiss", t);
        }
      }
    }

    @Override
    public void onConnectionCountUpdate(int count) {
      for (ConnectorListener l : listeners) {
        try {
          l.onConnectionCountUpdate(count);
        } catch (Throwable t) {
          failed("onConnectionCountUpdate", t);
        }
      }
    }

    @Override
    public void onDialComplete(String address, Duration duration, @Nullable Throwable failure) {
      for (ConnectorListener l : listeners) {
        try {
          l.onDialComplete(address, duration, failure);
        } catch (Throwable t) {
          failed("onDialComplete", t);
        }
      }
    }

    @Override
    public void onClose(String address, CloseCause cause) {
      for (ConnectorListener l : listeners) {
        try {
          l.onClose(address, cause);
        } catch (Throwable t) {
          failed("onClose", t);
        }
      }
    }

    @Override
    public void onLeak(String address, Duration heldFor) {
      for (ConnectorListener l : listeners) {
        try {
          l.onLeak(address, heldFor);
        } catch (Throwable t) {
          failed("onLeak", t);
        }
      }
    }
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

    private Builder() {}

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
     * warning, with the thread and stack trace of the {@code dial} that took it, and again at info
     * level if it is released later. Off by default; {@link Duration#ZERO} turns it off. When off
     * it costs nothing; when on, each dial captures a stack trace and schedules a task.
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
     * Sets the scheduler for delayed work: the forced shutdown after the grace period, and leak
     * detection. Defaults to a single daemon thread owned (and shut down) by the connector; a
     * scheduler given here is not shut down by the connector.
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
