package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.ThreadParams;

/**
 * The hit path: one dial of a cached address and its release per operation, for the connector and
 * the two baselines, over the same addresses and the same {@link FakeChannel}s.
 *
 * <ul>
 *   <li>{@code connector}: {@link CachingConnector#dial(String)}, then {@link
 *       LeasedChannel#close()} (a map lookup, a CAS on the entry's state word and a lease
 *       allocation, then a CAS on the lease's released flag and an atomic decrement);
 *   <li>{@code connectorTryDial} and {@code connectorDialAsync}: the same hit through the doors for
 *       event loops ({@code dialAsync} allocates the completed future too);
 *   <li>{@code limit}: {@link LimitBaseline}, {@code ConcurrentHashMap.get} plus an atomic
 *       increment and decrement: the least any lease can cost;
 *   <li>{@code globalLockPort}: {@link GlobalLockConnector}, the Go algorithm with one lock.
 * </ul>
 *
 * <p>With {@code addresses = 1} every thread leases the same entry (the most contended case); with
 * 64, each thread walks all addresses from its own starting point. Each method returns what it
 * leased, so the lease escapes as it does when a caller hands it to a stub: an allocation that
 * escape analysis removed here would not be removed in real use.
 *
 * <p>{@code leakDetection} turns the connector's leak detection on (a threshold of an hour, so
 * nothing is reported): its cost per dial + release is the difference between the two scores of
 * {@code connector}. The baselines ignore it.
 *
 * <p>Run it on one and on two threads, with allocation per operation:
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar DialReleaseBenchmark -t 1 -prof gc -p leakDetection=off
 * java -jar benchmarks/target/benchmarks.jar DialReleaseBenchmark -t 2 -prof gc -p leakDetection=off
 * java -jar benchmarks/target/benchmarks.jar DialReleaseBenchmark.connector -t 1 -p leakDetection=on
 * java -jar benchmarks/target/benchmarks.jar DialReleaseBenchmark.connector -t 2 -p leakDetection=on
 * </pre>
 *
 * Total throughput at {@code t} threads is {@code t / score}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@State(Scope.Benchmark)
public class DialReleaseBenchmark {

  /** How many cached addresses the threads lease from; a power of two. */
  @Param({"1", "64"})
  public int addresses;

  /** Whether the connector runs leak detection: {@code off} or {@code on}. */
  @Param({"off", "on"})
  public String leakDetection = "off";

  // Set by setUp() before any benchmark method runs.
  private String[] keys;
  private CachingConnector cachingConnector;
  private LimitBaseline limitBaseline;
  private GlobalLockConnector globalLock;

  /** Caches every address in the connector and both baselines. */
  @Setup(Level.Trial)
  public void setUp() throws Exception {
    if (Integer.bitCount(addresses) != 1) {
      throw new IllegalArgumentException("addresses must be a power of two, was " + addresses);
    }
    CachingConnector.Builder builder =
        CachingConnector.builder().dialer(FakeChannel::create).shutdownGracePeriod(Duration.ZERO);
    switch (leakDetection) {
      case "off" -> {}
      case "on" -> builder.leakDetectionThreshold(Duration.ofHours(1));
      default ->
          throw new IllegalArgumentException(
              "leakDetection must be off or on, was " + leakDetection);
    }
    cachingConnector = builder.build();
    globalLock = new GlobalLockConnector(FakeChannel::create);
    limitBaseline = new LimitBaseline();
    keys = Addresses.of(addresses);
    for (String key : keys) {
      cachingConnector.dial(key).close();
      ManagedChannel channel = globalLock.dial(key);
      globalLock.release(key, channel);
      limitBaseline.put(key, FakeChannel.create(key));
    }
  }

  /** Closes the connector. */
  @TearDown(Level.Trial)
  public void tearDown() {
    cachingConnector.close();
  }

  /** Each thread's position in the address cycle. */
  @State(Scope.Thread)
  public static class Cursor {
    private int next;
    private int mask;

    /** Starts each thread at a different address. */
    @Setup(Level.Trial)
    public void setUp(DialReleaseBenchmark benchmark, ThreadParams thread) {
      mask = benchmark.addresses - 1;
      next = (thread.getThreadIndex() * 17) & mask;
    }

    int next() {
      int index = next;
      next = (index + 1) & mask;
      return index;
    }
  }

  /** One dial of a cached address and its release through the lease. */
  @Benchmark
  public LeasedChannel connector(Cursor cursor) {
    LeasedChannel lease = cachingConnector.dial(keys[cursor.next()]);
    lease.close();
    return lease;
  }

  /** The event loop's hit: {@link CachingConnector#tryDial(String)} and the release. */
  @Benchmark
  public LeasedChannel connectorTryDial(Cursor cursor) {
    LeasedChannel lease = cachingConnector.tryDial(keys[cursor.next()]);
    if (lease == null) {
      throw new IllegalStateException("a cached address was not leased");
    }
    lease.close();
    return lease;
  }

  /**
   * The asynchronous hit: {@link CachingConnector#dialAsync(String)}, complete on return, and the
   * release.
   */
  @Benchmark
  public CompletableFuture<LeasedChannel> connectorDialAsync(Cursor cursor) {
    CompletableFuture<LeasedChannel> future = cachingConnector.dialAsync(keys[cursor.next()]);
    future.getNow(null).close();
    return future;
  }

  /** One map lookup and an atomic increment and decrement: the least a lease can cost. */
  @Benchmark
  public ManagedChannel limit(Cursor cursor) {
    LimitBaseline.Slot slot = limitBaseline.acquire(keys[cursor.next()]);
    limitBaseline.release(slot);
    return slot.channel;
  }

  /** One dial and release of the Go algorithm under its one lock. */
  @Benchmark
  public ManagedChannel globalLockPort(Cursor cursor) throws Exception {
    String key = keys[cursor.next()];
    ManagedChannel channel = globalLock.dial(key);
    globalLock.release(key, channel);
    return channel;
  }
}
