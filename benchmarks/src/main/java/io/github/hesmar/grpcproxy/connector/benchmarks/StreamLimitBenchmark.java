package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.github.hesmar.grpcproxy.connector.benchmarks.StreamLimitTables.StreamResult;
import io.github.hesmar.grpcproxy.connector.benchmarks.StreamLimitTables.UnaryResult;
import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
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
 * defined in {@link StreamLimitBackend} with byte-array marshallers (no generated code): {@code
 * Delayed}, a unary method that answers after 20 ms (or the third number's milliseconds) through a
 * scheduled completion (no thread sleeps, so the backend can have any number of calls waiting), and
 * {@code Hold}, a server-streaming method that sends one message and then holds its stream open
 * until the program ends all streams. The backend counts the calls of both methods running at once.
 * Each case gets a backend of its own.
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
 *
 * <p>This class holds the command line and the order of the runs. The backend is {@link
 * StreamLimitBackend}; the three ways to it are {@link Route}s; {@link UnaryLoad} and {@link
 * HeldStreams} run the two workloads; {@link QueueCounter} and {@link QueueSampler} count and
 * sample the queued calls; {@link StreamLimitTables} prints the rows and tables.
 */
public final class StreamLimitBenchmark {

  /** The backend's limit of concurrent streams per HTTP/2 connection, unless --backend-limit. */
  static final int MAX_STREAMS_PER_CONNECTION = 100;

  static final String USAGE =
      "usage: StreamLimitBenchmark [--backend-limit N (100)] [--workload unary|streams|both]"
          + " [--arms a,b,c] [warm-up s (5)] [measured s (10)] [backend delay ms (20)]\n"
          + "  arms: a = shared channel, b = connector with 1 channel, c = connector with its"
          + " defaults;\n"
          + "  default: a,b,c for unary and a,c for streams";

  private StreamLimitBenchmark() {}

  /** One way to the backend: its letter on the command line, its name in the tables. */
  private record Arm(char letter, String name, Route.Factory routes) {}

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
          positional.size() > 2
              ? Long.parseLong(positional.get(2))
              : StreamLimitBackend.DEFAULT_DELAY_MILLIS);
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
        UnaryLoad.CONCURRENCY,
        warmUp.toSeconds(),
        measure.toSeconds());

    List<UnaryResult> unary = new ArrayList<>();
    if (options.unary() && !options.unaryArms().isEmpty()) {
      // A first round, not reported, so that the case run first does not pay for the JIT
      // compiling the gRPC, Netty and connector paths that all cases share (C2 works for about
      // half a minute on 2 cores, taking most of one).
      for (Arm arm : options.unaryArms()) {
        UnaryLoad.run(
            "JIT warm-up, " + arm.name(),
            arm.routes(),
            delayMillis,
            backendLimit,
            Duration.ZERO,
            warmUp.multipliedBy(2));
      }
      for (Arm arm : options.unaryArms()) {
        unary.add(
            UnaryLoad.run(arm.name(), arm.routes(), delayMillis, backendLimit, warmUp, measure));
      }
      StreamLimitTables.printUnary(unary);
    }

    if (options.streams() && !options.streamArms().isEmpty()) {
      List<StreamResult> streams = new ArrayList<>();
      for (Arm arm : options.streamArms()) {
        streams.add(HeldStreams.run(arm.name(), arm.routes(), backendLimit));
      }
      StreamLimitTables.printStreams(streams);
    }

    UnaryResult shared = find(unary, ARMS.get(0));
    UnaryResult pooled = find(unary, ARMS.get(2));
    if (shared != null && pooled != null) {
      StreamLimitTables.printGoal(shared, pooled, delayMillis);
    }
  }

  private static @Nullable UnaryResult find(List<UnaryResult> results, Arm arm) {
    return results.stream()
        .filter(result -> result.name().equals(arm.name()))
        .findFirst()
        .orElse(null);
  }
}
