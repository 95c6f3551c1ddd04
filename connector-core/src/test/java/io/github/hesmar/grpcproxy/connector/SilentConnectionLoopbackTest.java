package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.HandlerRegistry;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerMethodDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleResponse;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.awaitility.core.ConditionFactory;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Silent channels retired (docs/design.md, "15. Channels that heal") over real loopback
 * connections: a Netty backend, a {@link FreezingRelay} in front of it whose connections the test
 * freezes (the bytes stop, both ways, and nothing closes: a dropped NAT or load-balancer entry),
 * and real plaintext client channels dialed through the relay.
 *
 * <p>The connector judges a channel silent after {@value #FAILED_CALLS} calls in a row ended
 * DEADLINE_EXCEEDED while a probe ({@code grpc.health.v1.Health/Check}, sent at the run's first
 * failure with the silence as its deadline) heard nothing for {@link #SILENCE}. The calls are
 * unary, made one after the other as a proxy makes them (dial, one call, release), each with a
 * deadline of {@value #CALL_DEADLINE_MILLIS} ms.
 *
 * <ul>
 *   <li>A frozen connection: its channel is retired after at most {@link #mostFailedCalls()} failed
 *       calls (a bound drawn from the three settings, not from the clock), detached with cause
 *       UNHEALTHY while a call still holds it, and closed by the first expiry pass after that call
 *       ends, reported once; the next calls are answered on a new channel.
 *   <li>A backend that answers every call after its deadline is slow, not silent: it answers the
 *       probe (UNIMPLEMENTED: it has no health service), and its channel is kept through many more
 *       failed calls, for more than two silences.
 *   <li>With {@code retireSilentChannels(false)} a frozen connection keeps its channel.
 * </ul>
 */
class SilentConnectionLoopbackTest {

  private static final String LOOPBACK = "127.0.0.1";

  /** K: the failed calls in a row that make a channel silent, with its probe unanswered. */
  private static final int FAILED_CALLS = 3;

  /** T: how long the probe of a run waits for the server. */
  private static final Duration SILENCE = Duration.ofMillis(1000);

  /** d: each call's deadline. T/d is not a whole number, so no failure lands on a probe's end. */
  private static final long CALL_DEADLINE_MILLIS = 300;

  /** The deadline of the calls that set a connection up: a cold JVM takes a while. */
  private static final long SETUP_DEADLINE_MILLIS = 10_000;

  /**
   * How many failing calls the tests that keep the channel make: well over K, and enough to span
   * more than two silences (n failed calls one after the other span at least (n - 1) deadlines from
   * the first failure to the last).
   */
  private static final int KEPT_FAILED_CALLS =
      (int) Math.max(3 * FAILED_CALLS, 2 * SILENCE.toMillis() / CALL_DEADLINE_MILLIS + 2);

  private final List<Close> closes = new CopyOnWriteArrayList<>();
  private @Nullable Backend backend;
  private @Nullable FreezingRelay relay;
  private @Nullable CachingConnector connector;
  private @Nullable HeldCall heldCall;

  @AfterEach
  void closeEverything() throws InterruptedException {
    try {
      if (heldCall != null) {
        heldCall.call.cancel("test over", null);
        assertThat(heldCall.closed).succeedsWithin(Duration.ofSeconds(10));
      }
    } finally {
      try {
        if (connector != null) {
          connector.close();
        }
      } finally {
        try {
          if (relay != null) {
            relay.close(); // throws if one of its threads is still running
          }
        } finally {
          if (backend != null) {
            backend.stop();
          }
        }
      }
    }
  }

  /**
   * The failed calls on a frozen channel before it is retired, at most: max(K, ⌊T/d⌋ + 2). The run
   * starts at the first failure, which sends the probe; the probe gives up T later. Calls fail one
   * deadline d apart, so by then at most ⌊T/d⌋ + 1 have failed, and the call running when the probe
   * gives up is on the frozen channel too: it fails, and the retirement takes effect for the call
   * after it. If K calls have not failed when the probe gives up, the K-th failure retires the
   * channel (the connector hears of a call's end before its caller does), so the next call dials a
   * new channel. Here T/d = 3.3: five failed calls, the fourth 100 ms before the probe gives up,
   * the fifth 200 ms after.
   */
  private static int mostFailedCalls() {
    return (int) Math.max(FAILED_CALLS, SILENCE.toMillis() / CALL_DEADLINE_MILLIS + 2);
  }

  @Test
  void aFrozenConnectionsChannelIsRetiredWithinItsRunOfFailedCallsAndClosedOnceItsLastCallEnds() {
    Backend backend = startBackend();
    FreezingRelay relay = startRelay(backend);
    CachingConnector connector = connector(CachingConnector.builder());
    String address = relay.address();
    assertThat(call("warm-up", SETUP_DEADLINE_MILLIS).code()).isEqualTo(Status.Code.OK);
    long frozen = onlyChannel(connector).id();
    HeldCall held = hold();
    waiting().untilAsserted(() -> assertThat(backend.holding).hasValue(1));
    assertThat(held.lease.entry.id).isEqualTo(frozen);

    relay.freeze();
    List<Outcome> failed = new ArrayList<>();
    Outcome answered = null;
    // One failure past the bound is enough to see it broken; the loop stops there.
    while (answered == null && failed.size() <= mostFailedCalls() + 1) {
      Outcome outcome = call("after-freeze-" + failed.size(), CALL_DEADLINE_MILLIS);
      if (outcome.code() == Status.Code.OK) {
        answered = outcome;
      } else {
        failed.add(outcome);
      }
    }

    assertThat(answered).as("a call answered after the failures %s", failed).isNotNull();
    assertThat(answered.channel()).isNotEqualTo(frozen);
    long fresh = answered.channel();
    // At least K: a shorter run retires nothing. At most the bound of mostFailedCalls().
    assertThat(failed)
        .as("failed calls on the frozen channel %s", frozen)
        .filteredOn(outcome -> outcome.channel() == frozen)
        .hasSizeBetween(FAILED_CALLS, mostFailedCalls())
        .allSatisfy(outcome -> assertThat(outcome.code()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
    // The new channel's first call connects: on a loaded machine it may spend its deadline there.
    assertThat(failed)
        .filteredOn(outcome -> outcome.channel() != frozen)
        .hasSizeLessThanOrEqualTo(1);
    assertThat(backend.probes).as("no probe got through the frozen connection").hasValue(0);
    assertThat(relay.accepted()).isEqualTo(2);

    // Detached, not closed: the held call still runs on it (and holds its lease, as a proxy does).
    assertThat(connector.connections())
        .extracting(
            ConnectionInfo::id,
            ConnectionInfo::closing,
            ConnectionInfo::closeCause,
            ConnectionInfo::leases,
            ConnectionInfo::calls)
        .containsExactly(
            tuple(frozen, true, CloseCause.UNHEALTHY, 1, 1), tuple(fresh, false, null, 0, 0));
    assertThat(connector.expire()).isEmpty();
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::closing)
        .containsExactly(tuple(frozen, true), tuple(fresh, false));
    assertThat(closes).isEmpty();

    // Its last call ends: the next pass closes it, reported once with its cause. Calls go on on
    // the new channel meanwhile (else that pass would be its second idle one, and close it too).
    held.call.cancel("the proxy's client went away", null);
    assertThat(held.closed).succeedsWithin(Duration.ofSeconds(10)).isEqualTo(Status.Code.CANCELLED);
    assertThat(call("after-retirement", CALL_DEADLINE_MILLIS))
        .isEqualTo(new Outcome(fresh, Status.Code.OK));
    assertThat(connector.expire()).containsExactly(address);
    assertThat(closes).containsExactly(new Close(address, CloseCause.UNHEALTHY));
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::closing, ConnectionInfo::closeCause)
        .containsExactly(tuple(fresh, false, null));
    assertThat(connector.connectionCount()).isEqualTo(1);
  }

  @Test
  void aBackendThatAnswersAfterTheDeadlineAnswersTheProbeAndKeepsItsChannel() {
    Backend backend = startBackend();
    FreezingRelay relay = startRelay(backend);
    CachingConnector connector = connector(CachingConnector.builder());
    assertThat(call("warm-up", SETUP_DEADLINE_MILLIS).code()).isEqualTo(Status.Code.OK);
    long channel = onlyChannel(connector).id();

    long startNanos = System.nanoTime();
    for (int i = 0; i < KEPT_FAILED_CALLS; i++) {
      assertThat(call(Backend.LATE, CALL_DEADLINE_MILLIS))
          .as("late call %s", i)
          .isEqualTo(new Outcome(channel, Status.Code.DEADLINE_EXCEEDED));
    }
    long spanNanos = System.nanoTime() - startNanos;

    // The run's probes reached the backend and were answered: one at the first failure, one more
    // at the first failure a silence later, and no more than one per silence.
    waiting().untilAsserted(() -> assertThat(backend.probes.get()).isGreaterThanOrEqualTo(2));
    // Probes go a silence apart on the connector's clock, in whole milliseconds: up to 1 ms short.
    long roundingNanos = TimeUnit.MILLISECONDS.toNanos(KEPT_FAILED_CALLS);
    assertThat(backend.probes.get())
        .as("probes in %s ms of failing calls", TimeUnit.NANOSECONDS.toMillis(spanNanos))
        .isLessThanOrEqualTo((int) (1 + (spanNanos + roundingNanos) / SILENCE.toNanos()));
    assertThat(backend.lateAnswers.get()).isPositive(); // the backend did answer, too late
    assertKept(connector, channel);
    assertThat(relay.accepted()).isEqualTo(1);
    assertThat(call("answered-at-once", CALL_DEADLINE_MILLIS))
        .isEqualTo(new Outcome(channel, Status.Code.OK));
  }

  @Test
  void withSilentChannelsKeptAFrozenConnectionsChannelIsNeverRetired() {
    Backend backend = startBackend();
    FreezingRelay relay = startRelay(backend);
    CachingConnector connector =
        connector(CachingConnector.builder().retireSilentChannels(/* retire= */ false));
    assertThat(call("warm-up", SETUP_DEADLINE_MILLIS).code()).isEqualTo(Status.Code.OK);
    long channel = onlyChannel(connector).id();

    relay.freeze();
    assertThat(KEPT_FAILED_CALLS).isGreaterThan(mostFailedCalls() + 1);
    for (int i = 0; i < KEPT_FAILED_CALLS; i++) {
      assertThat(call("after-freeze-" + i, CALL_DEADLINE_MILLIS))
          .as("call %s after the freeze", i)
          .isEqualTo(new Outcome(channel, Status.Code.DEADLINE_EXCEEDED));
    }

    assertKept(connector, channel);
    assertThat(relay.accepted()).isEqualTo(1);
    assertThat(backend.probes).hasValue(0);
  }

  /** The channel {@code id} is the only one, attached, and stays so through a pass; none closed. */
  private void assertKept(CachingConnector connector, long id) {
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::closing, ConnectionInfo::closeCause)
        .containsExactly(tuple(id, false, null));
    assertThat(connector.expire()).isEmpty();
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::closing)
        .containsExactly(tuple(id, false));
    assertThat(closes).isEmpty();
  }

  /**
   * One unary call as a proxy makes it: dial the relay, call with a deadline of {@code
   * deadlineMillis}, release; returns the channel it ran on and how it ended.
   */
  private Outcome call(String message, long deadlineMillis) {
    try (LeasedChannel lease = requireConnector().dial(requireRelay().address())) {
      Status.Code code;
      try {
        SimpleServiceGrpc.newBlockingStub(lease)
            .withDeadlineAfter(deadlineMillis, TimeUnit.MILLISECONDS)
            .unaryRpc(request(message));
        code = Status.Code.OK;
      } catch (StatusRuntimeException e) {
        code = e.getStatus().getCode();
      }
      return new Outcome(lease.entry.id, code);
    }
  }

  /**
   * Starts a call that the backend holds open, on a lease kept until the call ends (as a proxy
   * keeps it), and waits for nothing.
   */
  private HeldCall hold() {
    LeasedChannel lease = requireConnector().dial(requireRelay().address());
    ClientCall<SimpleRequest, SimpleResponse> call =
        lease.newCall(SimpleServiceGrpc.getServerStreamingRpcMethod(), CallOptions.DEFAULT);
    HeldCall started = new HeldCall(lease, call);
    heldCall = started;
    call.start(started, new Metadata());
    call.sendMessage(request("held"));
    call.halfClose();
    call.request(1);
    return started;
  }

  private static ConnectionInfo onlyChannel(CachingConnector connector) {
    List<ConnectionInfo> channels = connector.connections();
    assertThat(channels).hasSize(1);
    return channels.get(0);
  }

  /** A connector through plaintext channels, quick to judge a channel silent. */
  private CachingConnector connector(CachingConnector.Builder builder) {
    CachingConnector built =
        builder
            .dialer(Dialer.plaintext())
            .silentChannel(FAILED_CALLS, SILENCE)
            .shutdownGracePeriod(Duration.ofSeconds(1))
            .listener(
                new ConnectorListener() {
                  @Override
                  public void onClose(String address, CloseCause cause) {
                    closes.add(new Close(address, cause));
                  }
                })
            .build();
    connector = built;
    return built;
  }

  private Backend startBackend() {
    Backend started = new Backend();
    backend = started;
    return started;
  }

  private FreezingRelay startRelay(Backend backend) {
    FreezingRelay started = new FreezingRelay(backend.port());
    relay = started;
    return started;
  }

  private CachingConnector requireConnector() {
    assertThat(connector).isNotNull();
    return connector;
  }

  private FreezingRelay requireRelay() {
    assertThat(relay).isNotNull();
    return relay;
  }

  private static SimpleRequest request(String message) {
    return SimpleRequest.newBuilder().setRequestMessage(message).build();
  }

  private static ConditionFactory waiting() {
    return await().atMost(Duration.ofSeconds(10));
  }

  /** How a call ended, and on which channel ({@link ConnectionInfo#id()}). */
  private record Outcome(long channel, Status.Code code) {}

  /** A close the listener heard of. */
  private record Close(String address, CloseCause cause) {}

  /**
   * A call held open at the backend, on a lease released when the call ends; {@link #closed}
   * completes with the call's status code after the release.
   */
  private static final class HeldCall extends ClientCall.Listener<SimpleResponse> {
    final LeasedChannel lease;
    final ClientCall<SimpleRequest, SimpleResponse> call;
    final CompletableFuture<Status.Code> closed = new CompletableFuture<>();

    HeldCall(LeasedChannel lease, ClientCall<SimpleRequest, SimpleResponse> call) {
      this.lease = lease;
      this.call = call;
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      lease.close();
      closed.complete(status.getCode());
    }
  }

  /**
   * A loopback Netty server. Its unary method answers at once, or, for the request {@link #LATE},
   * twice the call deadline later (the client has given up by then). Its server-streaming method
   * holds the call open until the client cancels it. It has no health service: a probe gets
   * UNIMPLEMENTED, and is counted on its way to that answer.
   */
  private static final class Backend extends SimpleServiceGrpc.SimpleServiceImplBase {
    static final String LATE = "late";

    final AtomicInteger probes = new AtomicInteger();
    final AtomicInteger holding = new AtomicInteger();
    final AtomicInteger lateAnswers = new AtomicInteger();
    private final ScheduledExecutorService later =
        Executors.newSingleThreadScheduledExecutor(
            task -> {
              Thread thread = new Thread(task, "silent-connection-test-backend");
              thread.setDaemon(true);
              return thread;
            });
    private final Server server;

    Backend() {
      try {
        server =
            NettyServerBuilder.forAddress(
                    new InetSocketAddress(LOOPBACK, 0), InsecureServerCredentials.create())
                .addService(this)
                .fallbackHandlerRegistry(
                    new HandlerRegistry() {
                      @Override
                      public @Nullable ServerMethodDefinition<?, ?> lookupMethod(
                          String methodName, @Nullable String authority) {
                        if (methodName.equals("grpc.health.v1.Health/Check")) {
                          probes.incrementAndGet();
                        }
                        return null; // UNIMPLEMENTED
                      }
                    })
                .build()
                .start();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    int port() {
      return server.getPort();
    }

    @Override
    public void unaryRpc(SimpleRequest request, StreamObserver<SimpleResponse> responses) {
      SimpleResponse response =
          SimpleResponse.newBuilder().setResponseMessage(request.getRequestMessage()).build();
      if (!request.getRequestMessage().equals(LATE)) {
        responses.onNext(response);
        responses.onCompleted();
        return;
      }
      ServerCallStreamObserver<SimpleResponse> late =
          (ServerCallStreamObserver<SimpleResponse>) responses;
      late.setOnCancelHandler(() -> {}); // answering a cancelled call is then a no-op
      later.schedule(
          () -> {
            lateAnswers.incrementAndGet();
            late.onNext(response);
            late.onCompleted();
          },
          2 * CALL_DEADLINE_MILLIS,
          TimeUnit.MILLISECONDS);
    }

    @Override
    public void serverStreamingRpc(
        SimpleRequest request, StreamObserver<SimpleResponse> responses) {
      ((ServerCallStreamObserver<SimpleResponse>) responses)
          .setOnCancelHandler(holding::decrementAndGet);
      holding.incrementAndGet();
    }

    void stop() throws InterruptedException {
      server.shutdownNow();
      later.shutdownNow();
      assertThat(server.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
      assertThat(later.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
  }
}
