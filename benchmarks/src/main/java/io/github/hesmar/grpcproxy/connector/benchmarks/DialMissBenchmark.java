package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import java.time.Duration;
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

/**
 * The miss path: a dial of an address that is not cached, with a dialer that returns one prebuilt
 * channel (so the dialer itself costs nothing), and its release.
 *
 * <p>To make every operation a miss without growing the map forever, each operation also detaches
 * the address again with {@link CachingConnector#closeOnRelease(String)}, and every 1,024th
 * operation runs {@link CachingConnector#expire()}, which closes the 1,024 detached channels. The
 * addresses cycle through 4,096 names, so an address comes back only after its entry was closed.
 * The score is therefore the whole life of a cached channel: miss, lease, release, detach and
 * 1/1,024 of an expiry pass.
 *
 * <p>{@code executor}: {@code pool} is the default dial executor, a cached thread pool, so the
 * caller hands the dial to another thread and waits for it (what every real miss pays); {@code
 * direct} ({@code Runnable::run}) runs the dialer on the caller's thread and shows the cost of the
 * cache alone.
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar DialMissBenchmark -prof gc
 * </pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@State(Scope.Thread)
public class DialMissBenchmark {

  private static final int ADDRESSES = 4096;
  private static final int EXPIRE_EVERY = 1024;

  /** Which executor runs the dialer: {@code pool} (the default) or {@code direct}. */
  @Param({"pool", "direct"})
  public String executor = "pool";

  // Set by setUp() before any benchmark method runs.
  private String[] keys;
  private CachingConnector cachingConnector;
  private int next;

  /** Builds a connector whose dialer returns the same prebuilt channel for every address. */
  @Setup(Level.Trial)
  public void setUp() {
    FakeChannel prebuilt = FakeChannel.immortal("prebuilt");
    CachingConnector.Builder builder =
        CachingConnector.builder().dialer(address -> prebuilt).shutdownGracePeriod(Duration.ZERO);
    switch (executor) {
      case "pool" -> {}
      case "direct" -> builder.dialExecutor(Runnable::run);
      default -> throw new IllegalArgumentException("executor must be pool or direct: " + executor);
    }
    cachingConnector = builder.build();
    keys = Addresses.of(ADDRESSES);
  }

  /** Closes the connector. */
  @TearDown(Level.Trial)
  public void tearDown() {
    cachingConnector.close();
  }

  /** One miss: dial, release, detach; and every 1,024th time, an expiry pass. */
  @Benchmark
  public LeasedChannel miss() {
    int index = next;
    next = (index + 1) & (ADDRESSES - 1);
    String key = keys[index];
    LeasedChannel lease = cachingConnector.dial(key);
    lease.close();
    cachingConnector.closeOnRelease(key);
    if ((index & (EXPIRE_EVERY - 1)) == EXPIRE_EVERY - 1) {
      cachingConnector.expire();
    }
    return lease;
  }
}
