package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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
 * The hit path of an address with several channels (rule 9): one dial and its release per
 * operation, on one address, with {@code channels} channels.
 *
 * <p>With {@code channels = 1} the address has one channel with room: the hit path of {@link
 * DialReleaseBenchmark} with one address. With 8, the connector allows one call per channel and the
 * set-up holds one call on each of the first seven channels, so that every dial scans all eight and
 * leases the last, the only one with room: the dearest choice a dial makes without opening a
 * channel. The benchmark's own dials start no call, so nothing changes during the run.
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar PoolDialBenchmark -t 1
 * java -jar benchmarks/target/benchmarks.jar PoolDialBenchmark -t 2
 * </pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
    value = 2,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@State(Scope.Benchmark)
public class PoolDialBenchmark {

  private static final String ADDRESS = "dns:///pool.bench:443";

  /** How many channels the address has: 1 or 8. */
  @Param({"1", "8"})
  public int channels = 1;

  private CachingConnector connector = CachingConnector.builder().build();
  private final List<FakeChannel> created = new ArrayList<>();
  private final List<FakeChannel.HeldCall<?, ?>> held = new ArrayList<>();

  /** Opens the address's channels: a call held on each but the last makes the next dial grow. */
  @Setup(Level.Trial)
  public void setUp() {
    connector.close();
    connector =
        CachingConnector.builder()
            .dialer(
                address -> {
                  FakeChannel channel = FakeChannel.create(address);
                  created.add(channel);
                  return channel;
                })
            .shutdownGracePeriod(Duration.ZERO)
            .maxCallsPerChannel(channels == 1 ? 100 : 1)
            .maxChannelsPerAddress(channels)
            .build();
    List<LeasedChannel> leases = new ArrayList<>();
    for (int i = 0; i < channels; i++) {
      LeasedChannel lease = connector.dial(ADDRESS);
      leases.add(lease);
      if (i < channels - 1) {
        ClientCall<byte[], byte[]> call = lease.newCall(METHOD, CallOptions.DEFAULT);
        call.start(new ClientCall.Listener<>() {}, new Metadata());
        held.add(created.get(i).lastCall());
      }
    }
    leases.forEach(LeasedChannel::close);
    int open = connector.connections().size();
    if (open != channels) {
      throw new IllegalStateException("expected " + channels + " channels, found " + open);
    }
  }

  /** Ends the held calls and closes the connector. */
  @TearDown(Level.Trial)
  public void tearDown() {
    held.forEach(FakeChannel.HeldCall::end);
    connector.close();
  }

  /** One dial of the address and its release. */
  @Benchmark
  public LeasedChannel dialRelease() {
    LeasedChannel lease = connector.dial(ADDRESS);
    lease.close();
    return lease;
  }

  private static final MethodDescriptor<byte[], byte[]> METHOD =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName("bench.Pool/Hold")
          .setRequestMarshaller(BytesMarshaller.INSTANCE)
          .setResponseMarshaller(BytesMarshaller.INSTANCE)
          .build();
}
