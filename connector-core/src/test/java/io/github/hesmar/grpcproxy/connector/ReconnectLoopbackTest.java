package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.grpc.ConnectivityState;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A returning backend is used at once (docs/design.md, "15. Channels that heal"): a real loopback
 * backend is stopped, stays down for an outage, and is started again on the same port, while a
 * caller makes one call every 100 ms through the connector, as a proxy does (dial, call, release).
 * Without the connector's backoff reset, grpc-java's reconnect backoff (exponential to 120 s) makes
 * the first call after the restart wait from several seconds (a 30 s outage: 17.3 s measured) to
 * two minutes; with it, a call made while the channel is in TRANSIENT_FAILURE makes it connect
 * again, at most once a second, so the first call after the restart succeeds within about a second.
 *
 * <p>The outage lasts 30 s, or what the system property {@code connector.test.outage} says (an ISO
 * 8601 duration; CI runs it once more with {@code PT3M}, long enough for grpc-java's backoff to
 * reach its maximum without the reset).
 */
class ReconnectLoopbackTest {

  private static final String LOOPBACK = "127.0.0.1";

  /** From the restart to the first call that succeeds, at most: the goal. */
  private static final Duration FIRST_OK_WITHIN = Duration.ofMillis(1500);

  private @Nullable Server server;
  private @Nullable CachingConnector connector;
  private final ScheduledExecutorService caller = Executors.newSingleThreadScheduledExecutor();

  /** The calls made, in order: when each ended (nanoTime) and whether it succeeded. */
  private final ConcurrentLinkedQueue<Outcome> outcomes = new ConcurrentLinkedQueue<>();

  private record Outcome(long endedNanos, boolean ok) {}

  @AfterEach
  void stopEverything() throws InterruptedException {
    caller.shutdownNow();
    assertThat(caller.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    if (connector != null) {
      connector.close();
    }
    if (server != null) {
      server.shutdownNow();
      assertThat(server.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
  }

  @Test
  void theFirstCallAfterABackendReturnsSucceedsWithinASecondAndAHalf() throws Exception {
    Duration outage = Duration.parse(System.getProperty("connector.test.outage", "PT30S"));
    Server first = startServer(0);
    server = first;
    int port = first.getPort();
    String address = LOOPBACK + ":" + port;
    CachingConnector built = CachingConnector.builder().dialer(Dialer.plaintext()).build();
    connector = built;
    AtomicInteger failuresDuringOutage = new AtomicInteger();
    caller.scheduleAtFixedRate(
        () -> call(built, address, failuresDuringOutage), 0, 100, TimeUnit.MILLISECONDS);
    await().atMost(Duration.ofSeconds(20)).until(() -> outcomes.stream().anyMatch(Outcome::ok));

    first.shutdownNow();
    assertThat(first.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    server = null;
    failuresDuringOutage.set(0);
    // The outage itself: the scenario's length, not a wait for an outcome.
    Thread.sleep(outage.toMillis());
    assertThat(failuresDuringOutage.get())
        .as("calls failed during the %s outage", outage)
        .isGreaterThan(10);
    // Between two connection attempts (reset once a second) the channel is in TRANSIENT_FAILURE.
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(built.connections())
                    .extracting(ConnectionInfo::state)
                    .containsExactly(ConnectivityState.TRANSIENT_FAILURE));

    server = startServer(port);
    long restarted = System.nanoTime();
    Outcome firstOk =
        await()
            .atMost(Duration.ofMinutes(3))
            .until(
                () ->
                    outcomes.stream()
                        .filter(outcome -> outcome.ok() && outcome.endedNanos() > restarted)
                        .findFirst()
                        .orElse(null),
                outcome -> outcome != null);
    Duration afterRestart = Duration.ofNanos(firstOk.endedNanos() - restarted);
    System.out.printf(
        "outage %s: first OK call %d ms after the restart%n", outage, afterRestart.toMillis());
    assertThat(afterRestart).isLessThanOrEqualTo(FIRST_OK_WITHIN);
  }

  /** One call as a proxy makes it: a lease, a health check with a 500 ms deadline, the release. */
  private void call(CachingConnector connector, String address, AtomicInteger failures) {
    boolean ok;
    try (LeasedChannel lease = connector.dial(address)) {
      HealthGrpc.newBlockingStub(lease)
          .withDeadlineAfter(500, TimeUnit.MILLISECONDS)
          .check(HealthCheckRequest.getDefaultInstance());
      ok = true;
    } catch (StatusRuntimeException e) {
      ok = false;
      failures.incrementAndGet();
    }
    outcomes.add(new Outcome(System.nanoTime(), ok));
  }

  private static Server startServer(int port) {
    try {
      return NettyServerBuilder.forAddress(
              new InetSocketAddress(LOOPBACK, port), InsecureServerCredentials.create())
          .addService(new HealthStatusManager().getHealthService())
          .build()
          .start();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
