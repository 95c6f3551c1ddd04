package io.github.hesmar.grpcproxy.connector;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.jspecify.annotations.Nullable;

/**
 * A dial in flight and the callers waiting for it. Thread-safe.
 *
 * <p>Waiting leaves nothing behind: a waiter puts its thread in {@link #waiters} and a listener on
 * its gRPC {@link Context}, parks, and takes both out again however its wait ends (outcome,
 * timeout, cancellation, interrupt); an asynchronous caller ({@code dialAsync}) puts a continuation
 * in {@link #continuations} instead, and takes it out if it gives up first. The outcome is written
 * before the waiters are read, and a waiter adds itself before it reads the outcome (both
 * volatile), so no waiter misses its wake-up. Whoever gives up takes out what it put in, so callers
 * that give up on a hung dial, however many, retain no memory.
 *
 * <p>{@link WaitBound} is how long one caller may wait in all: fixed at its first wait, it bounds
 * every later wait of the same {@code dial()} call too.
 */
final class PendingDial {

  /** The outcome of a successful dial. */
  static final Object SUCCEEDED = new Object();

  /** When the dial started ({@link System#nanoTime()}), for the connector's dial timeout. */
  final long startNanos;

  /** The thread running the dialer (and onCacheMiss), while it runs; for re-entrance checks. */
  volatile @Nullable Thread dialThread;

  /** Null while in flight; then {@link #SUCCEEDED} or the failure. */
  private volatile @Nullable Object outcome;

  /**
   * Whether the dial holds a place under the connector's bound ({@link ChannelBound}): 0 not yet, 1
   * held, 2 given back. Changed through {@link #PLACE}.
   */
  @SuppressWarnings("unused")
  private volatile int place;

  private static final VarHandle PLACE;

  static {
    try {
      PLACE = MethodHandles.lookup().findVarHandle(PendingDial.class, "place", int.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private final Set<Thread> waiters = ConcurrentHashMap.newKeySet();

  /** The continuations of asynchronous callers waiting now; each run at most once. */
  private final Set<Runnable> continuations = ConcurrentHashMap.newKeySet();

  PendingDial(long startNanos) {
    this.startNanos = startNanos;
  }

  /** Records that the dial took a place under the bound; by the dial thread, once. */
  void holdPlace() {
    PLACE.setVolatile(this, 1);
  }

  /**
   * Takes the place back from the dial, if it holds one: true for exactly one caller, which gives
   * it back to the bound.
   */
  boolean takePlace() {
    return PLACE.compareAndSet(this, 1, 2);
  }

  /** Returns the outcome, or null while the dial is in flight. */
  @Nullable Object outcome() {
    return outcome;
  }

  /** The callers waiting now; for tests (a caller that gave up must not be counted). */
  int waiterCount() {
    return waiters.size() + continuations.size();
  }

  /** Sets the outcome (once; later calls are ignored) and wakes every waiter. */
  void complete(Object result) {
    synchronized (this) {
      if (outcome != null) {
        return;
      }
      outcome = result;
    }
    for (Thread waiter : waiters) {
      LockSupport.unpark(waiter);
    }
    for (Runnable continuation : continuations) {
      if (continuations.remove(continuation)) {
        continuation.run();
      }
    }
  }

  /**
   * Has {@code continuation} run once the outcome is set, on the thread that sets it, unless it is
   * {@linkplain #forget forgotten} first. Returns false, registering nothing, if the outcome is set
   * already: the caller goes on itself. The continuation is added before the outcome is read, and
   * the outcome written before the continuations are read, so one of the two sees the other; the
   * set's remove() picks who runs it.
   */
  boolean whenComplete(Runnable continuation) {
    continuations.add(continuation);
    if (outcome != null && continuations.remove(continuation)) {
      return false;
    }
    return true;
  }

  /**
   * Takes {@code continuation} out: true if it had not run and never will, false if the outcome's
   * completion took it (it runs, or ran).
   */
  boolean forget(Runnable continuation) {
    return continuations.remove(continuation);
  }

  /** Why {@link #await} returned without an outcome. */
  enum Interruption {
    TIMED_OUT,
    CANCELLED,
    INTERRUPTED
  }

  /**
   * Waits for the outcome until {@code deadlineNanos} ({@link System#nanoTime()} based, or {@link
   * Long#MAX_VALUE} for no bound), the cancellation of {@code context}, or an interrupt.
   *
   * @return the outcome, or the {@link Interruption} that ended the wait (with the thread's
   *     interrupt flag set again if it was interrupted)
   */
  Object await(long deadlineNanos, Context context) {
    Object result = outcome;
    if (result != null) {
      return result;
    }
    Thread self = Thread.currentThread();
    waiters.add(self);
    Context.CancellationListener onCancel = cancelled -> LockSupport.unpark(self);
    context.addListener(onCancel, Runnable::run);
    try {
      while ((result = outcome) == null) {
        if (Thread.interrupted()) {
          self.interrupt();
          return Interruption.INTERRUPTED;
        }
        if (context.isCancelled()) {
          return Interruption.CANCELLED;
        }
        long remaining =
            deadlineNanos == Long.MAX_VALUE ? Long.MAX_VALUE : deadlineNanos - System.nanoTime();
        if (remaining <= 0) {
          return Interruption.TIMED_OUT;
        }
        LockSupport.parkNanos(this, remaining);
      }
      return result;
    } finally {
      waiters.remove(self);
      context.removeListener(onCancel);
    }
  }

  /**
   * How long one {@code dial()} call may wait, fixed once at its first wait: the earlier of its
   * timeout and its Context's deadline.
   */
  record WaitBound(long deadlineNanos, boolean contextBound, @Nullable Duration timeout) {

    static WaitBound of(long timeoutNanos, @Nullable Duration timeout) {
      long waitNanos = timeoutNanos;
      boolean contextBound = false;
      Deadline deadline = Context.current().getDeadline();
      if (deadline != null) {
        long contextNanos = deadline.timeRemaining(TimeUnit.NANOSECONDS);
        if (contextNanos < waitNanos) {
          waitNanos = contextNanos;
          contextBound = true;
        }
      }
      return new WaitBound(
          Nanos.deadlineAfter(System.nanoTime(), waitNanos), contextBound, timeout);
    }

    StatusRuntimeException exceeded(String address, boolean byContext) {
      String what =
          byContext || timeout == null
              ? "the deadline of the current gRPC Context"
              : "the timeout of " + timeout;
      return Status.DEADLINE_EXCEEDED
          .withDescription(
              "Dial of "
                  + address
                  + " did not complete within "
                  + what
                  + "; it goes on, and its channel will be cached")
          .asRuntimeException();
    }
  }
}
