package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import java.net.ConnectException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class BackendFailuresTest {

  static final long INTERVAL = TimeUnit.SECONDS.toNanos(BackendFailures.LOG_INTERVAL_SECONDS);

  /** A route name of this test's own: the log throttle is per route, for all proxies. */
  final String route = "failures-" + System.nanoTime();

  final Status refused =
      Status.UNAVAILABLE
          .withDescription("io exception")
          .withCause(new ConnectException("Connection refused"));

  @Test
  void theFirstFailureOfARouteGetsALine() {
    BackendFailures.LogThrottle throttle = new BackendFailures.LogThrottle(() -> 42);

    assertThat(throttle.failed()).isEqualTo(1);
  }

  @Test
  void failuresWithinTheIntervalGetNoLineAndAreCountedInTheNextOne() {
    AtomicLong clock = new AtomicLong(42);
    BackendFailures.LogThrottle throttle = new BackendFailures.LogThrottle(clock::get);
    assertThat(throttle.failed()).isEqualTo(1);

    clock.addAndGet(1);
    assertThat(throttle.failed()).isZero();
    clock.addAndGet(INTERVAL - 2);
    assertThat(throttle.failed()).isZero();
    clock.addAndGet(1);
    assertThat(throttle.failed()).isEqualTo(3);
    assertThat(throttle.failed()).isZero();
  }

  @Test
  void theThrottleKeepsItsIntervalAcrossTheWrapOfTheNanosecondClock() {
    AtomicLong clock = new AtomicLong(Long.MAX_VALUE - 1);
    BackendFailures.LogThrottle throttle = new BackendFailures.LogThrottle(clock::get);
    assertThat(throttle.failed()).isEqualTo(1);

    clock.addAndGet(INTERVAL - 1); // Past Long.MAX_VALUE: negative now.
    assertThat(throttle.failed()).isZero();
    clock.addAndGet(1);
    assertThat(throttle.failed()).isEqualTo(2);
  }

  @Test
  void aFailureToReachTheBackendIsUnavailableNamingTheRouteOnly() {
    Status status = BackendFailures.backendUnavailable(refused, route, "127.0.0.1:1");

    assertThat(status.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(status.getDescription()).isEqualTo("backend " + route + " unavailable");
    assertThat(status.getCause()).isNull();
  }

  @Test
  void aFailureAfterTheCallersDeadlinePassedIsDeadlineExceeded() throws Exception {
    ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    try (Context.CancellableContext expired =
        Context.ROOT.withDeadline(Deadline.after(-1, TimeUnit.SECONDS), scheduler)) {
      Status status =
          expired.call(() -> BackendFailures.backendUnavailable(refused, route, "127.0.0.1:1"));

      assertThat(status.getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
      assertThat(status.getDescription()).isEqualTo("backend " + route + " unavailable");
    } finally {
      scheduler.shutdownNow();
    }
  }

  @Test
  void aCancellationIsPassedOnUnchanged() {
    Status cancelled = Status.CANCELLED.withDescription("by the caller");

    assertThat(BackendFailures.backendUnavailable(cancelled, route, "127.0.0.1:1"))
        .isSameAs(cancelled);
  }

  @Test
  void aTransportFailureOfTheBackendCallIsRelayedAsTheBackendUnavailable() {
    Status status = BackendFailures.relayed(refused, route, "127.0.0.1:1");

    assertThat(status.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(status.getDescription()).isEqualTo("backend " + route + " unavailable");
  }

  @Test
  void statusesTheBackendSentAndCancellationsAndDeadlinesAreRelayedUnchanged() {
    Status sent = Status.UNAVAILABLE.withDescription("the backend's own words");
    Status cancelled = Status.CANCELLED.withCause(new RuntimeException("cancelled"));
    Status deadline = Status.DEADLINE_EXCEEDED.withCause(new RuntimeException("deadline"));

    assertThat(BackendFailures.relayed(sent, route, "t")).isSameAs(sent);
    assertThat(BackendFailures.relayed(cancelled, route, "t")).isSameAs(cancelled);
    assertThat(BackendFailures.relayed(deadline, route, "t")).isSameAs(deadline);
  }
}
