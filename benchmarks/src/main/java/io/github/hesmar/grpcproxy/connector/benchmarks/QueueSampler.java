package io.github.hesmar.grpcproxy.connector.benchmarks;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Samples a route's queued calls every {@link #SAMPLE_MILLIS} between {@link #start()} and {@link
 * #stop()}, on a thread of its own, keeping the most seen.
 */
final class QueueSampler implements AutoCloseable {

  /** How often the queued calls are sampled. */
  private static final long SAMPLE_MILLIS = 10;

  /**
   * Calls queued at one moment (or the most seen): as the connector counts them ({@code -1}: no
   * connector), and as this program's stream tracer counts them.
   */
  record Queued(int connector, long tracer) {

    static final Queued NONE = new Queued(-1, 0);

    Queued max(Queued other) {
      return new Queued(Math.max(connector, other.connector), Math.max(tracer, other.tracer));
    }
  }

  private final Route route;
  private final ScheduledExecutorService thread =
      Executors.newSingleThreadScheduledExecutor(
          task -> {
            Thread sampler = new Thread(task, "queue-sampler");
            sampler.setDaemon(true);
            return sampler;
          });
  private volatile Queued max = Queued.NONE;

  QueueSampler(Route route) {
    this.route = route;
  }

  /** Forgets the most seen so far and samples from now on. */
  @SuppressWarnings("FutureReturnValueIgnored") // stopped by shutting the executor down
  void start() {
    max = sample();
    thread.scheduleAtFixedRate(this::record, 0, SAMPLE_MILLIS, TimeUnit.MILLISECONDS);
  }

  private void record() {
    max = max.max(sample()); // one thread writes
  }

  /** Stops sampling; returns a last sample, counted in the most seen. */
  Queued stop() throws InterruptedException {
    thread.shutdownNow();
    thread.awaitTermination(10, TimeUnit.SECONDS);
    Queued last = sample();
    max = max.max(last);
    return last;
  }

  /** The most seen between start and stop. */
  Queued max() {
    return max;
  }

  /** The queued calls now. */
  Queued sample() {
    return new Queued(route.connectorQueued(), route.tracerQueued());
  }

  @Override
  public void close() {
    thread.shutdownNow();
  }
}
