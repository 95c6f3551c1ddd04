package io.github.hesmar.grpcproxy.sample.bench;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleResponse;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A closed-loop gRPC load generator for the sample proxy's benchmark ({@code
 * sample-app/bench/proxy-load.sh}, which uses it when h2load is not installed): {@code connections}
 * channels, each with {@code streams} unary {@code grpc.testing.SimpleService/UnaryRpc} calls
 * outstanding at all times; each call that ends starts the next. After the warm-up, it counts for
 * {@code duration} the calls that end OK, with their latency, and the calls that end otherwise, and
 * prints one line:
 *
 * <pre>
 * calls/s=12345 p50_ms=1.23 p99_ms=4.56 ok=123456 errors=0
 * </pre>
 *
 * <p>Run from the sample's jar:
 *
 * <pre>
 * java -cp sample-app/target/sample-app-0.1.0-SNAPSHOT.jar \
 *     -Dloader.main=io.github.hesmar.grpcproxy.sample.bench.LoadGenerator \
 *     org.springframework.boot.loader.launch.PropertiesLauncher \
 *     127.0.0.1:9090 bench 4 10 5 10
 * </pre>
 *
 * The arguments: target ({@code host:port}, plaintext), route (sent as {@code x-route}; {@code -}
 * for none), connections, streams per connection, warm-up seconds, measured seconds. The exit code
 * is 1 if any measured call failed or none succeeded. With the arguments target, route and {@code
 * once}, it makes one call and prints its status (exit code 1 unless OK): a check that a route
 * really answers with grpc-status 0.
 */
public final class LoadGenerator {

  private static final Metadata.Key<String> ROUTE =
      Metadata.Key.of("x-route", Metadata.ASCII_STRING_MARSHALLER);

  private final MethodDescriptor<SimpleRequest, SimpleResponse> method =
      SimpleServiceGrpc.getUnaryRpcMethod();
  private final SimpleRequest request =
      SimpleRequest.newBuilder().setRequestMessage("hello").build();
  private final LatencyHistogram latencies = new LatencyHistogram();
  private final AtomicLong errors = new AtomicLong();
  private final String route;
  private volatile boolean recording;
  private volatile boolean stopping;

  private LoadGenerator(String route) {
    this.route = route;
  }

  /**
   * Runs the load; see the class comment for the arguments.
   *
   * @param args target, route, connections, streams, warm-up seconds, measured seconds
   * @throws InterruptedException if interrupted while waiting
   */
  public static void main(String[] args) throws InterruptedException {
    if (args.length == 3 && args[2].equals("once")) {
      Status status = new LoadGenerator(args[1]).once(args[0]);
      System.out.println(status);
      System.exit(status.isOk() ? 0 : 1);
    }
    if (args.length != 6) {
      System.err.println(
          "Usage: LoadGenerator <host:port> <route|-> <connections> <streams> <warmup-s>"
              + " <duration-s>\n       LoadGenerator <host:port> <route|-> once");
      System.exit(2);
    }
    String target = args[0];
    int connections = Integer.parseInt(args[2]);
    int streams = Integer.parseInt(args[3]);
    Duration warmUp = Duration.ofSeconds(Long.parseLong(args[4]));
    Duration duration = Duration.ofSeconds(Long.parseLong(args[5]));
    LoadGenerator generator = new LoadGenerator(args[1]);
    Result result = generator.run(target, connections, streams, warmUp, duration);
    System.out.println(result.line());
    System.exit(result.errors() == 0 && result.ok() > 0 ? 0 : 1);
  }

  private Result run(
      String target, int connections, int streams, Duration warmUp, Duration duration)
      throws InterruptedException {
    List<ManagedChannel> channels = new ArrayList<>();
    CountDownLatch idle = new CountDownLatch(connections * streams);
    try {
      for (int c = 0; c < connections; c++) {
        // One channel per connection; calls complete on the event loop (nothing blocks there).
        ManagedChannel channel =
            NettyChannelBuilder.forTarget(target).usePlaintext().directExecutor().build();
        channels.add(channel);
        for (int s = 0; s < streams; s++) {
          call(channel, idle);
        }
      }
      Thread.sleep(warmUp.toMillis()); // the warm-up is a duration, not a wait for an outcome
      recording = true;
      long start = System.nanoTime();
      Thread.sleep(duration.toMillis());
      recording = false;
      long elapsed = System.nanoTime() - start;
      stopping = true;
      idle.await(30, TimeUnit.SECONDS);
      return new Result(
          latencies.count() * 1e9 / elapsed,
          latencies.percentile(50),
          latencies.percentile(99),
          latencies.count(),
          errors.get());
    } finally {
      for (ManagedChannel channel : channels) {
        channel.shutdownNow();
      }
    }
  }

  private Status once(String target) {
    ManagedChannel channel = NettyChannelBuilder.forTarget(target).usePlaintext().build();
    try {
      SimpleServiceGrpc.newBlockingStub(channel)
          .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers()))
          .withDeadlineAfter(30, TimeUnit.SECONDS)
          .unaryRpc(request);
      return Status.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus();
    } finally {
      channel.shutdownNow();
    }
  }

  private Metadata headers() {
    Metadata headers = new Metadata();
    if (!route.equals("-")) {
      headers.put(ROUTE, route);
    }
    return headers;
  }

  /** Starts one call; its end starts the next, until stopping. */
  private void call(ManagedChannel channel, CountDownLatch idle) {
    if (stopping) {
      idle.countDown();
      return;
    }
    ClientCall<SimpleRequest, SimpleResponse> call =
        channel.newCall(method, CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS));
    long start = System.nanoTime();
    call.start(
        new ClientCall.Listener<>() {
          @Override
          public void onClose(Status status, Metadata trailers) {
            if (recording) {
              if (status.isOk()) {
                latencies.record((System.nanoTime() - start) / 1000);
              } else {
                errors.incrementAndGet();
              }
            }
            if (status.isOk()) {
              call(channel, idle);
            } else {
              // A call that fails at once (a target down) may end inside start(), on this
              // thread: starting the next one here would recurse until the stack overflows.
              ForkJoinPool.commonPool().execute(() -> call(channel, idle));
            }
          }
        },
        headers());
    call.request(1);
    call.sendMessage(request);
    call.halfClose();
  }

  /** What one run measured. */
  record Result(double callsPerSecond, long p50Micros, long p99Micros, long ok, long errors) {
    String line() {
      return String.format(
          Locale.ROOT,
          "calls/s=%.0f p50_ms=%.2f p99_ms=%.2f ok=%d errors=%d",
          callsPerSecond,
          p50Micros / 1000.0,
          p99Micros / 1000.0,
          ok,
          errors);
    }
  }
}
