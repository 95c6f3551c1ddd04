package io.github.hesmar.grpcproxy.connector;

import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * One {@code dialAsync()} call past the hit path: a {@link DialAttempt} whose waits hold no thread
 * (docs/design.md, "16. A door for event loops"). Thread-safe.
 *
 * <p>The attempt runs on the caller's thread until it would wait for a dial; it then registers this
 * object as the dial's continuation ({@link PendingDial#whenComplete}), with a timer on the
 * connector's scheduler for the caller's bound and the dial timeout, and returns the future. When
 * the dial completes, the thread that completed it (the dial's thread; close()'s, or the timer's
 * for a dial abandoned past the dial timeout) runs the continuation: the attempt goes on from where
 * it waited, and may wait again. Exactly one of three takes a registered continuation back: the
 * dial's completion (it runs it), the caller's bound passing (the timer fails the future), or the
 * future's cancellation; {@link PendingDial#forget} decides. A lease that reaches a future already
 * completed (cancelled) is released; a lease reserved for the attempt's own dial is given back by
 * whoever took the continuation back.
 */
final class AsyncDial implements Runnable {

  private final CompletableFuture<LeasedChannel> future = new CompletableFuture<>();
  private final DialAttempt attempt;
  private final DialRunner runner;
  private final ScheduledExecutorService scheduler;
  private final String address;

  /** The caller's bound, fixed at the call: the earlier of its timeout and its Context deadline. */
  private final PendingDial.WaitBound bound;

  // The wait in progress: written before the continuation is registered, so whoever takes it back
  // (through the PendingDial's concurrent set, or a timer scheduled after) sees them.
  private volatile DialAttempt.@Nullable Wait wait;
  private volatile @Nullable Entry entry;
  private volatile @Nullable PendingDial pending;
  private volatile @Nullable ScheduledFuture<?> timer;

  AsyncDial(
      CachingConnector connector,
      String address,
      long timeoutNanos,
      @Nullable Duration timeout,
      ScheduledExecutorService scheduler) {
    this.attempt = new DialAttempt(connector, address, timeoutNanos, timeout, this);
    this.runner = connector.runner;
    this.scheduler = scheduler;
    this.address = address;
    this.bound = PendingDial.WaitBound.of(timeoutNanos, timeout);
  }

  /** Starts the attempt on the caller's thread; {@code first} as {@link DialAttempt#lease}. */
  CompletableFuture<LeasedChannel> start(@Nullable Entry first) {
    future.whenComplete(
        (lease, failure) -> {
          if (future.isCancelled()) {
            giveUp();
          }
        });
    try {
      deliver(attempt.lease(first));
    } catch (DialAttempt.Suspended e) {
      // waits for a dial; run() goes on
    } catch (RuntimeException e) {
      future.completeExceptionally(e);
    }
    return future;
  }

  /**
   * Registers this attempt as {@code pending}'s continuation; false if the dial completed already
   * (the attempt goes on at once). Called by the attempt, on whichever thread runs it.
   */
  boolean suspend(DialAttempt.Wait wait, Entry entry, PendingDial pending) {
    this.wait = wait;
    this.entry = entry;
    this.pending = pending;
    if (!pending.whenComplete(this)) {
      return false;
    }
    if (future.isDone()) {
      giveUp(); // cancelled while the attempt ran: nothing may stay registered
      return true;
    }
    long dialDeadline = runner.deadline(pending);
    long callerDeadline = bound.deadlineNanos();
    boolean dialFirst =
        dialDeadline != Long.MAX_VALUE
            && (callerDeadline == Long.MAX_VALUE || dialDeadline - callerDeadline < 0);
    long deadline = dialFirst ? dialDeadline : callerDeadline;
    if (deadline != Long.MAX_VALUE) {
      try {
        ScheduledFuture<?> scheduled =
            scheduler.schedule(
                () -> timeUp(pending, dialFirst),
                Math.max(0, deadline - System.nanoTime()),
                TimeUnit.NANOSECONDS);
        timer = scheduled;
        if (pending.outcome() != null) {
          scheduled.cancel(/* mayInterruptIfRunning= */ false); // the wait is over already
        }
      } catch (RejectedExecutionException e) {
        // The connector is closing: its close() fails the dial, which runs the continuation.
      }
    }
    return true;
  }

  /** The dial completed: goes on with the attempt, on the completing thread. */
  @Override
  public void run() {
    cancelTimer();
    DialAttempt.Wait waited = requireSet(wait);
    Entry waitedOn = requireSet(entry);
    PendingDial dial = requireSet(pending);
    if (future.isDone()) { // cancelled before the continuation could be taken back
      if (waited == DialAttempt.Wait.OWN) {
        waitedOn.dropReservation();
      }
      return;
    }
    try {
      deliver(attempt.resume(waited, waitedOn, dial));
    } catch (DialAttempt.Suspended e) {
      // waits for another dial
    } catch (RuntimeException e) {
      future.completeExceptionally(e);
    }
  }

  /**
   * The timer: past the dial timeout, abandons the dial (its failure runs the continuation, which
   * fails the future as {@code dial()} fails); past the caller's bound, fails the future if the
   * continuation can still be taken back.
   */
  private void timeUp(PendingDial dial, boolean dialFirst) {
    Entry waitedOn = entry;
    if (pending != dial || waitedOn == null) {
      return; // the attempt went on to another wait, with a timer of its own
    }
    if (dialFirst) {
      runner.abandon(waitedOn, dial);
    } else if (dial.forget(this)) {
      if (wait == DialAttempt.Wait.OWN) {
        waitedOn.dropReservation();
      }
      StatusRuntimeException exceeded = bound.exceeded(address, bound.contextBound());
      future.completeExceptionally(exceeded);
    }
  }

  /** The future was cancelled: takes the continuation back, if the dial has not taken it. */
  private void giveUp() {
    PendingDial dial = pending;
    Entry waitedOn = entry;
    if (dial != null && waitedOn != null && dial.forget(this)) {
      cancelTimer();
      if (wait == DialAttempt.Wait.OWN) {
        waitedOn.dropReservation();
      }
    }
  }

  /** Completes the future with {@code lease}, or releases it if the caller gave up meanwhile. */
  private void deliver(LeasedChannel lease) {
    if (!future.complete(lease)) {
      lease.close();
    }
  }

  private void cancelTimer() {
    ScheduledFuture<?> scheduled = timer;
    if (scheduled != null) {
      scheduled.cancel(/* mayInterruptIfRunning= */ false);
    }
  }

  private static <T> T requireSet(@Nullable T value) {
    if (value == null) {
      throw new IllegalStateException("continuation run before its wait was recorded");
    }
    return value;
  }
}
