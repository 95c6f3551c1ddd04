package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * One {@code dial()} call past the hit path: a miss, a dial in flight, an address whose channels
 * are all full, or an entry closing. Not thread-safe: one per call, on the caller's thread.
 *
 * <p>The loop looks the address up until it holds a lease: on a miss it puts a pending entry in the
 * table and, if it wins, starts the dial and waits for it, with the lease reserved for it in the
 * pending state (docs/design.md, "Publishing a dial"); on a dial in flight it waits within its
 * bound; on an address whose channels are full it leases the first with room, or opens one more and
 * waits for it, or settles on the least-loaded full channel (docs/design.md, "9. The pool of an
 * address"). Its bound is fixed once, at its first wait: the earlier of its timeout and its
 * Context's deadline ("Waiting for a dial"). It starts at most one dial of its own for an address
 * it finds cached and one for an address it finds missing, so a dialer is never called in a loop.
 */
final class DialAttempt {

  private final CachingConnector connector;
  private final ChannelTable table;
  private final AddressPool pool;
  private final DialRunner runner;
  private final String address;
  private final long timeoutNanos;
  private final @Nullable Duration timeout;

  /** This call's bound, fixed at its first wait. */
  private PendingDial.@Nullable WaitBound bound;

  /** Whether this call added a channel to its address (one dial of its own per call). */
  private boolean grew;

  /** The asynchronous call ({@code dialAsync}) this attempt runs for; null for {@code dial()}. */
  private final @Nullable AsyncDial async;

  /** Where an asynchronous attempt waits for a dial, to go on from there once it completed. */
  enum Wait {
    /** The dial this attempt started, whose lease is reserved for it. */
    OWN,
    /** The address's first dial, started by another caller. */
    OTHER,
    /** An extra channel of the address, dialed by another caller. */
    GROWTH
  }

  DialAttempt(
      CachingConnector connector, String address, long timeoutNanos, @Nullable Duration timeout) {
    this(connector, address, timeoutNanos, timeout, null);
  }

  DialAttempt(
      CachingConnector connector,
      String address,
      long timeoutNanos,
      @Nullable Duration timeout,
      @Nullable AsyncDial async) {
    this.async = async;
    this.connector = connector;
    this.table = connector.table;
    this.pool = connector.pool;
    this.runner = connector.runner;
    this.address = address;
    this.timeoutNanos = timeoutNanos;
    this.timeout = timeout;
  }

  private PendingDial.WaitBound bound() {
    PendingDial.WaitBound fixed = bound;
    if (fixed == null) {
      fixed = PendingDial.WaitBound.of(timeoutNanos, timeout);
      bound = fixed;
    }
    return fixed;
  }

  /**
   * Leases a channel of the address: on a miss, a dial in flight, or an entry closing. {@code
   * entry} is what the table held for the address when the hit path looked (null on a miss).
   */
  LeasedChannel lease(@Nullable Entry entry) {
    for (; ; ) {
      if (entry == null) {
        table.checkOpen();
        Entry fresh = table.newEntry(address, null);
        // Read before the entry is shared: once in the table, a failure (close(), an abandonment)
        // may end its dial, and pendingDial() returns null then.
        PendingDial pending = requireNonNull(fresh.pendingDial());
        entry = table.putIfAbsent(fresh);
        if (entry == null) {
          return dialOwn(fresh, pending);
        }
      }
      // Null if pending, closing or closed: then as with one channel per address.
      // A pending entry may be published before its lease looks: within its limit then.
      LeasedChannel lease =
          entry.isPending()
              ? connector.tryLease(entry, connector.limitOf(entry))
              : leaseFromPool(entry);
      if (lease != null) {
        return lease;
      }
      PendingDial pending = entry.pendingDial();
      if (pending != null) {
        if (pending.dialThread == Thread.currentThread()) {
          throw new IllegalStateException(
              "dial(\""
                  + address
                  + "\") was called from the dial of that same address (its Dialer or an"
                  + " onCacheMiss listener), which would wait for itself");
        }
        if (runner.isOverdue(pending)) {
          runner.abandon(entry, pending); // a hung dialer: the next lookup starts a new dial
        } else {
          awaitDial(entry, pending, Wait.OTHER);
        }
      } else {
        table.checkOpen();
      }
      entry = table.get(address);
    }
  }

  /**
   * Leases a channel of the address whose first channel, {@code first}, is published: the first
   * with room, or a new one if all are full (see {@link AddressPool}). Returns null if the first
   * channel is detached or closed with no other channel to lease (the caller looks the address up
   * again).
   */
  private @Nullable LeasedChannel leaseFromPool(Entry first) {
    if (pool.maxChannels == 1) {
      return connector.tryLease(first, Entry.NO_LIMIT);
    }
    return leaseFromPool(first, /* settle= */ false);
  }

  /** {@link #leaseFromPool(Entry)}; if {@code settle}, the least-loaded channel even if full. */
  private @Nullable LeasedChannel leaseFromPool(Entry first, boolean settle) {
    for (; ; ) {
      Entry best = pool.choose(first);
      if (best == null) {
        // Detached or closed: helps unlink it, and returns null.
        return connector.tryLease(first, Entry.PAST_LIMIT);
      }
      if (settle || !best.isFull()) {
        LeasedChannel lease = connector.tryLease(best, settle ? Entry.PAST_LIMIT : best.limit());
        if (lease != null) {
          return lease;
        }
        continue; // full, detached, closed or found shut down meanwhile: choose again
      }
      Entry growing = AddressPool.growing(first);
      if (growing != null) {
        PendingDial pending = growing.pendingDial();
        if (pending == null) {
          continue; // published meanwhile
        }
        if (pending.dialThread == Thread.currentThread()) {
          settle = true; // from the dial of that channel: it cannot wait for itself
        } else if (runner.isOverdue(pending)) {
          runner.abandon(growing, pending);
          settle =
              !growing.isLeasable(); // late: a full channel serves now, growth is retried later
        } else if (!awaitGrowth(growing, pending)) {
          settle = true; // no new channel in time: a full channel queues the call
        }
        continue;
      }
      if (!pool.hasRoom(first)) {
        if (AddressPool.growing(first) == null) {
          // All the channels the address may have are open and full: a full one queues the call.
          // (One added since `growing` was read is waited for or leased in the next round: a dial
          // does not settle on a full channel while the address is getting a new one.)
          settle = true;
        }
        continue;
      }
      if (grew) {
        settle = true; // one dial of its own per dial() call
        continue;
      }
      Entry extra = table.newEntry(first.address, first);
      PendingDial pending = requireNonNull(extra.pendingDial());
      if (!pool.add(first, extra)) {
        continue; // another dial added one meanwhile: wait for it, or lease it
      }
      grew = true;
      if (!first.isAttached()) {
        // Detached or closed since it was read (see AddressPool): the extra channel was never
        // dialed.
        runner.fail(extra, pending, new IllegalStateException("detached"));
        return null;
      }
      try {
        return dialOwn(extra, pending);
      } catch (Suspended e) {
        throw e;
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() == Status.Code.CANCELLED) {
          throw e;
        }
        settle = true; // the new channel failed or is late: the full ones still serve
      }
    }
  }

  /**
   * Goes on with an asynchronous attempt whose {@code wait} for {@code entry}'s dial ended: as the
   * blocking call goes on after the same wait. Throws {@link Suspended} if it waits again.
   */
  LeasedChannel resume(Wait wait, Entry entry, PendingDial pending) {
    switch (wait) {
      case OWN -> {
        Entry first = entry.firstChannel;
        try {
          return ownLease(entry, pending);
        } catch (StatusRuntimeException e) {
          if (first == null || e.getStatus().getCode() == Status.Code.CANCELLED) {
            throw e;
          }
          return fromPool(first, /* settle= */ true); // as leaseFromPool after its own dial
        }
      }
      case OTHER -> {
        awaitDial(entry, pending, Wait.OTHER);
        return lease(table.get(address));
      }
      case GROWTH -> {
        Entry first = requireNonNull(entry.firstChannel);
        return fromPool(first, /* settle= */ !awaitGrowth(entry, pending));
      }
    }
    throw new AssertionError(wait);
  }

  private LeasedChannel fromPool(Entry first, boolean settle) {
    LeasedChannel lease = leaseFromPool(first, settle);
    return lease != null ? lease : lease(table.get(address));
  }

  /**
   * In an asynchronous attempt, waits for {@code pending} without a thread: registers the attempt's
   * continuation and throws {@link Suspended}; returns if the dial completed meanwhile (the wait
   * below then returns its outcome at once). A blocking attempt returns at once.
   */
  private void suspendIfAsync(Wait wait, Entry entry, PendingDial pending) {
    if (async != null && pending.outcome() == null && async.suspend(wait, entry, pending)) {
      throw Suspended.INSTANCE;
    }
  }

  /**
   * Unwinds an asynchronous attempt that waits for a dial: its continuation goes on when the dial
   * completes. Shared and without a stack trace: it is control flow, never seen by a caller.
   */
  static final class Suspended extends RuntimeException {
    private static final long serialVersionUID = 1L;
    static final Suspended INSTANCE = new Suspended();

    private Suspended() {
      super("suspended", null, false, false);
    }
  }

  /**
   * Waits for the dial of an address's extra channel within the caller's bound and the dial
   * timeout; returns true if the channel was published (the caller chooses again, and finds it),
   * false if it failed, was abandoned, or the caller's bound passed: the caller then leases a full
   * channel at once, and a later dial of the address tries to grow it again, one dial at a time.
   */
  private boolean awaitGrowth(Entry extra, PendingDial pending) {
    suspendIfAsync(Wait.GROWTH, extra, pending);
    PendingDial.WaitBound bound = bound();
    long dialDeadline = runner.deadline(pending);
    boolean dialBound = isEarlier(dialDeadline, bound.deadlineNanos());
    Context context = Context.current();
    Object outcome = pending.await(dialBound ? dialDeadline : bound.deadlineNanos(), context);
    if (!(outcome instanceof PendingDial.Interruption interruption)) {
      table.checkOpen(); // failed by close(): this caller fails at once too
      return outcome == PendingDial.SUCCEEDED;
    }
    switch (interruption) {
      case INTERRUPTED -> throw interrupted(extra);
      case CANCELLED -> {
        Deadline deadline = context.getDeadline();
        if (deadline == null || !deadline.isExpired()) {
          throw cancelled(extra, context);
        }
        return extra.isLeasable(); // published, its waiters not woken yet: lease it
      }
      case TIMED_OUT -> {
        if (dialBound) {
          runner.abandon(extra, pending);
        }
        return extra.isLeasable();
      }
    }
    throw new AssertionError(outcome);
  }

  /** Whether the deadline {@code a} comes before {@code b} (either may be MAX_VALUE: none). */
  private static boolean isEarlier(long a, long b) {
    return a != Long.MAX_VALUE && (b == Long.MAX_VALUE || a - b < 0);
  }

  /**
   * Starts the dial of {@code entry}, which this call put in the map, waits for it and returns the
   * lease reserved for this call, which the dial's publication turned into a lease. Gives the
   * reservation back if it stops waiting, or if starting the dial threw (after an inline dial that
   * may have published the channel).
   */
  private LeasedChannel dialOwn(Entry entry, PendingDial pending) {
    try {
      runner.start(entry, pending);
    } catch (RuntimeException | Error e) {
      entry.dropReservation();
      throw e;
    }
    return ownLease(entry, pending);
  }

  /** Waits for this call's own dial of {@code entry}, then takes the lease reserved for it. */
  private LeasedChannel ownLease(Entry entry, PendingDial pending) {
    try {
      awaitDial(entry, pending, Wait.OWN);
    } catch (Suspended e) {
      throw e; // the reservation is the asynchronous caller's still
    } catch (RuntimeException | Error e) {
      entry.dropReservation();
      throw e;
    }
    if (entry.isClosed() || entry.channel().isShutdown()) {
      // Closed by close() (nothing else closes an entry with a lease), or shut down by someone
      // else in the moment since it was published: never handed out, and not dialed again.
      entry.release(Entry.BASE);
      table.checkOpen();
      table.detachAndReport(entry, CloseCause.STALE);
      throw Status.UNAVAILABLE
          .withDescription(
              "The channel dialed for " + entry.address + " was shut down before it was leased")
          .asRuntimeException();
    }
    return connector.newLease(entry, Entry.BASE);
  }

  /**
   * Waits for the pending {@code entry}'s dial, within the caller's bound and the dial timeout;
   * returns if it succeeded, else throws what the caller gets. A dial whose channel was published
   * succeeded, even if its waiters were not woken in time: the dial thread tells the count listener
   * before it wakes them, and a listener that blocks (on a lock this caller holds, say) delays the
   * callers to their bound, never fails them (docs/design.md, "Callbacks").
   */
  private void awaitDial(Entry entry, PendingDial pending, Wait wait) {
    suspendIfAsync(wait, entry, pending);
    PendingDial.WaitBound bound = bound();
    long dialDeadline = runner.deadline(pending);
    boolean dialBound = isEarlier(dialDeadline, bound.deadlineNanos());
    Context context = Context.current();
    Object outcome = pending.await(dialBound ? dialDeadline : bound.deadlineNanos(), context);
    if (outcome == PendingDial.SUCCEEDED) {
      return;
    }
    if (outcome instanceof Throwable cause) {
      throw dialFailure(entry, cause);
    }
    switch ((PendingDial.Interruption) outcome) {
      case INTERRUPTED -> throw interrupted(entry);
      case CANCELLED -> {
        Deadline deadline = context.getDeadline();
        if (deadline == null || !deadline.isExpired()) {
          throw cancelled(entry, context);
        }
        // A Context is cancelled when its deadline passes: that is a deadline.
        if (entry.isPublished()) {
          return; // published, its waiters not woken yet (a listener still running): no timeout
        }
        throw bound.exceeded(entry.address, /* contextBound= */ true);
      }
      case TIMED_OUT -> {
        if (dialBound) {
          runner.abandon(entry, pending);
        }
        if (entry.isPublished()) {
          return; // as above: a dial that published its channel is never reported as timed out
        }
        table.checkOpen();
        throw dialBound
            ? runner.timedOut(entry.address)
            : bound.exceeded(entry.address, bound.contextBound());
      }
    }
    throw new AssertionError(outcome);
  }

  private static StatusRuntimeException interrupted(Entry entry) {
    return Status.CANCELLED
        .withDescription("Interrupted while waiting for the dial of " + entry.address)
        .asRuntimeException();
  }

  private static StatusRuntimeException cancelled(Entry entry, Context context) {
    return Status.CANCELLED
        .withDescription("Context cancelled while waiting for the dial of " + entry.address)
        .withCause(context.cancellationCause())
        .asRuntimeException();
  }

  private RuntimeException dialFailure(Entry entry, Throwable cause) {
    if (cause instanceof DialRunner.DialTimedOut timedOut) {
      return timedOut.getStatus().asRuntimeException(); // a fresh one for each waiter
    }
    if (cause instanceof IllegalStateException && table.isClosed()) {
      return ChannelTable.closedException();
    }
    if (cause instanceof InterruptedException && Thread.currentThread().isInterrupted()) {
      return Status.CANCELLED // an inline dialer interrupted on this thread; the flag stays set
          .withDescription("Interrupted while dialing " + entry.address)
          .withCause(cause)
          .asRuntimeException();
    }
    return Status.UNAVAILABLE
        .withDescription("Dial of " + entry.address + " failed: " + cause)
        .withCause(cause)
        .asRuntimeException();
  }
}
