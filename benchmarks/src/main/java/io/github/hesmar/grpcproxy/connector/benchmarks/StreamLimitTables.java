package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.benchmarks.QueueSampler.Queued;
import java.util.List;
import java.util.Locale;

/**
 * The output of {@link StreamLimitBenchmark}: a result per case, its row, the two Markdown tables
 * and the goal line.
 */
final class StreamLimitTables {

  private StreamLimitTables() {}

  /** A unary case's row. */
  record UnaryResult(
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
          connectorColumn(queuedMost, queuedAtEnd, queuedAfter),
          tracerColumn(queuedMost, queuedAtEnd, queuedAfter),
          limits);
    }
  }

  /** A server-streaming case's row. */
  record StreamResult(
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
          connectorColumn(queuedMost, queuedAtEnd, queuedAfter),
          tracerColumn(queuedMost, queuedAtEnd, queuedAfter),
          limits);
    }
  }

  static void printUnary(List<UnaryResult> results) {
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
    for (UnaryResult result : results) {
      System.out.println(result.row());
    }
  }

  static void printStreams(List<StreamResult> results) {
    System.out.println();
    System.out.println(
        "| 500 server streams held | running at the backend | got their first message |"
            + " channels: streams on each | all closed after the end | failed |"
            + " queued, connector: most / at the end / after all closed |"
            + " queued, own tracer: most / at the end / after all closed |"
            + " channels: queued / limit on each |");
    System.out.println("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (StreamResult result : results) {
      System.out.println(result.row());
    }
  }

  /** The goal line: the calls/s of (c) against (a), and the p99 of (c) against the delay. */
  static void printGoal(UnaryResult shared, UnaryResult pooled, long delayMillis) {
    System.out.printf(
        Locale.ROOT,
        "%nGoal: (c) >= 5x the calls/s of (a): %.2fx; (c) p99 <= 3x %d ms = %d ms: %.1f ms%n",
        pooled.callsPerSecond() / shared.callsPerSecond(),
        delayMillis,
        3 * delayMillis,
        pooled.p99Millis());
  }

  private static String connectorColumn(Queued most, Queued atEnd, Queued after) {
    if (most.connector() < 0) {
      return "n/a";
    }
    return most.connector() + " / " + atEnd.connector() + " / " + after.connector();
  }

  private static String tracerColumn(Queued most, Queued atEnd, Queued after) {
    return most.tracer() + " / " + atEnd.tracer() + " / " + after.tracer();
  }
}
