package io.github.hesmar.grpcproxy.connector.benchmarks;

import com.sun.management.OperatingSystemMXBean;
import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ClientStreamTracer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
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
import java.util.LinkedHashSet;
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
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import org.jspecify.annotations.Nullable;

/**
 * The proof of issue 10 (several channels per address), a program that prints two tables, not a JMH
 * benchmark: what it measures is a closed loop of 1,000 calls in flight against a backend that
 * limits its streams, which JMH's one-operation-per-invocation model does not fit.
 *
 * <p>The backend is a loopback Netty server in the same JVM with {@code
 * maxConcurrentCallsPerConnection(100)}, as Google's front ends and many proxies have ({@code
 * --backend-limit 10}: 10, a backend stricter than the connector's {@code maxCallsPerChannel(100)},
 * whose limit the connector has to learn from the calls that queue, issue 22), and two methods
 * defined here with byte-array marshallers (no generated code): {@code Delayed}, a unary method
 * that answers after 20 ms (or the third number's milliseconds) through a scheduled completion (no
 * thread sleeps, so the backend can have any number of calls waiting), and {@code Hold}, a
 * server-streaming method that sends one message and then holds its stream open until the program
 * ends all streams. The backend counts the calls of both methods running at once. Each case gets a
 * backend of its own.
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
 * measurement (10 s by default), without a pause between them. Before the cases, a round of all of
 * them for two warm-ups each, not reported, lets the JIT compile the paths they share, so that the
 * case run first is not the one that pays for it. A call's latency runs from before its dial (or
 * {@code newCall}) to its close, by {@link System#nanoTime()}; calls per second are the calls that
 * closed during the measurement, divided by its length. The channel column is the connector's
 * {@link CachingConnector#connections()} at the end of the measurement, with the calls in flight on
 * each channel (calls queued inside grpc-java included); the CPU columns are the process's CPU time
 * during the measurement (client, backend and driver together), per second and per call.
 *
 * <p>Server streaming: 500 {@code Hold} streams opened by one thread, through the shared channel
 * and through the connector with its defaults; once the number of streams running at the backend
 * has reached 500 (and every stream got its message), or these numbers have not changed for a
 * second since a stream first ran, it is reported with the channels the connector opened; then the
 * backend ends every stream (and ends at once the streams that start after), and the program waits
 * for all 500 to close.
 *
 * <p>Streams and queueing (issue 22), in both tables: the calls running at the backend (most at
 * once, and at the end: of the measurement, or when the held streams are reported); the calls
 * queued, whose headers wait in the client's transport behind the connection's limit, as the
 * connector counts them ({@link CachingConnector#queuedCallCount()}; n/a for the shared channel)
 * and as a stream tracer of this program counts them on every call of every case (the same
 * definition: created, headers not yet written nor the stream closed), each sampled every 10 ms
 * during the measurement: the most seen, the count at its end, and the count once every call has
 * closed (0 unless a count leaks); and for the connector, each channel's queued calls and limit
 * ({@link ConnectionInfo#queued()}, {@link ConnectionInfo#limit()}: the configured 100, or the load
 * it learned) at the end.
 *
 * <p>Client, backend and the driver share the machine's cores, so the throughput includes the
 * backend's work: on 2 cores the unary cases with several channels run out of CPU long before they
 * run out of streams. A longer delay (200 ms: 4,000 calls/s at most with 8 channels) shows the pool
 * where CPU does not limit it. The whole run takes about two minutes with the defaults; {@code
 * --workload} and {@code --arms} run a part of it (the JIT round then runs the selected cases
 * only).
 *
 * <pre>
 * ./mvnw -B package -pl benchmarks -am -DskipTests
 * java -Xms2g -Xmx2g -cp benchmarks/target/benchmarks.jar \
 *     io.github.hesmar.grpcproxy.connector.benchmarks.StreamLimitBenchmark \
 *     [--backend-limit 100] [--workload unary|streams|both] [--arms a,b,c] \
 *     [warm-up s, 5] [measured s, 10] [backend delay ms, 20]
 * </pre>
 *
 * {@code --arms} defaults to all three for the unary case and to (a) and (c) for the streams; when
 * given, both workloads run the arms it names.
 */
public final class StreamLimitBenchmark {

  /** The backend's limit of concurrent streams per HTTP/2 connection, unless --backend-limit. */
  static final int MAX_STREAMS_PER_CONNECTION = 100;

  /** How long the backend takes to answer a unary call, unless the third number says. */
  static final long DEFAULT_DELAY_MILLIS = 20;

  /** Unary calls kept in flight. */
  static final int UNARY_CONCURRENCY = 1_000;

  /** Server streams held open. */
  static final int STREAMS = 500;

  /** How often the queued calls are sampled. */
  static final long SAMPLE_MILLIS = 10;

  static final String USAGE =
      "usage: StreamLimitBenchmark [--backend-limit N (100)] [--workload unary|streams|both]"
          + " [--arms a,b,c] [warm-up s (5)] [measured s (10)] [backend delay ms (20)]\n"
          + "  arms: a = shared channel, b = connector with 1 channel, c = connector with its"
          + " defaults;\n"
          + "  default: a,b,c for unary and a,c for streams";

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

  /** One way to the backend: its letter on the command line, its name in the tables. */
  private record Arm(char letter, String name, RouteFactory routes) {}

  private static final List<Arm> ARMS =
      List.of(
          new Arm('a', "(a) shared channel", SharedChannelRoute::new),
          new Arm('b', "(b) connector, 1 channel", target -> new ConnectorRoute(target, 1)),
          new Arm('c', "(c) connector, defaults", target -> new ConnectorRoute(target, 0)));

  /** The command line. */
  private record Options(
      int backendLimit,
      boolean unary,
      boolean streams,
      List<Arm> unaryArms,
      List<Arm> streamArms,
      Duration warmUp,
      Duration measure,
      long delayMillis) {

    static Options parse(String[] args) {
      int backendLimit = MAX_STREAMS_PER_CONNECTION;
      String workload = "both";
      String arms = null;
      List<String> positional = new ArrayList<>();
      for (int i = 0; i < args.length; i++) {
        String arg = args[i];
        if (!arg.startsWith("--")) {
          positional.add(arg);
          continue;
        }
        String name = arg;
        String value;
        int equals = arg.indexOf('=');
        if (equals >= 0) {
          name = arg.substring(0, equals);
          value = arg.substring(equals + 1);
        } else if (i + 1 < args.length) {
          value = args[++i];
        } else {
          throw new IllegalArgumentException(arg + " needs a value");
        }
        switch (name) {
          case "--backend-limit" -> backendLimit = Integer.parseInt(value);
          case "--workload" -> workload = value;
          case "--arms" -> arms = value;
          default -> throw new IllegalArgumentException("unknown option " + name);
        }
      }
      if (backendLimit < 1) {
        throw new IllegalArgumentException("--backend-limit must be at least 1");
      }
      if (!Set.of("unary", "streams", "both").contains(workload)) {
        throw new IllegalArgumentException("--workload is unary, streams or both: " + workload);
      }
      if (positional.size() > 3) {
        throw new IllegalArgumentException("at most three numbers: " + positional);
      }
      List<Arm> unaryArms = ARMS;
      List<Arm> streamArms = List.of(ARMS.get(0), ARMS.get(2));
      if (arms != null) {
        Set<Character> letters = new LinkedHashSet<>();
        for (String letter : arms.split(",", -1)) {
          String trimmed = letter.trim();
          if (trimmed.length() != 1 || "abc".indexOf(trimmed.charAt(0)) < 0) {
            throw new IllegalArgumentException("--arms lists a, b and c: " + arms);
          }
          letters.add(trimmed.charAt(0));
        }
        unaryArms = ARMS.stream().filter(arm -> letters.contains(arm.letter())).toList();
        streamArms = unaryArms;
      }
      return new Options(
          backendLimit,
          !workload.equals("streams"),
          !workload.equals("unary"),
          unaryArms,
          streamArms,
          Duration.ofSeconds(positional.size() > 0 ? Long.parseLong(positional.get(0)) : 5),
          Duration.ofSeconds(positional.size() > 1 ? Long.parseLong(positional.get(1)) : 10),
          positional.size() > 2 ? Long.parseLong(positional.get(2)) : DEFAULT_DELAY_MILLIS);
    }
  }

  /**
   * Runs the unary and the server-streaming cases and prints their tables.
   *
   * @param args optionally {@code --backend-limit N} (the backend's streams per connection, default
   *     100), {@code --workload unary|streams|both} (default both), {@code --arms a,b,c} (the cases
   *     to run), then the warm-up and the measurement of each unary case, in seconds (default 5 and
   *     10), and the backend's delay in milliseconds (default 20)
   * @throws Exception if the backend cannot start or a case does not finish
   */
  public static void main(String[] args) throws Exception {
    Options options;
    try {
      if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
        System.out.println(USAGE);
        return;
      }
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("StreamLimitBenchmark: " + e.getMessage());
      System.err.println(USAGE);
      System.exit(2);
      return;
    }
    Duration warmUp = options.warmUp();
    Duration measure = options.measure();
    long delayMillis = options.delayMillis();
    int backendLimit = options.backendLimit();
    System.out.printf(
        Locale.ROOT,
        "StreamLimitBenchmark: JDK %s, %d cores, backend: %d streams per connection, answers"
            + " after %d ms; unary: %,d calls in flight, %d s warm-up, %d s measured%n%n",
        Runtime.version(),
        Runtime.getRuntime().availableProcessors(),
        backendLimit,
        delayMillis,
        UNARY_CONCURRENCY,
        warmUp.toSeconds(),
        measure.toSeconds());

    List<UnaryResult> unary = new ArrayList<>();
    if (options.unary() && !options.unaryArms().isEmpty()) {
      // A first round, not reported, so that the case run first does not pay for the JIT
      // compiling the gRPC, Netty and connector paths that all cases share (C2 works for about
      // half a minute on 2 cores, taking most of one).
      for (Arm arm : options.unaryArms()) {
        runUnary(
            "JIT warm-up, " + arm.name(),
            arm.routes(),
            delayMillis,
            backendLimit,
            Duration.ZERO,
            warmUp.multipliedBy(2));
      }
      for (Arm arm : options.unaryArms()) {
        unary.add(runUnary(arm.name(), arm.routes(), delayMillis, backendLimit, warmUp, measure));
      }
      System.out.println();
      System.out.println(
          "| unary, 1,000 in flight | calls/s | p50 ms | p99 ms | max ms | CPU: cores busy |"
              + " CPU µs per call | failed | channels: calls in flight on each |"
              + " running at the backend: most at once / at the end |"
              + " queued, connector: most / at the end / after all closed |"
              + " queued, own tracer: most / at the end / after all closed |"
              + " channels: queued / limit on each |");
      System.out.println(
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
      for (UnaryResult result : unary) {
        System.out.println(result.row());
      }
    }

    if (options.streams() && !options.streamArms().isEmpty()) {
      List<StreamResult> streams = new ArrayList<>();
      for (Arm arm : options.streamArms()) {
        streams.add(runStreams(arm.name(), arm.routes(), backendLimit));
      }
      System.out.println();
      System.out.println(
          "| 500 server streams held | running at the backend | got their first message |"
              + " channels: streams on each | all closed after the end | failed |"
              + " queued, connector: most / at the end / after all closed |"
              + " queued, own tracer: most / at the end / after all closed |"
              + " channels: queued / limit on each |");
      System.out.println("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
      for (StreamResult result : streams) {
        System.out.println(result.row());
      }
    }

    UnaryResult shared = find(unary, ARMS.get(0));
    UnaryResult pooled = find(unary, ARMS.get(2));
    if (shared != null && pooled != null) {
      System.out.printf(
          Locale.ROOT,
          "%nGoal: (c) >= 5x the calls/s of (a): %.2fx; (c) p99 <= 3x %d ms = %d ms: %.1f ms%n",
          pooled.callsPerSecond / shared.callsPerSecond,
          delayMillis,
          3 * delayMillis,
          pooled.p99Millis);
    }
  }

  private static @Nullable UnaryResult find(List<UnaryResult> results, Arm arm) {
    return results.stream()
        .filter(result -> result.name().equals(arm.name()))
        .findFirst()
        .orElse(null);
  }

  private static UnaryResult runUnary(
      String name,
      RouteFactory routes,
      long delayMillis,
      int backendLimit,
      Duration warmUp,
      Duration measure)
      throws Exception {
    try (Backend backend = Backend.start(delayMillis, backendLimit);
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
      String channels = route.channels(UNARY_CONCURRENCY - load.permits.availablePermits());
      Queued queuedEnd = sampler.stop();
      int runningEnd = backend.running();
      int maxRunning = backend.maxRunning.get();
      String limits = route.limits();
      load.recording = false;
      long elapsed = System.nanoTime() - start;
      long cpu = PROCESS.getProcessCpuTime() - cpuStart;
      int count = Math.min(load.recorded.get(), load.latencies.length);
      if (!load.permits.tryAcquire(UNARY_CONCURRENCY, 60, TimeUnit.SECONDS)) {
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

  private static StreamResult runStreams(String name, RouteFactory routes, int backendLimit)
      throws Exception {
    try (Backend backend = Backend.start(DEFAULT_DELAY_MILLIS, backendLimit);
        Route route = routes.open(backend.target());
        QueueSampler sampler = new QueueSampler(route)) {
      sampler.start();
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
      // numbers stopped moving for a second once a stream runs (a channel may still be connecting
      // in a cold JVM: --workload streams), or 20 s.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      int running = backend.running();
      int first = firstMessages.get();
      long since = System.nanoTime();
      while ((running < STREAMS || first < STREAMS)
          && (running == 0 || System.nanoTime() - since < TimeUnit.SECONDS.toNanos(1))
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
      Queued queuedEnd = sampler.stop();
      String limits = route.limits();
      long ending = System.nanoTime();
      backend.endStreams();
      if (!closed.await(60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + ": streams still open a minute after their end");
      }
      double closedAfterMillis = (System.nanoTime() - ending) / 1e6;
      Queued queuedAfter = sampler.sample();
      StreamResult result =
          new StreamResult(
              name,
              running,
              backend.maxRunning.get(),
              first,
              channels,
              closedAfterMillis,
              failed.get(),
              sampler.max(),
              queuedEnd,
              queuedAfter,
              limits);
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
      String channels,
      int maxRunning,
      int runningAtEnd,
      Queued queuedMost,
      Queued queuedAtEnd,
      Queued queuedAfter,
      String limits) {

    String row() {
      return String.format(
          Locale.ROOT,
          "| %s | %,.0f | %.1f | %.1f | %.1f | %.2f | %.0f | %d | %s | %d / %d | %s | %s | %s |",
          name,
          callsPerSecond,
          p50Millis,
          p99Millis,
          maxMillis,
          coresBusy,
          cpuMicrosPerCall,
          failed,
          channels,
          maxRunning,
          runningAtEnd,
          Queued.connectorColumn(queuedMost, queuedAtEnd, queuedAfter),
          Queued.tracerColumn(queuedMost, queuedAtEnd, queuedAfter),
          limits);
    }
  }

  private record StreamResult(
      String name,
      int running,
      int maxRunning,
      int firstMessages,
      String channels,
      double closedAfterMillis,
      int failed,
      Queued queuedMost,
      Queued queuedAtEnd,
      Queued queuedAfter,
      String limits) {

    String row() {
      return String.format(
          Locale.ROOT,
          "| %s | %d (most at once: %d) | %d | %s | %.0f ms | %d | %s | %s | %s |",
          name,
          running,
          maxRunning,
          firstMessages,
          channels,
          closedAfterMillis,
          failed,
          Queued.connectorColumn(queuedMost, queuedAtEnd, queuedAfter),
          Queued.tracerColumn(queuedMost, queuedAtEnd, queuedAfter),
          limits);
    }
  }

  /**
   * Calls queued at one moment (or the most seen): as the connector counts them ({@code -1}: no
   * connector), and as this program's stream tracer counts them.
   */
  private record Queued(int connector, long tracer) {

    static final Queued NONE = new Queued(-1, 0);

    Queued max(Queued other) {
      return new Queued(Math.max(connector, other.connector), Math.max(tracer, other.tracer));
    }

    static String connectorColumn(Queued most, Queued atEnd, Queued after) {
      if (most.connector < 0) {
        return "n/a";
      }
      return most.connector + " / " + atEnd.connector + " / " + after.connector;
    }

    static String tracerColumn(Queued most, Queued atEnd, Queued after) {
      return most.tracer + " / " + atEnd.tracer + " / " + after.tracer;
    }
  }

  /**
   * Samples a route's queued calls every {@link #SAMPLE_MILLIS} between {@link #start()} and {@link
   * #stop()}, on a thread of its own, keeping the most seen.
   */
  private static final class QueueSampler implements AutoCloseable {

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

  /**
   * Counts the streams whose headers wait in their transport, as the connector's own tracer does:
   * created ({@code streamCreated}), headers not yet written ({@code outboundHeaders}) nor the
   * stream closed before. Added to every call of every case.
   */
  private static final class QueueCounter extends ClientStreamTracer.Factory {

    private final AtomicLong created = new AtomicLong();
    private final AtomicLong sent = new AtomicLong();

    @Override
    public ClientStreamTracer newClientStreamTracer(
        ClientStreamTracer.StreamInfo info, Metadata headers) {
      return new Tracer(this);
    }

    /** The streams waiting now. */
    long queued() {
      long sentNow = sent.get(); // first: created, read second, is never below it
      return created.get() - sentNow;
    }

    private static final class Tracer extends ClientStreamTracer {

      private static final AtomicIntegerFieldUpdater<Tracer> STATE =
          AtomicIntegerFieldUpdater.newUpdater(Tracer.class, "state");
      private static final int NEW = 0;
      private static final int WAITING = 1;
      private static final int DONE = 2;

      private final QueueCounter counter;
      private volatile int state = NEW;

      Tracer(QueueCounter counter) {
        this.counter = counter;
      }

      @Override
      public void streamCreated(Attributes transportAttrs, Metadata headers) {
        counter.created.incrementAndGet();
        state = WAITING;
      }

      @Override
      public void outboundHeaders() {
        done();
      }

      @Override
      public void streamClosed(Status status) {
        done();
      }

      private void done() {
        if (STATE.compareAndSet(this, WAITING, DONE)) {
          counter.sent.incrementAndGet();
        }
      }
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

    /** The channels now, each with its queued calls and its limit; n/a without a connector. */
    String limits();

    /** The calls queued now as the connector counts them; -1 without a connector. */
    int connectorQueued();

    /** The calls queued now as this program's tracer counts them. */
    long tracerQueued();

    @Override
    void close();
  }

  /** One channel, built once, shared by all calls. */
  private static final class SharedChannelRoute implements Route {

    private final ManagedChannel channel;
    private final QueueCounter queue = new QueueCounter();
    private final CallOptions options = CallOptions.DEFAULT.withStreamTracerFactory(queue);

    SharedChannelRoute(String target) {
      channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    }

    @Override
    public void call(
        MethodDescriptor<byte[], byte[]> method, Invoker invoker, StreamObserver<byte[]> observer) {
      invoker.invoke(channel.newCall(method, options), REQUEST, observer);
    }

    @Override
    public String channels(int inFlight) {
      return "1: " + inFlight;
    }

    @Override
    public String limits() {
      return "n/a";
    }

    @Override
    public int connectorQueued() {
      return -1;
    }

    @Override
    public long tracerQueued() {
      return queue.queued();
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
    private final QueueCounter queue = new QueueCounter();
    private final CallOptions options = CallOptions.DEFAULT.withStreamTracerFactory(queue);

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
        invoker.invoke(lease.newCall(method, options), REQUEST, new Releasing(lease, observer));
      } catch (RuntimeException | Error e) {
        lease.close();
        throw e;
      }
    }

    @Override
    public String channels(int inFlight) {
      List<ConnectionInfo> connections = connections();
      return connections.size()
          + ": "
          + connections.stream()
              .map(info -> Integer.toString(info.calls()))
              .collect(Collectors.joining(", "));
    }

    @Override
    public String limits() {
      List<ConnectionInfo> connections = connections();
      return connections.size()
          + ": "
          + connections.stream()
              .map(info -> info.queued() + " / " + info.limit())
              .collect(Collectors.joining(", "));
    }

    private List<ConnectionInfo> connections() {
      List<ConnectionInfo> connections = new ArrayList<>(connector.connections());
      connections.sort(Comparator.comparingLong(ConnectionInfo::id));
      return connections;
    }

    @Override
    public int connectorQueued() {
      return connector.queuedCallCount();
    }

    @Override
    public long tracerQueued() {
      return queue.queued();
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

  /**
   * The loopback backend: 100 (or --backend-limit) streams per connection, {@code Delayed} and
   * {@code Hold}.
   */
  private static final class Backend implements AutoCloseable {

    /** How long {@code Delayed} takes to answer. */
    private final long delayMillis;

    private final ScheduledExecutorService scheduler;
    private final Server server;

    /** The {@code Hold} streams running: started, not yet ended or cancelled. */
    private final Set<ServerCallStreamObserver<byte[]>> held = ConcurrentHashMap.newKeySet();

    /** Calls running: {@code Delayed} calls not yet answered, {@code Hold} streams held. */
    final AtomicInteger running = new AtomicInteger();

    /** The most calls running at once, since the start or {@link #resetMaxRunning()}. */
    final AtomicInteger maxRunning = new AtomicInteger();

    private volatile boolean ending;

    private Backend(long delayMillis, int maxStreams) throws IOException {
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
              .maxConcurrentCallsPerConnection(maxStreams)
              // The handlers never block: they run on the event loops, so the backend costs the
              // least CPU it can, which the client sharing the cores gets.
              .directExecutor()
              .addService(service)
              .build()
              .start();
    }

    static Backend start(long delayMillis, int maxStreams) throws IOException {
      return new Backend(delayMillis, maxStreams);
    }

    String target() {
      return "localhost:" + server.getPort();
    }

    int running() {
      return running.get();
    }

    /** Starts counting the most calls running at once from the calls running now. */
    void resetMaxRunning() {
      maxRunning.set(running.get());
    }

    @SuppressWarnings("FutureReturnValueIgnored") // the task completes the call; nothing to await
    private void delayed(byte[] request, StreamObserver<byte[]> observer) {
      maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
      scheduler.schedule(
          () -> {
            running.decrementAndGet();
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
