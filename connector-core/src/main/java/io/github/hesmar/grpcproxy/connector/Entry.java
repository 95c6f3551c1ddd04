package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Instant;
import java.time.InstantSource;
import java.util.concurrent.atomic.AtomicLongArray;
import org.jspecify.annotations.Nullable;

/**
 * One channel of one address, from the claim to dial it until it is closed: its state word, its
 * lease cells, its count of calls in flight and its load. Thread-safe, lock-free.
 *
 * <p>Every change of state is a method of this class; no other class reads or writes the state
 * word's bits (docs/design.md, "The state word"). The word (64 bits, changed by compare-and-set,
 * atomic add and atomic bit operations only):
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
 * </pre>
 *
 * <p>A close that is not forced sets CLOSING, then reads the lease cells, the calls and the extra
 * channels; a lease adds to its cell and a call to {@link #calls} before they read the word. Both
 * sides write before they read, so at least one sees the other: a close never wins against a lease
 * or a call (docs/design.md, "Leases and striping" and "Calls and the close"). Everyone else who
 * meets CLOSING waits for it to settle ({@link #settledState()}), which takes a few loads.
 */
final class Entry {

  private static final long LEASES = 0xFFFF_FFFFL;
  private static final long DIALED = 1L << 32;
  private static final long PENDING = 1L << 33;
  private static final long DETACHED = 1L << 34;
  private static final long CLOSED = 1L << 35;
  private static final long CLOSING = 1L << 36;
  private static final long RECENT = 1L << 37;

  /** What every lease sets: the marks of use for expiry and for eviction. */
  private static final long USED = DIALED | RECENT;

  /** A lease slot: the lease is counted in the state word, not in a cell. */
  static final int BASE = -1;

  /** The limit of a lease when the connector counts no load: one channel per address. */
  static final long NO_LIMIT = Long.MAX_VALUE;

  /**
   * The limit of a lease taken whatever the load, on a channel whose load is counted: all the
   * channels of its address are full. Counted on the state word, never in a cell.
   */
  static final long PAST_LIMIT = -1;

  /** {@link #lease} found the entry pending (its dial in flight) or closing for good. */
  static final int NOT_LEASABLE = -2;

  /** {@link #lease} found the entry detached or closed: it should leave where it is found. */
  static final int GONE = -3;

  /** {@link #lease} found the channel shut down by someone else. */
  static final int STALE = -4;

  /** {@link #lease} found the channel's load at its limit: the lease would have passed it. */
  static final int FULL = -5;

  private static final VarHandle STATE;
  private static final VarHandle CELLS;
  private static final VarHandle CALLS;
  private static final VarHandle UNCOVERED;
  private static final VarHandle EXTRAS;

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      STATE = lookup.findVarHandle(Entry.class, "state", long.class);
      CELLS = lookup.findVarHandle(Entry.class, "cells", AtomicLongArray.class);
      CALLS = lookup.findVarHandle(Entry.class, "calls", long.class);
      UNCOVERED = lookup.findVarHandle(Entry.class, "uncovered", long.class);
      EXTRAS = lookup.findVarHandle(Entry.class, "extras", Entry[].class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  final String address;

  /** This channel's number in its connector, from 1 in the order dials started. */
  final long id;

  /**
   * The address's first channel, whose {@link #extras} list this one, if this is an extra channel
   * of its address (see {@link AddressPool}); null if this is the first channel, the one in the
   * connector's map.
   */
  final @Nullable Entry firstChannel;

  /**
   * The extra channels of this address (published or one pending), if this is the first channel and
   * the address has any; null otherwise. Replaced whole, by compare-and-set (see {@link
   * AddressPool}).
   */
  volatile Entry @Nullable [] extras;

  /** The dial in flight; null once the dial succeeded (kept after a failure, for its waiters). */
  private volatile @Nullable PendingDial pending;

  /** Set before PENDING is cleared, read only after reading a state without PENDING. */
  private @Nullable ManagedChannel channel;

  /** Starts pending, with the lease reserved for the caller that dials. */
  private volatile long state = PENDING | 1L;

  /** Calls in flight on this channel (started and not yet closed). */
  @SuppressWarnings("unused") // changed through CALLS
  private volatile long calls;

  /**
   * Calls in flight that no held lease covers: a held lease covers one of its calls, so this counts
   * the calls of released leases and the second and later calls of held ones (see {@link #load()}).
   */
  @SuppressWarnings("unused") // changed through UNCOVERED
  private volatile long uncovered;

  /**
   * Load at which this channel is full: {@code maxCallsPerChannel}, or less once calls queued on it
   * (see {@link ChannelStreams}).
   */
  private volatile int limit;

  /**
   * {@code maxCallsPerChannel}, which a learned limit never passes: the cells' shares come from it,
   * not from the limit in force, so that they never change (see {@link #withinShare}).
   */
  private final int configuredLimit;

  /** Consecutive idle passes; written only by expiry passes, which run one at a time. */
  private volatile int idlePasses;

  volatile long createdMillis;
  volatile long lastDialedMillis;

  /** Why the entry was detached; written by the detach's winner just after it set DETACHED. */
  private volatile @Nullable CloseCause detachCause;

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

  /** The tracer factory of this channel's calls: its streams as the transport reports them. */
  final ChannelStreams streams;

  /** This channel's connectivity state, backoff resets and silence. */
  final ChannelHealth health;

  /**
   * A pending entry; its limit is the configured one, or its first channel's if that learned a
   * lower one (the same backend).
   */
  Entry(
      String address,
      long id,
      @Nullable Entry firstChannel,
      PendingDial pending,
      ChannelStreams.Watch watch) {
    this.address = address;
    this.id = id;
    this.firstChannel = firstChannel;
    this.pending = pending;
    this.configuredLimit = watch.maxCalls();
    this.limit = firstChannel == null ? configuredLimit : firstChannel.limit();
    this.streams = new ChannelStreams(this, watch);
    this.health = new ChannelHealth(this, watch.health());
  }

  ManagedChannel channel() {
    return requireNonNull(channel, "channel of a pending entry");
  }

  // ---- the state, read -------------------------------------------------------------------------

  /** Whether the dial of this entry is in flight. */
  boolean isPending() {
    return (state & PENDING) != 0;
  }

  /** The dial in flight, or null if this entry is not pending. */
  @Nullable PendingDial pendingDial() {
    return isPending() ? pending : null;
  }

  /** Whether this entry is closed: its channel shut down, or its dial failed. Terminal. */
  boolean isClosed() {
    return (state & CLOSED) != 0;
  }

  /** Whether the dial of this entry published its channel, and it is not closed. */
  boolean isPublished() {
    return (state & (PENDING | CLOSED)) == 0;
  }

  /** Whether this entry was detached (it may be closed since). */
  boolean isDetached() {
    return (state & DETACHED) != 0;
  }

  /** Whether this entry was detached or closed: no lease will be taken on it again. */
  boolean isDetachedOrClosed() {
    return (state & (DETACHED | CLOSED)) != 0;
  }

  /** Whether a lease could be taken now: published, neither detached nor closed. */
  boolean isLeasable() {
    return (state & (PENDING | DETACHED | CLOSED)) == 0;
  }

  /** Whether this published entry is neither detached nor closed, once no close is summing it. */
  boolean isAttached() {
    return (settledState() & (DETACHED | CLOSED)) == 0;
  }

  /**
   * The state word once no close is summing this entry: a close that set CLOSING clears it or turns
   * it into CLOSED within a few loads. Spins briefly, then yields, so that a descheduled closer is
   * never waited for by a busy core.
   */
  private long settledState() {
    for (int spins = 0; ; spins++) {
      long now = state;
      if ((now & CLOSING) == 0) {
        return now;
      }
      pause(spins);
    }
  }

  /** One step of waiting for another thread's few steps: a spin at first, then a yield. */
  private static void pause(int spins) {
    if (spins < 64) {
      Thread.onSpinWait();
    } else {
      Thread.yield();
    }
  }

  // ---- leases ----------------------------------------------------------------------------------

  /**
   * Takes a lease: returns its slot ({@link #BASE} or a cell), or {@link #NOT_LEASABLE}, {@link
   * #GONE}, {@link #STALE} or {@link #FULL}. Sets DIALED and RECENT, and records the time of the
   * first lease since the last expiry pass on {@code clock}. A lease that collides with another on
   * the state word stripes this entry.
   *
   * <p>The lease counts in the load from here on, so it is refused ({@link #FULL}) if the load
   * would pass {@code limitOrPast} ({@link #NO_LIMIT} and {@link #PAST_LIMIT}: never refused).
   * Leases racing for the last room never pass it together (docs/design.md, "Load counted at the
   * pick"): a lease on the state word adds, then reads the cells; a lease in a cell adds, then
   * reads the state word, and stays in its cell only while no cell holds more than its share of the
   * room ({@link #cellShare}), else it moves to the state word.
   */
  int lease(InstantSource clock, long limitOrPast) {
    boolean inWord = limitOrPast == PAST_LIMIT; // also once a cell lease was refused its share
    long limit = inWord ? NO_LIMIT : limitOrPast;
    for (; ; ) {
      long state = settledState();
      if ((state & PENDING) != 0) {
        return NOT_LEASABLE;
      }
      if ((state & (DETACHED | CLOSED)) != 0) {
        return GONE;
      }
      if (channel().isShutdown()) {
        return STALE;
      }
      AtomicLongArray striped = cells;
      int slot;
      if (striped == null || inWord) {
        slot = leaseOnWord(state, striped, limit);
      } else {
        slot = leaseInCell(striped, limit);
        if (slot == TO_WORD) {
          inWord = true;
          continue;
        }
      }
      if (slot == RETRY) {
        continue;
      }
      if (slot >= BASE && (state & DIALED) == 0) {
        // The first lease since the last pass (lazy: approximate).
        lastDialedMillis = clock.millis();
      }
      return slot;
    }
  }

  /** Internal outcomes of a lease attempt: look at the state again, or lease on the word. */
  private static final int RETRY = -100;

  private static final int TO_WORD = -101;

  /**
   * Leases on the state word, given {@code state} without PENDING, DETACHED or CLOSED and {@code
   * striped}, the cells read after it (null if none): returns {@link #BASE}, {@link #FULL} or
   * {@link #RETRY}. Stripes the entry when it loses to another lease.
   */
  private int leaseOnWord(long state, @Nullable AtomicLongArray striped, long limit) {
    if (limit != NO_LIMIT && (state & LEASES) + uncovered() >= limit) {
      return FULL;
    }
    if (!STATE.compareAndSet(this, state, (state + 1) | USED)) {
      if (striped == null && (this.state & ~LEASES) == (state & ~LEASES)) {
        stripe(); // lost to another lease of this entry: count leases in cells
      }
      return RETRY;
    }
    if (limit != NO_LIMIT) {
      AtomicLongArray now = cells; // read after the add: a cell lease that missed it is seen here
      if (now != null && load(this.state, now) > limit) {
        STATE.getAndAdd(this, -1L);
        return FULL;
      }
    }
    return BASE;
  }

  /**
   * Leases in this thread's cell: returns the cell, {@link #RETRY} (the state changed under it) or
   * {@link #TO_WORD} (past its share of {@code limit}).
   */
  private int leaseInCell(AtomicLongArray striped, long limit) {
    // Add to a cell, then read the flags; a close sets CLOSING, then sums the cells.
    int slot = cellOf(striped);
    long held = striped.getAndIncrement(slot) + 1;
    long now = this.state;
    if ((now & (PENDING | DETACHED | CLOSED | CLOSING)) != 0) {
      striped.getAndDecrement(slot);
      return RETRY;
    }
    if (limit != NO_LIMIT && !withinShare(striped, held, now, limit)) {
      striped.getAndDecrement(slot);
      return TO_WORD;
    }
    if ((now & USED) != USED) {
      STATE.getAndBitwiseOr(this, USED);
    }
    return slot;
  }

  /**
   * Whether the lease just added to its cell, which then held {@code held}, keeps the load within
   * {@code limit} without a look at the other cells, given {@code state}, read after the add. Each
   * cell may hold its share of half the configured limit (a power of two cells: shifts, no
   * division); every lease in a cell was admitted here, under the same share, so the cells hold at
   * most {@code cells * share}, and the state word and the uncovered calls must leave that much
   * room under the limit in force. A limit learned below half the configured one leaves no room:
   * every lease then takes the exact check on the state word.
   */
  private boolean withinShare(AtomicLongArray striped, long held, long state, long limit) {
    int shift = Integer.numberOfTrailingZeros(cellCount(striped));
    long share = (configuredLimit >> 1) >> shift;
    return held <= share && (state & LEASES) + uncovered() <= limit - (share << shift);
  }

  private static int cellCount(AtomicLongArray cells) {
    return cells.length() / CELL_STRIDE - 1;
  }

  /** Gives back a lease taken in {@code slot}. */
  void release(int slot) {
    if (slot == BASE) {
      STATE.getAndAdd(this, -1L);
    } else {
      requireNonNull(cells, "cells of a striped entry").getAndDecrement(slot);
    }
  }

  /** Counts the leases of this entry in cells from now on. */
  void stripe() {
    if (cells == null) {
      AtomicLongArray striped = new AtomicLongArray((CELL_COUNT + 1) * CELL_STRIDE);
      CELLS.compareAndSet(this, null, striped);
    }
  }

  /**
   * The calling thread's cell. A thread's cell comes from its id, which the JVM hands out in turn:
   * threads started one after the other get different cells. No per-thread state: a virtual thread
   * per request costs nothing more.
   */
  @SuppressWarnings("deprecation") // Thread.getId(): threadId() is JDK 19+, the baseline is 17
  private static int cellOf(AtomicLongArray cells) {
    int count = cellCount(cells);
    return ((int) Thread.currentThread().getId() & (count - 1)) * CELL_STRIDE + CELL_STRIDE;
  }

  private static long sum(AtomicLongArray cells) {
    long sum = 0;
    for (int slot = CELL_STRIDE; slot < cells.length(); slot += CELL_STRIDE) {
      sum += cells.get(slot);
    }
    return sum;
  }

  /** The leases of this entry, given a state of it read before: state word plus cells. */
  private long leases(long state) {
    AtomicLongArray striped = cells;
    return (state & LEASES) + (striped == null ? 0 : sum(striped));
  }

  /** Outstanding leases; 0 while pending or once closed. */
  long leases() {
    long state = this.state;
    return (state & (PENDING | CLOSED)) != 0 ? 0 : leases(state);
  }

  // ---- load ------------------------------------------------------------------------------------

  /**
   * The load of this channel: its leases plus the calls no held lease covers. A lease counts from
   * the moment a dial takes it, so a dial about to make a call counts before its call starts; a
   * held lease covers one of its calls, and each further call counts.
   */
  long load() {
    return load(state, cells);
  }

  private long load(long state, @Nullable AtomicLongArray striped) {
    return (state & LEASES) + (striped == null ? 0 : sum(striped)) + uncovered();
  }

  private long uncovered() {
    return (long) UNCOVERED.getVolatile(this);
  }

  /** Adds {@code delta} (1 or -1) to the calls no held lease covers (see {@link LeasedChannel}). */
  void addUncovered(long delta) {
    UNCOVERED.getAndAdd(this, delta);
  }

  /** The load at which this channel is full. */
  int limit() {
    return limit;
  }

  /** Sets the load at which this channel is full (see {@link ChannelStreams}). */
  void setLimit(int limit) {
    this.limit = limit;
  }

  /** Whether this channel's load is at its limit. */
  boolean isFull() {
    return load() >= limit;
  }

  // ---- calls -----------------------------------------------------------------------------------

  /** Calls in flight on this channel. */
  long calls() {
    return (long) CALLS.getVolatile(this);
  }

  /**
   * Counts a call starting on this channel; returns whether it is counted (false if the channel is
   * closed: the call must then fail without starting).
   */
  boolean startCall() {
    CALLS.getAndAdd(this, 1L);
    if ((settledState() & CLOSED) != 0) {
      CALLS.getAndAdd(this, -1L);
      return false;
    }
    return true;
  }

  /** Ends a call that {@link #startCall()} counted. */
  void endCall() {
    CALLS.getAndAdd(this, -1L);
  }

  // ---- the dial --------------------------------------------------------------------------------

  /**
   * Publishes the channel of this pending entry: leases can be taken from here on, and the lease
   * reserved for the caller that started the dial, if it still waits, is its lease. DIALED makes
   * the first expiry pass count as idle pass 1; RECENT stays clear, so that a channel leased only
   * by the dial that created it is the first to be evicted. Returns false if the entry failed first
   * (the dial timeout, or the connector's close).
   */
  boolean publish(ManagedChannel channel, long nowMillis) {
    createdMillis = nowMillis;
    lastDialedMillis = nowMillis;
    this.channel = channel;
    for (; ; ) {
      long state = this.state;
      if ((state & PENDING) == 0) {
        return false;
      }
      if (STATE.compareAndSet(this, state, state ^ (PENDING | DIALED))) {
        pending = null; // only waiters need it, and they hold it
        return true;
      }
    }
  }

  /**
   * Fails this pending entry: it becomes CLOSED, with nothing to shut down. Returns false if it was
   * published or failed already.
   */
  boolean fail() {
    for (; ; ) {
      long state = this.state;
      if ((state & PENDING) == 0) {
        return false;
      }
      if (STATE.compareAndSet(this, state, CLOSED)) {
        return true;
      }
    }
  }

  /**
   * Gives back the lease reserved for the caller that started the dial, when it stops waiting:
   * while pending, the reservation is dropped (a late channel is cached with no lease); once
   * published, the reservation is a lease and is released; once failed, there is nothing to give.
   */
  void dropReservation() {
    if (!STATE.compareAndSet(this, PENDING | 1L, PENDING) && (state & LEASES) != 0) {
      STATE.getAndAdd(this, -1L);
    }
  }

  // ---- detaching and closing -------------------------------------------------------------------

  /**
   * Detaches this published entry: no lease is taken on it again, and it closes once its leases and
   * calls end. Returns whether this call detached it (false if it is pending, or was detached or
   * closed already).
   */
  boolean detach(CloseCause cause) {
    for (; ; ) {
      long state = settledState();
      if ((state & (PENDING | DETACHED | CLOSED)) != 0) {
        return false;
      }
      if (STATE.compareAndSet(this, state, state | DETACHED)) {
        detachCause = cause;
        return true;
      }
    }
  }

  /**
   * Detaches this published first channel as {@link #detach} does, but only while it has no extra
   * channel; returns whether it did. The extra channels are read under CLOSING, and a dial adding
   * one writes the array before it reads this state (waiting out CLOSING, see {@link AddressPool}):
   * either this sees the extra channel and gives up, or the dial sees DETACHED and fails its extra
   * channel before dialing it.
   */
  boolean detachIfAlone(CloseCause cause) {
    for (; ; ) {
      long state = settledState();
      if ((state & (PENDING | DETACHED | CLOSED)) != 0) {
        return false;
      }
      if (!STATE.compareAndSet(this, state, state | CLOSING)) {
        continue;
      }
      if (extras != null) {
        STATE.getAndBitwiseAnd(this, ~CLOSING);
        return false;
      }
      detachCause = cause; // before DETACHED: no reader waits for it
      STATE.getAndBitwiseXor(this, CLOSING | DETACHED); // keeps a DIALED set meanwhile
      return true;
    }
  }

  /**
   * Why this entry, detached, was detached: its winner writes the cause just after the
   * compare-and-set, so a reader may wait a few steps for it. SHUTDOWN if it was not detached but
   * closed by the connector's close.
   */
  CloseCause detachCause() {
    for (int spins = 0; ; spins++) {
      CloseCause cause = detachCause;
      if (cause != null) {
        return cause;
      }
      if ((state & DETACHED) == 0) {
        return CloseCause.SHUTDOWN;
      }
      pause(spins);
    }
  }

  /**
   * Closes this published entry if no one else did: always if {@code force}, else only with no
   * lease, no call and no extra channel. Returns whether this call closed it; the caller then shuts
   * its channel down.
   */
  boolean close(boolean force) {
    for (; ; ) {
      long state = settledState();
      if ((state & (PENDING | CLOSED)) != 0) {
        return false;
      }
      if (force) {
        if (STATE.compareAndSet(this, state, state | CLOSED)) {
          return true;
        }
      } else {
        CloseAttempt attempt = closeIfIdle(state);
        if (attempt != CloseAttempt.CHANGED) {
          return attempt == CloseAttempt.CLOSED_NOW;
        }
      }
    }
  }

  /** What {@link #closeIfIdle} did. */
  private enum CloseAttempt {
    CLOSED_NOW,
    IN_USE,
    CHANGED
  }

  /**
   * Sets CLOSED if this entry holds no lease and no call, and, if it is the first channel of its
   * address, has no extra channel, given {@code state}, a state without PENDING, CLOSED or CLOSING.
   * Cells, calls and extra channels are read under CLOSING, which holds new leases, starting calls
   * and an extra channel being added back until it ends.
   */
  private CloseAttempt closeIfIdle(long state) {
    if ((state & LEASES) != 0) {
      return CloseAttempt.IN_USE;
    }
    if (!STATE.compareAndSet(this, state, state | CLOSING)) {
      return CloseAttempt.CHANGED;
    }
    AtomicLongArray striped = cells; // read after CLOSING is set
    if (calls() != 0 || (striped != null && sum(striped) != 0) || extras != null) {
      STATE.getAndBitwiseAnd(this, ~CLOSING);
      return CloseAttempt.IN_USE;
    }
    // Under CLOSING no lease or call can be counted, but a striped lease that read the state just
    // before CLOSING was set may still set DIALED: flip CLOSING off and CLOSED on atomically, so
    // that no concurrent bit is lost.
    STATE.getAndBitwiseXor(this, CLOSING | CLOSED);
    return CloseAttempt.CLOSED_NOW;
  }

  // ---- expiry and eviction ---------------------------------------------------------------------

  /** Whether this entry is attached and published, with no close summing it: expiry looks at it. */
  boolean isLive() {
    return (state & (PENDING | DETACHED | CLOSED | CLOSING)) == 0;
  }

  /** What one expiry pass did to an entry ({@link #passAndCloseIfIdle}). */
  enum Pass {
    /** Counted, left open. */
    KEPT,
    /** Closed at its second idle pass: the caller shuts its channel down. */
    CLOSED,
    /** The state changed under the pass: the caller looks at the entry again, from the start. */
    CHANGED
  }

  /**
   * One expiry pass over this entry: counts the pass as idle if the entry had no lease, no call and
   * no dial since the last one, and closes it at its second idle pass. Only one pass runs at a
   * time.
   */
  Pass passAndCloseIfIdle() {
    long state = this.state;
    if ((state & (PENDING | DETACHED | CLOSED | CLOSING)) != 0) {
      return Pass.KEPT;
    }
    if ((state & DIALED) != 0) {
      if (!STATE.compareAndSet(this, state, state & ~DIALED)) {
        return Pass.CHANGED;
      }
      // Read after the CAS: a striped lease that saw DIALED set (and so did not set it) added to
      // its cell before, and is counted here if it is still held.
      long inUse = leases(this.state) + calls();
      idlePasses = inUse == 0 ? 1 : 0;
      return Pass.KEPT;
    }
    if (leases(state) + calls() != 0) {
      idlePasses = 0;
      return Pass.KEPT;
    }
    if (idlePasses < 1) {
      idlePasses = 1;
      return Pass.KEPT;
    }
    return switch (closeIfIdle(state)) {
      case CLOSED_NOW -> {
        idlePasses = 2;
        yield Pass.CLOSED;
      }
      case IN_USE -> {
        // In use, or a first channel with extra channels: it stays, idle, while they are open.
        if (calls() != 0 || leases() != 0) {
          idlePasses = 0;
        }
        yield Pass.KEPT;
      }
      case CHANGED -> Pass.CHANGED;
    };
  }

  /**
   * The clock hand's look at this entry (see {@link ChannelBound}): if a lease was taken since the
   * last look and the entry is attached, clears the mark and returns true (its second chance).
   */
  boolean takeSecondChance() {
    if ((state & (RECENT | DETACHED)) == RECENT) {
      STATE.getAndBitwiseAnd(this, ~RECENT);
      return true;
    }
    return false;
  }

  // ---- the address's extra channels ------------------------------------------------------------

  /** Replaces this first channel's extra channels, if they are still {@code expected}. */
  boolean casExtras(Entry @Nullable [] expected, Entry @Nullable [] next) {
    return EXTRAS.compareAndSet(this, expected, next);
  }

  // ---- the snapshot ----------------------------------------------------------------------------

  /** This channel as {@link CachingConnector#connections()} lists it; null if pending or closed. */
  @Nullable ConnectionInfo info() {
    long state = this.state;
    if ((state & (PENDING | CLOSED)) != 0) {
      return null;
    }
    ConnectivityState connectivity = health.state();
    long since = health.stateSinceMillis();
    try {
      // The channel's own state: the health hears of a change a callback later.
      ConnectivityState now = channel().getState(/* requestConnection= */ false);
      if (now != connectivity) {
        connectivity = now;
        since = health.nowMillis(); // changed since the health last heard: just now
      }
    } catch (UnsupportedOperationException e) {
      connectivity = null;
    }
    boolean detached = (state & DETACHED) != 0;
    return new ConnectionInfo(
        id,
        address,
        (int) Math.min(Integer.MAX_VALUE, leases(state)),
        (int) Math.min(Integer.MAX_VALUE, calls()),
        (int) Math.min(Integer.MAX_VALUE, streams.queued()),
        limit,
        (state & DIALED) != 0 ? 0 : idlePasses,
        connectivity,
        connectivity == null ? null : Instant.ofEpochMilli(since),
        detached,
        detached ? detachCause() : null,
        Instant.ofEpochMilli(createdMillis),
        Instant.ofEpochMilli(lastDialedMillis));
  }
}
