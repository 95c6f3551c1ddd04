package io.github.hesmar.grpcproxy.connector;

import io.grpc.ManagedChannel;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Closes channels gracefully: {@code shutdown()}, then {@code shutdownNow()} once the grace period
 * has passed, and lets {@link CachingConnector#close()} wait for them. Thread-safe.
 *
 * <p>Only a channel with work in flight is kept: one that has terminated when it is shut down is
 * let go at once. Any other goes into {@link #draining} with one {@link Check} on the scheduler,
 * which looks at it again after {@link #FIRST_CHECK}, then twice as late each time: it lets the
 * channel go once it has terminated, and forces it once the grace has passed, measured in the
 * scheduler's delays. Whoever removes a channel from the set (a check, or {@link #awaitAll} and
 * {@link #forceAll} at close) forces it if it has not terminated, so it is forced at most once
 * (docs/design.md, "Draining"). A channel whose {@code shutdown()}, {@code shutdownNow()} or {@code
 * awaitTermination()} throws is logged and treated as not terminated: it never stops the others
 * from closing.
 */
final class Drainer {

  private static final System.Logger LOG = System.getLogger(CachingConnector.class.getName());

  /** The first look at a draining channel after its shutdown; later looks double the delay. */
  static final Duration FIRST_CHECK = Duration.ofMillis(100);

  private final Duration gracePeriod;
  private final long graceNanos;
  private final ScheduledExecutorService scheduler;

  /** Channels shut down gracefully whose forced shutdown is still to come. */
  private final Set<ManagedChannel> draining = ConcurrentHashMap.newKeySet();

  Drainer(Duration gracePeriod, ScheduledExecutorService scheduler) {
    this.gracePeriod = gracePeriod;
    this.graceNanos = Nanos.saturated(gracePeriod);
    this.scheduler = scheduler;
  }

  /** Shuts {@code channel} down, and forces it after the grace period (at once if it is zero). */
  void shutdown(ManagedChannel channel) {
    try {
      channel.shutdown();
    } catch (RuntimeException | Error e) {
      LOG.log(Level.WARNING, "shutdown() of channel " + channel + " threw", e);
    }
    if (gracePeriod.isZero()) {
      shutdownNowQuietly(channel);
      return;
    }
    if (isTerminatedQuietly(channel)) {
      return; // nothing in flight: nothing to wait for
    }
    draining.add(channel);
    new Check(channel).schedule();
  }

  /**
   * Lets go of the draining channels that have terminated; by each expiry pass, so that they are
   * not kept when the scheduler runs late or not at all.
   */
  void letGoTerminated() {
    draining.removeIf(Drainer::isTerminatedQuietly);
  }

  /** The channels kept until they terminate or the grace passes; for tests. */
  int drainingCount() {
    return draining.size();
  }

  /**
   * The looks at one draining channel: each lets it go if it has terminated, forces it if the grace
   * has passed, or schedules the next look, twice as late (never past the grace).
   */
  private final class Check implements Runnable {

    private final ManagedChannel channel;

    /** The delays scheduled so far, in all: the grace has passed when they reach it. */
    private long waitedNanos;

    private long delayNanos = Math.min(FIRST_CHECK.toNanos(), graceNanos);

    Check(ManagedChannel channel) {
      this.channel = channel;
    }

    void schedule() {
      waitedNanos += delayNanos;
      try {
        ScheduledFuture<?> unused = scheduler.schedule(this, delayNanos, TimeUnit.NANOSECONDS);
      } catch (RejectedExecutionException e) {
        forceIfDraining(channel); // closing: the scheduler is shut down
      }
    }

    @Override
    public void run() {
      if (!draining.contains(channel)) {
        return; // awaited or forced by close()
      }
      if (isTerminatedQuietly(channel)) {
        draining.remove(channel);
        return;
      }
      long remaining = graceNanos - waitedNanos;
      if (remaining <= 0) {
        forceIfDraining(channel);
        return;
      }
      delayNanos =
          Math.min(delayNanos > Long.MAX_VALUE / 2 ? Long.MAX_VALUE : delayNanos * 2, remaining);
      schedule();
    }
  }

  /** Shuts down, at once, a channel nobody ever leased. */
  static void discard(ManagedChannel channel) {
    try {
      channel.shutdown();
    } catch (RuntimeException | Error e) {
      LOG.log(Level.WARNING, "shutdown() of channel " + channel + " threw", e);
    }
    shutdownNowQuietly(channel);
  }

  /**
   * The end of the connector's close: waits for the draining channels, forces the rest, and ends
   * the scheduler's thread if the connector owns it.
   */
  void end(boolean ownsScheduler) {
    try {
      // Every channel shut down gracefully, by close() or by an expiry pass before, is in
      // draining (with a zero grace period none is: they were forced at once).
      awaitAll();
    } finally {
      if (ownsScheduler) {
        // Drops the forced shutdowns still scheduled (their channels were awaited or forced) and
        // the leak scan, so that its thread ends now rather than a grace period later.
        scheduler.shutdownNow();
      }
      // A channel that a concurrent expire() shut down after the wait, whose forced shutdown was
      // just dropped (or, on a user's scheduler, is still to come: forced now instead). From now
      // on an owned scheduler refuses the task and the channel is forced on the spot.
      forceAll();
    }
  }

  /**
   * Waits until the draining channels terminate, for at most the grace period in all, forcing the
   * ones left at its end. Every channel shut down gracefully before the call is in the set.
   */
  @SuppressWarnings("ModifyCollectionInEnhancedForLoop") // draining is a concurrent set
  void awaitAll() {
    long deadline = System.nanoTime() + Nanos.saturated(gracePeriod);
    for (ManagedChannel channel : draining) {
      long remaining = deadline - System.nanoTime();
      boolean terminated = false;
      try {
        terminated = remaining > 0 && channel.awaitTermination(remaining, TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        forceAll();
        return;
      } catch (RuntimeException e) {
        LOG.log(Level.WARNING, "awaitTermination() of channel " + channel + " threw", e);
      }
      if (terminated) {
        draining.remove(channel);
      } else {
        forceIfDraining(channel);
      }
    }
  }

  /** Forces every channel still draining. */
  void forceAll() {
    draining.forEach(this::forceIfDraining);
  }

  /** Forces {@code channel} shut unless it terminated or someone else took it off the set. */
  private void forceIfDraining(ManagedChannel channel) {
    if (draining.remove(channel) && !isTerminatedQuietly(channel)) {
      shutdownNowQuietly(channel);
    }
  }

  private static boolean isTerminatedQuietly(ManagedChannel channel) {
    try {
      return channel.isTerminated();
    } catch (RuntimeException | Error e) {
      return false;
    }
  }

  private static void shutdownNowQuietly(ManagedChannel channel) {
    try {
      channel.shutdownNow();
    } catch (RuntimeException | Error e) {
      LOG.log(Level.WARNING, "shutdownNow() of channel " + channel + " threw", e);
    }
  }
}
