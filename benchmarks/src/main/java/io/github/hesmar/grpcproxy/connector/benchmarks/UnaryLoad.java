package io.github.hesmar.grpcproxy.connector.benchmarks;

import com.sun.management.OperatingSystemMXBean;
import io.github.hesmar.grpcproxy.connector.benchmarks.QueueSampler.Queued;
import io.github.hesmar.grpcproxy.connector.benchmarks.StreamLimitTables.UnaryResult;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The unary case of {@link StreamLimitBenchmark}: keeps {@link #CONCURRENCY} unary calls in flight
 * and records their latencies; {@link #run} measures one arm with it.
 */
final class UnaryLoad {

  /** Unary calls kept in flight. */
  static final int CONCURRENCY = 1_000;

  /** The CPU time of this process: client, backend and driver. */
  private static final OperatingSystemMXBean PROCESS =
      (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

  private final Route route;
  private final Semaphore permits = new Semaphore(CONCURRENCY);
  private final AtomicInteger failed = new AtomicInteger();

  /** Latencies of the calls closed while {@link #recording}, in nanoseconds. */
  private final long[] latencies;

  private final AtomicInteger recorded = new AtomicInteger();
  private volatile boolean recording;

  private UnaryLoad(Route route, int capacity) {
    this.route = route;
    this.latencies = new long[capacity];
  }

  /**
   * Runs one arm against a backend of its own for {@code warmUp} and then {@code measure}, prints
   * its row with a {@code #} and returns it.
   */
  static UnaryResult run(
      String name,
      Route.Factory routes,
      long delayMillis,
      int backendLimit,
      Duration warmUp,
      Duration measure)
      throws Exception {
    try (StreamLimitBackend backend = StreamLimitBackend.start(delayMillis, backendLimit);
        Route route = routes.open(backend.target());
        QueueSampler sampler = new QueueSampler(route)) {
      UnaryLoad load =
          new UnaryLoad(route, (int) Math.max(1_000_000, measure.toSeconds() * 200_000));
      load.drive(System.nanoTime() + warmUp.toNanos());
      load.recording = true;
      backend.resetMaxRunning();
      sampler.start();
      long cpuStart = PROCESS.getProcessCpuTime();
      long start = System.nanoTime();
      load.drive(start + measure.toNanos());
      String channels = route.channels(CONCURRENCY - load.permits.availablePermits());
      Queued queuedEnd = sampler.stop();
      int runningEnd = backend.running();
      int maxRunning = backend.maxRunning();
      String limits = route.limits();
      load.recording = false;
      long elapsed = System.nanoTime() - start;
      long cpu = PROCESS.getProcessCpuTime() - cpuStart;
      int count = Math.min(load.recorded.get(), load.latencies.length);
      if (!load.permits.tryAcquire(CONCURRENCY, 60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + ": calls still in flight a minute after the end");
      }
      Queued queuedAfter = sampler.sample();
      long[] latencies = Arrays.copyOf(load.latencies, count);
      Arrays.sort(latencies);
      UnaryResult result =
          new UnaryResult(
              name,
              count / (elapsed / 1e9),
              percentileMillis(latencies, 0.50),
              percentileMillis(latencies, 0.99),
              count == 0 ? 0 : latencies[count - 1] / 1e6,
              (double) cpu / elapsed,
              count == 0 ? 0 : cpu / 1e3 / count,
              load.failed.get(),
              channels,
              maxRunning,
              runningEnd,
              sampler.max(),
              queuedEnd,
              queuedAfter,
              limits);
      System.out.println("# " + result.row());
      return result;
    }
  }

  private static double percentileMillis(long[] sorted, double quantile) {
    if (sorted.length == 0) {
      return 0;
    }
    int index = (int) Math.ceil(quantile * sorted.length) - 1;
    return sorted[Math.max(0, index)] / 1e6;
  }

  /** Starts a call whenever one of the calls in flight closes, until {@code deadline}. */
  private void drive(long deadline) throws InterruptedException {
    while (System.nanoTime() - deadline < 0) {
      if (!permits.tryAcquire(1, TimeUnit.MILLISECONDS)) {
        continue;
      }
      long start = System.nanoTime();
      try {
        route.call(StreamLimitBackend.DELAYED, ClientCalls::asyncUnaryCall, new Observer(start));
      } catch (RuntimeException e) {
        failed.incrementAndGet();
        permits.release();
      }
    }
  }

  private final class Observer implements StreamObserver<byte[]> {

    private final long start;

    Observer(long start) {
      this.start = start;
    }

    @Override
    public void onNext(byte[] value) {}

    @Override
    public void onError(Throwable t) {
      failed.incrementAndGet();
      permits.release();
    }

    @Override
    public void onCompleted() {
      long latency = System.nanoTime() - start;
      if (recording) {
        int index = recorded.getAndIncrement();
        if (index < latencies.length) {
          latencies[index] = latency;
        }
      }
      permits.release(); // after the write above: the reader acquires every permit first
    }
  }
}
