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
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jspecify.annotations.Nullable;

/**
 * Leak detection: reports leases held longer than a threshold, with the thread, the time and, when
 * recorded, the stack of their dial. Thread-safe.
 *
 * <p>Nothing is scheduled per lease. A watched lease puts a {@link Watch} into a concurrent set and
 * takes it out when released; one task, rescheduled by itself every quarter threshold, scans the
 * set and reports each watch found past the threshold, once. A leak is reported between one
 * threshold and one and a quarter thresholds after its dial. Nothing is left queued on the
 * scheduler by a lease, whatever scheduler it is, and no lock that all threads share is taken.
 *
 * <p>Stacks are sampled: capturing a stack costs an order of magnitude more than the rest of a
 * watch, and more in a deep application stack (BENCHMARKS.md). So until the first leak is found, a
 * watch records the stack of the connector's first dial and of one dial in {@value #SAMPLE} on each
 * thread (every {@value #SAMPLE}th, from a random start); once a leak has been found, every dial's
 * stack is recorded, so that a leak that recurs is soon reported with the place it comes from.
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

  /** One dial in this many records its stack, per thread, until a leak is found. */
  static final int SAMPLE = 8;

  /**
   * Dials per thread, for sampling; one counter per thread (no shared write), starting at a random
   * point, so that threads that dial once each (a virtual thread per request) are sampled too.
   */
  private final ThreadLocal<int[]> dialsOnThread =
      ThreadLocal.withInitial(() -> new int[] {ThreadLocalRandom.current().nextInt(SAMPLE)});

  /** Set once the first dial recorded its stack: the connector's first dial always does. */
  private final AtomicBoolean firstRecorded = new AtomicBoolean();

  /** Set once a leak was found: from then on every dial's stack is recorded. */
  private volatile boolean leakFound;

  private volatile @Nullable ScheduledFuture<?> next;
  private volatile boolean stopped;

  LeakDetector(
      Duration threshold,
      InstantSource clock,
      ScheduledExecutorService scheduler,
      ConnectorListener listener) {
    this.threshold = threshold;
    this.thresholdMillis = Math.max(1, Nanos.saturated(threshold) / 1_000_000);
    this.periodNanos = Math.max(TimeUnit.MILLISECONDS.toNanos(1), Nanos.saturated(threshold) / 4);
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
    boolean recordStack =
        leakFound
            || (!firstRecorded.get() && firstRecorded.compareAndSet(false, true))
            || dialsOnThread.get()[0]++ % SAMPLE == 0;
    Watch watch = new Watch(address, clock.millis(), recordStack);
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
          leakFound = true;
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
      ScheduledFuture<?> scheduled = scheduler.schedule(this, periodNanos, TimeUnit.NANOSECONDS);
      next = scheduled;
      if (stopped) {
        scheduled.cancel(/* mayInterruptIfRunning= */ false); // stop() may have read the old one
      }
    } catch (RejectedExecutionException e) {
      stopped = true; // the scheduler is shut down: leak detection ends with it
    }
  }

  /**
   * A watched lease: when it was taken, by which thread, and, as a throwable whose stack trace is
   * that of the dial when it was recorded, where. Its message is built only when it is logged.
   */
  static final class Watch extends Throwable {

    private static final long serialVersionUID = 1L;

    final String address;
    final long takenAtMillis;
    private final String threadName;
    private final boolean stackRecorded;
    volatile boolean reported;

    Watch(String address, long takenAtMillis, boolean recordStack) {
      super(null, null, /* enableSuppression= */ false, /* writableStackTrace= */ recordStack);
      this.address = address;
      this.takenAtMillis = takenAtMillis;
      this.threadName = Thread.currentThread().getName();
      this.stackRecorded = recordStack;
    }

    @Override
    public String getMessage() {
      return "Lease on "
          + address
          + " taken by thread "
          + threadName
          + " at "
          + Instant.ofEpochMilli(takenAtMillis)
          + (stackRecorded
              ? ", here"
              : "; the stack of its dial was not recorded (leak detection records one dial's"
                  + " stack in "
                  + SAMPLE
                  + " per thread until it finds a leak, and every dial's stack after)");
    }
  }
}
