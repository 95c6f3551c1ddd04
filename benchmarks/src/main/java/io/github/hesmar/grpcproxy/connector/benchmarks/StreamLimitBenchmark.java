package io.github.hesmar.grpcproxy.connector.benchmarks;

import com.sun.management.OperatingSystemMXBean;
import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

/**
 * The proof of issue 10 (several channels per address), a program that prints two tables, not a JMH
 * benchmark: what it measures is a closed loop of 1,000 calls in flight against a backend that
 * limits its streams, which JMH's one-operation-per-invocation model does not fit.
 *
 * <p>The backend is a loopback Netty server in the same JVM with {@code
 * maxConcurrentCallsPerConnection(100)}, as Google's front ends and many proxies have, and two
 * methods defined here with byte-array marshallers (no generated code): {@code Delayed}, a unary
 * method that answers after 20 ms (or the third argument's milliseconds) through a scheduled
 * completion (no thread sleeps, so the backend can have any number of calls waiting), and {@code
 * Hold}, a server-streaming method that sends one message and then holds its stream open until the
 * program ends all streams, counting the streams running at the backend. Each case gets a backend
 * of its own.
 *
 * <p>Three ways of getting a channel to the backend:
 *
 * <ul>
 *   <li>{@code shared channel}: one plain {@link ManagedChannel}, built once (pick_first: one
 *       HTTP/2 connection);
 *   <li>{@code connector, 1 channel}: a {@link CachingConnector} with {@code
 *       maxChannelsPerAddress(1)}, one channel per address as before issue 10;
 *   <li>{@code connector, defaults}: a {@link CachingConnector} with its defaults ({@code
 *       maxCallsPerChannel(100)}, {@code maxChannelsPerAddress(8)}).
 * </ul>
 *
 * Through the connector each call does what a proxy does: dial, {@code newCall} and {@code start}
 * on the lease, release the lease once the call has closed. All channels are plaintext, built by
 * {@link Dialer#plaintext()} (the shared channel is built the same way).
 *
 * <p>Unary: one driver thread keeps 1,000 calls in flight (a semaphore of 1,000 permits: a call
 * takes one before it starts, its close gives it back), for a warm-up (5 s by default) and then a
 * measurement (10 s by default), without a pause between them. Before the three cases, a round of
 * all three for two warm-ups each, not reported, lets the JIT compile the paths they share, so that
 * the case run first is not the one that pays for it. A call's latency runs from before its dial
 * (or {@code newCall}) to its close, by {@link System#nanoTime()}; calls per second are the calls
 * that closed during the measurement, divided by its length. The channel column is the connector's
 * {@link CachingConnector#connections()} at the end of the measurement, with the calls in flight on
 * each channel (calls queued inside grpc-java included); the CPU columns are the process's CPU time
 * during the measurement (client, backend and driver together), per second and per call.
 *
 * <p>Server streaming: 500 {@code Hold} streams opened by one thread, through the shared channel
 * and through the connector with its defaults; once the number of streams running at the backend
 * has reached 500 (and every stream got its message), or these numbers have not changed for a
 * second, it is reported with the channels the connector opened; then the backend ends every stream
 * (and ends at once the streams that start after), and the program waits for all 500 to close.
 *
 * <p>Client, backend and the driver share the machine's cores, so the throughput includes the
 * backend's work: on 2 cores the unary cases with several channels run out of CPU long before they
 * run out of streams. A longer delay (200 ms: 4,000 calls/s at most with 8 channels) shows the pool
 * where CPU does not limit it. The whole run takes about two minutes with the defaults.
 *
 * <pre>
 * ./mvnw -B package -pl benchmarks -am -DskipTests
 * java -Xms2g -Xmx2g -cp benchmarks/target/benchmarks.jar \
 *     io.github.hesmar.grpcproxy.connector.benchmarks.StreamLimitBenchmark \
 *     [warm-up s, 5] [measured s, 10] [backend delay ms, 20]
 * </pre>
 */
public final class StreamLimitBenchmark {

  /** The backend's limit of concurrent streams per HTTP/2 connection. */
  static final int MAX_STREAMS_PER_CONNECTION = 100;

  /** How long the backend takes to answer a unary call, unless the third argument says. */
  static final long DEFAULT_DELAY_MILLIS = 20;

  /** Unary calls kept in flight. */
  static final int UNARY_CONCURRENCY = 1_000;

  /** Server streams held open. */
  static final int STREAMS = 500;

  private static final String SERVICE = "bench.StreamLimit";
  private static final byte[] REQUEST = new byte[16];

  static final MethodDescriptor<byte[], byte[]> DELAYED =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "Delayed"))
          .setRequestMarshaller(BytesMarshaller.INSTANCE)
          .setResponseMarshaller(BytesMarshaller.INSTANCE)
          .build();

  static final MethodDescriptor<byte[], byte[]> HOLD =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.SERVER_STREAMING)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "Hold"))
          .setRequestMarshaller(BytesMarshaller.INSTANCE)
          .setResponseMarshaller(BytesMarshaller.INSTANCE)
          .build();

  /** The CPU time of this process: client, backend and driver. */
  private static final OperatingSystemMXBean PROCESS =
      (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

  private StreamLimitBenchmark() {}

  /**
   * Runs the unary and the server-streaming cases and prints their tables.
   *
   * @param args optionally, the warm-up and the measurement of each unary case, in seconds (default
   *     5 and 10), and the backend's delay in milliseconds (default 20)
   * @throws Exception if the backend cannot start or a case does not finish
   */
  public static void main(String[] args) throws Exception {
    Duration warmUp = Duration.ofSeconds(args.length > 0 ? Long.parseLong(args[0]) : 5);
    Duration measure = Duration.ofSeconds(args.length > 1 ? Long.parseLong(args[1]) : 10);
    long delayMillis = args.length > 2 ? Long.parseLong(args[2]) : DEFAULT_DELAY_MILLIS;
    System.out.printf(
        Locale.ROOT,
        "StreamLimitBenchmark: JDK %s, %d cores, backend: %d streams per connection, answers"
            + " after %d ms; unary: %,d calls in flight, %d s warm-up, %d s measured%n%n",
        Runtime.version(),
        Runtime.getRuntime().availableProcessors(),
        MAX_STREAMS_PER_CONNECTION,
        delayMillis,
        UNARY_CONCURRENCY,
        warmUp.toSeconds(),
        measure.toSeconds());

    List<String> names =
        List.of("(a) shared channel", "(b) connector, 1 channel", "(c) connector, defaults");
    List<RouteFactory> routes =
        List.of(
            SharedChannelRoute::new,
            target -> new ConnectorRoute(target, 1),
            target -> new ConnectorRoute(target, 0));
    // A first round, not reported, so that the case run first does not pay for the JIT compiling
    // the gRPC, Netty and connector paths that all three cases share (C2 works for about half a
    // minute on 2 cores, taking most of one).
    for (int i = 0; i < names.size(); i++) {
      runUnary(
          "JIT warm-up, " + names.get(i),
          routes.get(i),
          delayMillis,
          Duration.ZERO,
          warmUp.multipliedBy(2));
    }
    List<UnaryResult> unary = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) {
      unary.add(runUnary(names.get(i), routes.get(i), delayMillis, warmUp, measure));
    }
    System.out.println();
    System.out.println(
        "| unary, 1,000 in flight | calls/s | p50 ms | p99 ms | max ms | CPU: cores busy |"
            + " CPU µs per call | failed | channels: calls in flight on each |");
    System.out.println("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (UnaryResult result : unary) {
      System.out.println(result.row());
    }

    List<StreamResult> streams = new ArrayList<>();
    streams.add(runStreams(names.get(0), routes.get(0)));
    streams.add(runStreams(names.get(2), routes.get(2)));
    System.out.println();
    System.out.println(
        "| 500 server streams held | running at the backend | got their first message |"
            + " channels: streams on each | all closed after the end | failed |");
    System.out.println("| --- | --- | --- | --- | --- | --- |");
    for (StreamResult result : streams) {
      System.out.println(result.row());
    }

    UnaryResult shared = unary.get(0);
    UnaryResult pooled = unary.get(2);
    System.out.printf(
        Locale.ROOT,
        "%nGoal: (c) >= 5x the calls/s of (a): %.2fx; (c) p99 <= 3x %d ms = %d ms: %.1f ms%n",
        pooled.callsPerSecond / shared.callsPerSecond,
        delayMillis,
        3 * delayMillis,
        pooled.p99Millis);
  }

  private static UnaryResult runUnary(
      String name, RouteFactory routes, long delayMillis, Duration warmUp, Duration measure)
      throws Exception {
    try (Backend backend = Backend.start(delayMillis);
        Route route = routes.open(backend.target())) {
      UnaryLoad load =
          new UnaryLoad(route, (int) Math.max(1_000_000, measure.toSeconds() * 200_000));
      load.drive(System.nanoTime() + warmUp.toNanos());
      load.recording = true;
      long cpuStart = PROCESS.getProcessCpuTime();
      long start = System.nanoTime();
      load.drive(start + measure.toNanos());
      String channels = route.channels(UNARY_CONCURRENCY - load.permits.availablePermits());
      load.recording = false;
      long elapsed = System.nanoTime() - start;
      long cpu = PROCESS.getProcessCpuTime() - cpuStart;
      int count = Math.min(load.recorded.get(), load.latencies.length);
      if (!load.permits.tryAcquire(UNARY_CONCURRENCY, 60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + ": calls still in flight a minute after the end");
      }
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
              channels);
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

  private static StreamResult runStreams(String name, RouteFactory routes) throws Exception {
    try (Backend backend = Backend.start(DEFAULT_DELAY_MILLIS);
        Route route = routes.open(backend.target())) {
      AtomicInteger firstMessages = new AtomicInteger();
      AtomicInteger failed = new AtomicInteger();
      CountDownLatch closed = new CountDownLatch(STREAMS);
      for (int i = 0; i < STREAMS; i++) {
        StreamObserver<byte[]> observer =
            new StreamObserver<>() {
              private boolean first = true;

              @Override
              public void onNext(byte[] value) {
                if (first) {
                  first = false;
                  firstMessages.incrementAndGet();
                }
              }

              @Override
              public void onError(Throwable t) {
                failed.incrementAndGet();
                closed.countDown();
              }

              @Override
              public void onCompleted() {
                closed.countDown();
              }
            };
        try {
          route.call(HOLD, ClientCalls::asyncServerStreamingCall, observer);
        } catch (RuntimeException e) {
          failed.incrementAndGet();
          closed.countDown();
        }
      }
      // Until every stream runs at the backend and has its first message at the client, or both
      // numbers stopped moving for a second.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      int running = backend.running();
      int first = firstMessages.get();
      long since = System.nanoTime();
      while ((running < STREAMS || first < STREAMS)
          && System.nanoTime() - since < TimeUnit.SECONDS.toNanos(1)
          && System.nanoTime() - deadline < 0) {
        Thread.sleep(20);
        int runningNow = backend.running();
        int firstNow = firstMessages.get();
        if (runningNow != running || firstNow != first) {
          running = runningNow;
          first = firstNow;
          since = System.nanoTime();
        }
      }
      String channels = route.channels((int) closed.getCount());
      long ending = System.nanoTime();
      backend.endStreams();
      if (!closed.await(60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + ": streams still open a minute after their end");
      }
      StreamResult result =
          new StreamResult(
              name,
              running,
              backend.maxRunning.get(),
              first,
              channels,
              (System.nanoTime() - ending) / 1e6,
              failed.get());
      System.out.println("# " + result.row());
      return result;
    }
  }

  private record UnaryResult(
      String name,
      double callsPerSecond,
      double p50Millis,
      double p99Millis,
      double maxMillis,
      double coresBusy,
      double cpuMicrosPerCall,
      int failed,
      String channels) {

    String row() {
      return String.format(
          Locale.ROOT,
          "| %s | %,.0f | %.1f | %.1f | %.1f | %.2f | %.0f | %d | %s |",
          name,
          callsPerSecond,
          p50Millis,
          p99Millis,
          maxMillis,
          coresBusy,
          cpuMicrosPerCall,
          failed,
          channels);
    }
  }

  private record StreamResult(
      String name,
      int running,
      int maxRunning,
      int firstMessages,
      String channels,
      double closedAfterMillis,
      int failed) {

    String row() {
      return String.format(
          Locale.ROOT,
          "| %s | %d (most at once: %d) | %d | %s | %.0f ms | %d |",
          name,
          running,
          maxRunning,
          firstMessages,
          channels,
          closedAfterMillis,
          failed);
    }
  }

  /** Keeps {@link #UNARY_CONCURRENCY} unary calls in flight and records their latencies. */
  private static final class UnaryLoad {

    final Route route;
    final Semaphore permits = new Semaphore(UNARY_CONCURRENCY);
    final AtomicInteger failed = new AtomicInteger();

    /** Latencies of the calls closed while {@link #recording}, in nanoseconds. */
    final long[] latencies;

    final AtomicInteger recorded = new AtomicInteger();
    volatile boolean recording;

    UnaryLoad(Route route, int capacity) {
      this.route = route;
      this.latencies = new long[capacity];
    }

    /** Starts a call whenever one of the calls in flight closes, until {@code deadline}. */
    void drive(long deadline) throws InterruptedException {
      while (System.nanoTime() - deadline < 0) {
        if (!permits.tryAcquire(1, TimeUnit.MILLISECONDS)) {
          continue;
        }
        long start = System.nanoTime();
        try {
          route.call(DELAYED, ClientCalls::asyncUnaryCall, new Observer(start));
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

  /** {@code ClientCalls::asyncUnaryCall} or {@code ClientCalls::asyncServerStreamingCall}. */
  @FunctionalInterface
  private interface Invoker {
    void invoke(ClientCall<byte[], byte[]> call, byte[] request, StreamObserver<byte[]> observer);
  }

  @FunctionalInterface
  private interface RouteFactory {
    Route open(String target);
  }

  /** A way of getting a channel to the backend for each call. */
  private interface Route extends AutoCloseable {

    /** Starts a call of {@code method} with {@link #REQUEST}. */
    void call(
        MethodDescriptor<byte[], byte[]> method, Invoker invoker, StreamObserver<byte[]> observer);

    /** The channels now, each with its calls in flight ({@code inFlight}: the caller's count). */
    String channels(int inFlight);

    @Override
    void close();
  }

  /** One channel, built once, shared by all calls. */
  private static final class SharedChannelRoute implements Route {

    private final ManagedChannel channel;

    SharedChannelRoute(String target) {
      channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    }

    @Override
    public void call(
        MethodDescriptor<byte[], byte[]> method, Invoker invoker, StreamObserver<byte[]> observer) {
      invoker.invoke(channel.newCall(method, CallOptions.DEFAULT), REQUEST, observer);
    }

    @Override
    public String channels(int inFlight) {
      return "1: " + inFlight;
    }

    @Override
    public void close() {
      try {
        channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** A lease per call from a connector, released once the call has closed, as a proxy does. */
  private static final class ConnectorRoute implements Route {

    private final String target;
    private final CachingConnector connector;

    /** {@code maxChannels} 0: the connector's default. */
    ConnectorRoute(String target, int maxChannels) {
      this.target = target;
      CachingConnector.Builder builder =
          CachingConnector.builder()
              .dialer(Dialer.plaintext())
              .shutdownGracePeriod(Duration.ofSeconds(5));
      if (maxChannels > 0) {
        builder.maxChannelsPerAddress(maxChannels);
      }
      connector = builder.build();
    }

    @Override
    public void call(
        MethodDescriptor<byte[], byte[]> method, Invoker invoker, StreamObserver<byte[]> observer) {
      LeasedChannel lease = connector.dial(target);
      try {
        invoker.invoke(
            lease.newCall(method, CallOptions.DEFAULT), REQUEST, new Releasing(lease, observer));
      } catch (RuntimeException | Error e) {
        lease.close();
        throw e;
      }
    }

    @Override
    public String channels(int inFlight) {
      List<ConnectionInfo> connections = new ArrayList<>(connector.connections());
      connections.sort(Comparator.comparingLong(ConnectionInfo::id));
      return connections.size()
          + ": "
          + connections.stream()
              .map(info -> Integer.toString(info.calls()))
              .collect(Collectors.joining(", "));
    }

    @Override
    public void close() {
      connector.close();
    }
  }

  /** Releases its lease when its call closes, then passes the close on. */
  private static final class Releasing implements StreamObserver<byte[]> {

    private final LeasedChannel lease;
    private final StreamObserver<byte[]> delegate;

    Releasing(LeasedChannel lease, StreamObserver<byte[]> delegate) {
      this.lease = lease;
      this.delegate = delegate;
    }

    @Override
    public void onNext(byte[] value) {
      delegate.onNext(value);
    }

    @Override
    public void onError(Throwable t) {
      lease.close();
      delegate.onError(t);
    }

    @Override
    public void onCompleted() {
      lease.close();
      delegate.onCompleted();
    }
  }

  /** The loopback backend: 100 streams per connection, {@code Delayed} and {@code Hold}. */
  private static final class Backend implements AutoCloseable {

    /** How long {@code Delayed} takes to answer. */
    private final long delayMillis;

    private final ScheduledExecutorService scheduler;
    private final Server server;

    /** The {@code Hold} streams running: started, not yet ended or cancelled. */
    private final Set<ServerCallStreamObserver<byte[]>> held = ConcurrentHashMap.newKeySet();

    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger maxRunning = new AtomicInteger();
    private volatile boolean ending;

    private Backend(long delayMillis) throws IOException {
      this.delayMillis = delayMillis;
      scheduler =
          Executors.newScheduledThreadPool(
              1,
              task -> {
                Thread thread = new Thread(task, "backend-delay");
                thread.setDaemon(true);
                return thread;
              });
      ServerServiceDefinition service =
          ServerServiceDefinition.builder(SERVICE)
              .addMethod(DELAYED, ServerCalls.asyncUnaryCall(this::delayed))
              .addMethod(HOLD, ServerCalls.asyncServerStreamingCall(this::hold))
              .build();
      server =
          NettyServerBuilder.forPort(0, InsecureServerCredentials.create())
              .maxConcurrentCallsPerConnection(MAX_STREAMS_PER_CONNECTION)
              // The handlers never block: they run on the event loops, so the backend costs the
              // least CPU it can, which the client sharing the cores gets.
              .directExecutor()
              .addService(service)
              .build()
              .start();
    }

    static Backend start(long delayMillis) throws IOException {
      return new Backend(delayMillis);
    }

    String target() {
      return "localhost:" + server.getPort();
    }

    int running() {
      return running.get();
    }

    @SuppressWarnings("FutureReturnValueIgnored") // the task completes the call; nothing to await
    private void delayed(byte[] request, StreamObserver<byte[]> observer) {
      scheduler.schedule(
          () -> {
            observer.onNext(request);
            observer.onCompleted();
          },
          delayMillis,
          TimeUnit.MILLISECONDS);
    }

    private void hold(byte[] request, StreamObserver<byte[]> observer) {
      ServerCallStreamObserver<byte[]> stream = (ServerCallStreamObserver<byte[]>) observer;
      stream.setOnCancelHandler(() -> forget(stream));
      stream.onNext(request);
      held.add(stream);
      maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
      if (ending) { // read after the add: endStreams() either sees this stream or it sees ending
        end(stream);
      }
    }

    /** Ends every held stream, and from now on every stream once it has sent its message. */
    void endStreams() {
      ending = true;
      for (ServerCallStreamObserver<byte[]> stream : held) {
        end(stream);
      }
    }

    private void end(ServerCallStreamObserver<byte[]> stream) {
      if (forget(stream)) {
        stream.onCompleted();
      }
    }

    private boolean forget(ServerCallStreamObserver<byte[]> stream) {
      if (held.remove(stream)) {
        running.decrementAndGet();
        return true;
      }
      return false;
    }

    @Override
    public void close() {
      scheduler.shutdownNow();
      try {
        server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
