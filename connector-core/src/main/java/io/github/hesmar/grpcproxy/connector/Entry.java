package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.ManagedChannel;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicLongArray;
import org.jspecify.annotations.Nullable;

/**
 * One channel of one address, from the claim to dial it until it is closed: its state word, its
 * lease cells and its count of calls in flight. Thread-safe; see the design comment of {@link
 * CachingConnector} for how the state word changes.
 *
 * <p>The state word (64 bits, changed by CAS, atomic add and atomic bit operations only):
 *
 * <pre>
 *   bits 0-31  LEASES    outstanding leases counted in the word; while PENDING, 1 if the caller
 *                        that started the dial still waits for it (its reserved lease), else 0
 *   bit  32    DIALED    a lease was taken since the last expire() pass (lazy idle reset)
 *   bit  33    PENDING   the dialer has not returned yet: no leases can be taken
 *   bit  34    DETACHED  no new leases; close when leases and calls reach zero
 *   bit  35    CLOSED    terminal: whoever sets it shuts the channel down, exactly once
 *   bit  36    CLOSING   transient: a close is summing the cells and the calls
 *   bit  37    RECENT    a lease was taken since the eviction hand last passed this channel
 *                        (the reference bit of {@link ChannelBound}'s clock; set with DIALED)
 * </pre>
 *
 * <p>Calls and the close. A call is counted in {@link #calls} from its start to its end. A call
 * starts on a held lease (or, rarely, on a call object made before its lease was released), and
 * {@link #startCall()} adds to {@link #calls} <em>before</em> it reads the state word, while a
 * non-forced close ({@link #closeIfIdle}) sets CLOSING <em>before</em> it reads {@link #calls}.
 * Both are volatile, so at least one sees the other: either the close sees the call and gives up,
 * or the call sees CLOSING, waits for its outcome and, if CLOSED, takes its count back and fails at
 * once with UNAVAILABLE without starting on the channel (whose shutdown() may be still to come).
 * While the lease that starts a call is held, the close cannot succeed anyway: the lease is
 * counted. So a close never wins against a call that started on a held lease.
 */
final class Entry {

  static final long LEASES = 0xFFFF_FFFFL;
  static final long DIALED = 1L << 32;
  static final long PENDING = 1L << 33;
  static final long DETACHED = 1L << 34;
  static final long CLOSED = 1L << 35;

  /** Transient: a close is summing the lease cells and the calls; it ends CLOSED or cleared. */
  static final long CLOSING = 1L << 36;

  /** A lease was taken since {@link ChannelBound} last cleared it: the channel is not evicted. */
  static final long RECENT = 1L << 37;

  /** What every lease sets: the marks of use for expiry and for eviction. */
  static final long USED = DIALED | RECENT;

  /** {@link LeasedChannel#slot} of a lease counted in the state word, not in a cell. */
  static final int BASE = -1;

  static final VarHandle STATE;
  private static final VarHandle CELLS;
  private static final VarHandle CALLS;
  static final VarHandle SIBLINGS;

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      STATE = lookup.findVarHandle(Entry.class, "state", long.class);
      CELLS = lookup.findVarHandle(Entry.class, "cells", AtomicLongArray.class);
      CALLS = lookup.findVarHandle(Entry.class, "calls", long.class);
      SIBLINGS = lookup.findVarHandle(Entry.class, "siblings", Entry[].class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  final String address;

  /** This channel's number in its connector, from 1 in the order dials started. */
  final long id;

  /**
   * The address's first channel, whose {@link #siblings} list this one, if this is an extra channel
   * of its address (see {@link AddressPool}); null if this is the first channel, the one in the
   * connector's map.
   */
  final @Nullable Entry primary;

  /**
   * The extra channels of this address (published or one pending), if this is the first channel and
   * the address has any; null otherwise. Replaced whole, by compare-and-set (see {@link
   * AddressPool}).
   */
  volatile Entry @Nullable [] siblings;

  /** The dial in flight; null once the dial succeeded (kept after a failure, for its waiters). */
  volatile @Nullable PendingDial pending;

  /** Set before PENDING is cleared, read only after reading a state without PENDING. */
  private @Nullable ManagedChannel channel;

  /** See the class comment. Starts pending, with the lease reserved for the caller that dials. */
  volatile long state = PENDING | 1L;

  /** Calls in flight on this channel (started and not yet closed); see the class comment. */
  @SuppressWarnings("unused") // changed through CALLS
  private volatile long calls;

  /** Consecutive idle passes; written only under the connector's expireLock. */
  volatile int idlePasses;

  volatile long createdMillis;
  volatile long lastDialedMillis;

  /** Why the entry was detached; written before DETACHED is set. */
  volatile @Nullable CloseCause detachCause;

  /**
   * Lease counters, one per thread slot, each on its own cache line; null until two leases of this
   * entry collide (then set once, never replaced). Leases of a striped entry are counted here;
   * those taken before stay in the state word.
   */
  volatile @Nullable AtomicLongArray cells;

  /** Longs between two cells: 128 bytes, two cache lines (adjacent-line prefetch). */
  private static final int CELL_STRIDE = 16;

  private static final int CELL_COUNT =
      Math.min(
          16, Integer.highestOneBit(Math.max(1, Runtime.getRuntime().availableProcessors())) * 2);

  Entry(String address, long id, @Nullable Entry primary, PendingDial pending) {
    this.address = address;
    this.id = id;
    this.primary = primary;
    this.pending = pending;
  }

  ManagedChannel channel() {
    return requireNonNull(channel, "channel of a pending entry");
  }

  /** Sets the channel of a pending entry, before the dial publishes it. */
  void setChannel(ManagedChannel channel) {
    this.channel = channel;
  }

  /** Counts the leases of this entry in cells from now on. */
  void stripe() {
    if (cells == null) {
      AtomicLongArray striped = new AtomicLongArray((CELL_COUNT + 1) * CELL_STRIDE);
      CELLS.compareAndSet(this, null, striped);
    }
  }

  /**
   * Adds a lease to the calling thread's cell and returns the cell. A thread's cell comes from its
   * id, which the JVM hands out in turn: threads started one after the other get different cells.
   * (From the thread's identity hash, two threads shared a cell by chance, in one run of four on
   * two cores, and paid 2-3x.) No per-thread state: a virtual thread per request costs nothing
   * more.
   */
  @SuppressWarnings("deprecation") // Thread.getId(): threadId() is JDK 19+, the baseline is 17
  static int addToCell(AtomicLongArray cells) {
    int count = cells.length() / CELL_STRIDE - 1;
    int slot = ((int) Thread.currentThread().getId() & (count - 1)) * CELL_STRIDE + CELL_STRIDE;
    cells.getAndIncrement(slot);
    return slot;
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

  long leases() {
    long state = this.state;
    return (state & (PENDING | CLOSED)) != 0 ? 0 : leases(state);
  }

  /** Calls in flight on this channel. */
  long calls() {
    return (long) CALLS.getVolatile(this);
  }

  /**
   * Counts a call starting on this channel; returns whether it is counted (false if the channel is
   * closed: the call must then fail without starting). See the class comment.
   */
  boolean startCall() {
    CALLS.getAndAdd(this, 1L);
    for (int spins = 0; ; spins++) {
      long now = state;
      if ((now & CLOSED) != 0) {
        CALLS.getAndAdd(this, -1L);
        return false;
      }
      if ((now & CLOSING) == 0) {
        return true;
      }
      spin(spins); // a close is summing: it ends CLOSED or cleared in a few loads
    }
  }

  /** Ends a call that {@link #startCall()} counted. */
  void endCall() {
    CALLS.getAndAdd(this, -1L);
  }

  /** What {@link #closeIfIdle} did. */
  enum CloseAttempt {
    CLOSED_NOW,
    IN_USE,
    CHANGED
  }

  /**
   * Sets CLOSED if this entry holds no lease and no call, and, if it is the first channel of its
   * address, has no sibling, given {@code state}, a state without PENDING, CLOSED or CLOSING.
   * Cells, calls and siblings are read under CLOSING, which holds new leases, starting calls and a
   * sibling being added (see {@link AddressPool}) back until it ends.
   */
  CloseAttempt closeIfIdle(long state) {
    if ((state & LEASES) != 0) {
      return CloseAttempt.IN_USE;
    }
    if (!STATE.compareAndSet(this, state, state | CLOSING)) {
      return CloseAttempt.CHANGED;
    }
    AtomicLongArray striped = cells; // read after CLOSING is set
    if (calls() != 0 || (striped != null && sum(striped) != 0) || siblings != null) {
      STATE.getAndBitwiseAnd(this, ~CLOSING);
      return CloseAttempt.IN_USE;
    }
    // Under CLOSING no lease or call can be counted, but a striped lease that read the state just
    // before CLOSING was set may still set DIALED: flip CLOSING off and CLOSED on atomically, so
    // that no concurrent bit is lost.
    STATE.getAndBitwiseXor(this, CLOSING | CLOSED);
    return CloseAttempt.CLOSED_NOW;
  }

  /**
   * Waits a moment for another thread's few steps (a close summing the cells): spins briefly, then
   * yields, so that a descheduled closer is never waited for by a busy core.
   */
  static void spin(int spins) {
    if (spins < 64) {
      Thread.onSpinWait();
    } else {
      Thread.yield();
    }
  }
}
