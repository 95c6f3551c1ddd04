package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
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

/**
 * Expiry: the cost of one {@link CachingConnector#expire()} pass over many cached entries, and what
 * a concurrent pass does to the latency of dials.
 *
 * <h2>{@code expirePass}: one pass over 10,000 and 100,000 idle entries</h2>
 *
 * A channel closes at the second pass after its last release, so passes over the same idle entries
 * cannot be repeated: the second would close them all and the third would find an empty map. Before
 * every measured pass (JMH {@link Level#Invocation} setup, not timed) each entry is therefore
 * dialed and released once, which is what a busy proxy's entries look like at a pass: no lease, but
 * used since the last pass. The measured pass then visits every entry, clears its dialed flag with
 * one CAS, counts it as idle pass 1, and keeps it; the iteration teardown checks that no channel
 * was closed, so every measured pass really scanned all {@code entries}. (A pass that closes the
 * channels also shuts each one down, a cost of the channel rather than of the scan.) The re-dial
 * leaves the entries warm in the CPU caches, as they would not quite be in a service that touched
 * them between passes; the pass's own misses make up for part of it at 100,000 entries, whose state
 * does not fit in the caches.
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar ExpireBenchmark.expirePass
 * </pre>
 *
 * <h2>Dial latency with and without a concurrent pass over 100,000 entries</h2>
 *
 * 100,000 cached entries each hold one lease, so that expiry passes, run back to back by a second
 * thread, keep scanning all of them instead of closing them. One thread dials and releases 64 hot
 * addresses spread over the map; JMH samples the time of each dial and release (SampleTime: p50,
 * p99, p99.9 and the sample count). {@code dialWithoutExpiry} is the same thread alone; {@code
 * dialDuringExpiry} adds the expiring thread (its {@code expire} line gives the duration of each
 * pass); {@code globalLockDialDuringExpiry} is the same for {@link GlobalLockConnector}, whose pass
 * holds the one lock that dials need. Needs two free cores.
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar "ExpireBenchmark.(dialWithoutExpiry|dialDuringExpiry|globalLockDialDuringExpiry)"
 * </pre>
 */
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
public class ExpireBenchmark {

  static final int LATENCY_ENTRIES = 100_000;
  static final int HOT_ADDRESSES = 64;

  /** A connector of {@code entries} entries, each dialed and released before every pass. */
  @State(Scope.Benchmark)
  public static class PassState {

    /** How many cached entries the pass visits. */
    @Param({"10000", "100000"})
    public int entries;

    // Set by setUp() before any benchmark method runs.
    private String[] keys;
    private CachingConnector connector;

    /** Caches {@code entries} addresses. */
    @Setup(Level.Trial)
    public void setUp() {
      connector = newConnector();
      keys = Addresses.of(entries);
      redial();
    }

    /** Dials and releases every entry: each is idle, and used since the last pass. */
    @Setup(Level.Invocation)
    public void redial() {
      for (String key : keys) {
        connector.dial(key).close();
      }
    }

    /** Checks that the measured passes kept every entry. */
    @TearDown(Level.Iteration)
    public void checkNothingClosed() {
      if (connector.connectionCount() != entries) {
        throw new IllegalStateException(
            "expected "
                + entries
                + " channels, found "
                + connector.connectionCount()
                + ": a measured pass closed channels instead of scanning them");
      }
    }

    /** Closes the connector. */
    @TearDown(Level.Trial)
    public void tearDown() {
      connector.close();
    }
  }

  /** One expiry pass over {@code entries} idle entries, each used since the previous pass. */
  @Benchmark
  @BenchmarkMode(Mode.AverageTime)
  @OutputTimeUnit(TimeUnit.MILLISECONDS)
  public List<String> expirePass(PassState state) {
    return state.connector.expire();
  }

  /**
   * 100,000 entries, each holding one lease, in the connector and in the global-lock baseline, and
   * the 64 hot addresses the dialing thread cycles through.
   */
  @State(Scope.Group)
  public static class LatencyState {

    // Set by setUp() before any benchmark method runs.
    private String[] hot;
    private CachingConnector connector;
    private GlobalLockConnector globalLock;
    private final List<LeasedChannel> held = new ArrayList<>();
    private int next;

    /** Caches the entries and takes one lease on each. */
    @Setup(Level.Trial)
    public void setUp() throws Exception {
      connector = newConnector();
      globalLock = new GlobalLockConnector(FakeChannel::create);
      String[] keys = Addresses.of(LATENCY_ENTRIES);
      for (String key : keys) {
        held.add(connector.dial(key));
        globalLock.dial(key);
      }
      hot = new String[HOT_ADDRESSES];
      for (int i = 0; i < HOT_ADDRESSES; i++) {
        hot[i] = keys[i * (LATENCY_ENTRIES / HOT_ADDRESSES)];
      }
    }

    /** Releases the held leases and closes the connector. */
    @TearDown(Level.Trial)
    public void tearDown() {
      held.forEach(LeasedChannel::close);
      connector.close();
    }

    /** One dial and release of the next hot address. */
    LeasedChannel dialAndReleaseHot() {
      LeasedChannel lease = connector.dial(nextHot());
      lease.close();
      return lease;
    }

    String nextHot() {
      int index = next;
      next = (index + 1) & (HOT_ADDRESSES - 1);
      return hot[index];
    }
  }

  /** A dial and release of a hot address, with no expiry running (a group of one thread). */
  @Benchmark
  @Group("dialWithoutExpiry")
  @GroupThreads(1)
  @BenchmarkMode(Mode.SampleTime)
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public LeasedChannel dialAlone(LatencyState state) {
    return state.dialAndReleaseHot();
  }

  /** A dial and release of a hot address while {@link #expire} runs passes on another thread. */
  @Benchmark
  @Group("dialDuringExpiry")
  @GroupThreads(1)
  @BenchmarkMode(Mode.SampleTime)
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public LeasedChannel dial(LatencyState state) {
    return state.dialAndReleaseHot();
  }

  /** Back-to-back expiry passes over the 100,000 leased entries, concurrent with {@link #dial}. */
  @Benchmark
  @Group("dialDuringExpiry")
  @GroupThreads(1)
  @BenchmarkMode(Mode.SampleTime)
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public List<String> expire(LatencyState state) {
    return state.connector.expire();
  }

  /** {@link #dial} against the global-lock baseline while its expiry runs on another thread. */
  @Benchmark
  @Group("globalLockDialDuringExpiry")
  @GroupThreads(1)
  @BenchmarkMode(Mode.SampleTime)
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public ManagedChannel globalLockDial(LatencyState state) throws Exception {
    String key = state.nextHot();
    ManagedChannel channel = state.globalLock.dial(key);
    state.globalLock.release(key, channel);
    return channel;
  }

  /** Back-to-back passes of the global-lock baseline, concurrent with {@link #globalLockDial}. */
  @Benchmark
  @Group("globalLockDialDuringExpiry")
  @GroupThreads(1)
  @BenchmarkMode(Mode.SampleTime)
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public List<String> globalLockExpire(LatencyState state) {
    return state.globalLock.expire();
  }

  static CachingConnector newConnector() {
    return CachingConnector.builder()
        .dialer(FakeChannel::create)
        .shutdownGracePeriod(Duration.ZERO)
        .build();
  }
}
