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
 * <p>A channel shut down with a grace period goes into {@link #draining}, and a task forces it once
 * the grace has passed. Whoever removes it from the set (that task, or {@link #awaitAll} and {@link
 * #forceAll} at close) forces it, so it is forced at most once. A channel whose {@code shutdown()},
 * {@code shutdownNow()} or {@code awaitTermination()} throws is logged and treated as not
 * terminated: it never stops the others from closing.
 */
final class Drainer {

  private static final System.Logger LOG = System.getLogger(CachingConnector.class.getName());

  private final Duration gracePeriod;
  private final ScheduledExecutorService scheduler;

  /** Channels shut down gracefully whose forced shutdown is still to come. */
  private final Set<ManagedChannel> draining = ConcurrentHashMap.newKeySet();

  Drainer(Duration gracePeriod, ScheduledExecutorService scheduler) {
    this.gracePeriod = gracePeriod;
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
    draining.add(channel);
    try {
      ScheduledFuture<?> unused =
          scheduler.schedule(
              () -> forceIfDraining(channel),
              CachingConnector.saturatedNanos(gracePeriod),
              TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) {
      forceIfDraining(channel); // closing: the scheduler is shut down
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
   * Waits until the draining channels terminate, for at most the grace period in all, forcing the
   * ones left at its end. Every channel shut down gracefully before the call is in the set.
   */
  @SuppressWarnings("ModifyCollectionInEnhancedForLoop") // draining is a concurrent set
  void awaitAll() {
    long deadline = System.nanoTime() + CachingConnector.saturatedNanos(gracePeriod);
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
