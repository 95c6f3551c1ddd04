package io.github.hesmar.grpcproxy.connector;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * Leak detection: reports leases held longer than a threshold, with the stack of their dial.
 * Thread-safe.
 *
 * <p>Nothing is scheduled per lease. A watched lease puts a {@link Watch} (the time it was taken
 * and a stack trace) into a concurrent set and takes it out when released; one task, rescheduled by
 * itself every quarter threshold, scans the set and reports each watch found past the threshold,
 * once. So a dial + release costs a stack trace and a set insertion and removal, takes no lock that
 * all threads share, and leaves nothing queued on the scheduler, whatever scheduler it is. A leak
 * is reported between one threshold and one and a quarter thresholds after its dial.
 */
final class LeakDetector implements Runnable {

  private static final System.Logger LOG = System.getLogger(CachingConnector.class.getName());

  private final Duration threshold;
  private final long thresholdMillis;
  private final long periodNanos;
  private final InstantSource clock;
  private final ScheduledExecutorService scheduler;
  private final ConnectorListener listener;
  private final Set<Watch> watched = ConcurrentHashMap.newKeySet();
  private volatile @Nullable ScheduledFuture<?> next;
  private volatile boolean stopped;

  LeakDetector(
      Duration threshold,
      InstantSource clock,
      ScheduledExecutorService scheduler,
      ConnectorListener listener) {
    this.threshold = threshold;
    this.thresholdMillis = Math.max(1, threshold.toMillis());
    this.periodNanos = Math.max(TimeUnit.MILLISECONDS.toNanos(1), saturatedNanos(threshold) / 4);
    this.clock = clock;
    this.scheduler = scheduler;
    this.listener = listener;
  }

  /** Schedules the first scan. */
  void start() {
    scheduleNext();
  }

  /** Stops scanning; watches of leases still held are dropped with the connector. */
  void stop() {
    stopped = true;
    ScheduledFuture<?> pending = next;
    if (pending != null) {
      pending.cancel(/* mayInterruptIfRunning= */ false);
    }
    watched.clear();
  }

  /** Starts watching a lease being taken by the calling thread. */
  Watch watch(String address) {
    Watch watch = new Watch(address, clock.millis());
    watched.add(watch);
    return watch;
  }

  /** Stops watching a released lease; logs if it had been reported. */
  void released(Watch watch) {
    watched.remove(watch);
    if (watch.reported) {
      LOG.log(
          Level.INFO,
          "Lease on "
              + watch.address
              + " reported as a possible leak was released after "
              + Duration.ofMillis(clock.millis() - watch.takenAtMillis));
    }
  }

  /** One scan: reports the watches past the threshold not reported yet. */
  @Override
  public void run() {
    if (stopped) {
      return;
    }
    try {
      long now = clock.millis();
      for (Watch watch : watched) {
        if (!watch.reported && now - watch.takenAtMillis >= thresholdMillis) {
          watch.reported = true;
          report(watch, Duration.ofMillis(now - watch.takenAtMillis));
        }
      }
    } finally {
      scheduleNext();
    }
  }

  private void report(Watch watch, Duration heldFor) {
    LOG.log(
        Level.WARNING,
        "Possible lease leak: the lease on "
            + watch.address
            + " has been held for "
            + heldFor
            + " (leak detection threshold "
            + threshold
            + ")",
        watch);
    listener.onLeak(watch.address, heldFor);
  }

  private void scheduleNext() {
    if (stopped) {
      return;
    }
    try {
      next = scheduler.schedule(this, periodNanos, TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) {
      stopped = true; // the scheduler is shut down: leak detection ends with it
    }
  }

  private static long saturatedNanos(Duration duration) {
    try {
      return duration.toNanos();
    } catch (ArithmeticException e) {
      return Long.MAX_VALUE;
    }
  }

  /**
   * A watched lease: when it was taken, and, as a throwable whose stack trace is that of the dial,
   * by whom. Its message is built only when it is logged.
   */
  static final class Watch extends Throwable {

    private static final long serialVersionUID = 1L;

    final String address;
    final long takenAtMillis;
    private final String threadName;
    volatile boolean reported;

    Watch(String address, long takenAtMillis) {
      super(null, null, /* enableSuppression= */ false, /* writableStackTrace= */ true);
      this.address = address;
      this.takenAtMillis = takenAtMillis;
      this.threadName = Thread.currentThread().getName();
    }

    @Override
    public String getMessage() {
      return "Lease on "
          + address
          + " taken by thread "
          + threadName
          + " at "
          + Instant.ofEpochMilli(takenAtMillis)
          + ", here";
    }
  }
}
