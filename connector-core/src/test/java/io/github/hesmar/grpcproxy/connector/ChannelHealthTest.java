package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/**
 * {@link ChannelHealth} on a channel the test drives by hand (its state, and the probe's end) and
 * an injected clock (docs/design.md, "15. Channels that heal"). The real-network behaviour is in
 * {@code ReconnectLoopbackTest} and {@code SilentConnectionLoopbackTest}.
 */
class ChannelHealthTest {

  private static final Status DEADLINE = Status.DEADLINE_EXCEEDED.withDescription("deadline");
  private static final Status KEEPALIVE =
      Status.UNAVAILABLE.withDescription("Keepalive failed. The connection is likely gone");

  private final FakeClock clock = new FakeClock();
  private final List<Entry> retired = new CopyOnWriteArrayList<>();
  private boolean refuseRetirement;
  private final Channel channel = new Channel();

  private Entry entry(boolean retires) {
    ChannelHealth.Policy policy =
        new ChannelHealth.Policy(
            clock,
            retires,
            3,
            10_000,
            candidate -> {
              if (refuseRetirement) {
                return false;
              }
              retired.add(candidate);
              return true;
            });
    Entry entry =
        new Entry(
            "backend:443",
            1,
            null,
            new PendingDial(System.nanoTime()),
            new ChannelStreams.Watch(clock.scheduler(), null, 100, true, policy));
    entry.health.watch(channel);
    return entry;
  }

  private Entry readyEntry(boolean retires) {
    Entry entry = entry(retires);
    channel.moveTo(ConnectivityState.READY);
    return entry;
  }

  @Test
  void deadlinesOfAChannelThatIsNotReadyAreNotSilence() {
    ChannelHealth health = entry(true).health;
    for (ConnectivityState state :
        List.of(
            ConnectivityState.IDLE,
            ConnectivityState.CONNECTING,
            ConnectivityState.TRANSIENT_FAILURE)) {
      channel.moveTo(state);
      health.callClosed(DEADLINE);
      health.callClosed(DEADLINE);
      health.callClosed(DEADLINE);
    }
    assertThat(channel.probes).isEmpty();
    channel.moveTo(ConnectivityState.TRANSIENT_FAILURE);
    health.callClosed(KEEPALIVE); // keepalive's verdict counts whatever the state
    assertThat(channel.probes).hasSize(1);
  }

  @Test
  void aCallOnAChannelInTransientFailureResetsItsBackoffAtMostOnceASecond() {
    ChannelHealth health = entry(true).health;
    health.callStarting();
    assertThat(channel.resets).isZero(); // IDLE: nothing to reset

    channel.moveTo(ConnectivityState.TRANSIENT_FAILURE);
    for (int i = 0; i < 5; i++) {
      health.callStarting();
    }
    assertThat(channel.resets).isEqualTo(1);
    clock.forward(Duration.ofMillis(999));
    health.callStarting();
    assertThat(channel.resets).isEqualTo(1);
    clock.forward(Duration.ofMillis(1));
    health.callStarting();
    health.callStarting();
    assertThat(channel.resets).isEqualTo(2);

    channel.moveTo(ConnectivityState.CONNECTING);
    clock.forward(Duration.ofSeconds(5));
    health.callStarting();
    channel.moveTo(ConnectivityState.READY);
    health.callStarting();
    assertThat(channel.resets).isEqualTo(2);
  }

  @Test
  void theStateAndWhenItWasEnteredFollowTheChannel() {
    ChannelHealth health = entry(true).health;
    Instant start = clock.instant();
    assertThat(health.state()).isEqualTo(ConnectivityState.IDLE);
    assertThat(health.stateSinceMillis()).isEqualTo(start.toEpochMilli());

    clock.forward(Duration.ofSeconds(3));
    channel.moveTo(ConnectivityState.TRANSIENT_FAILURE);
    assertThat(health.state()).isEqualTo(ConnectivityState.TRANSIENT_FAILURE);
    assertThat(health.stateSinceMillis()).isEqualTo(start.plusSeconds(3).toEpochMilli());

    channel.moveTo(ConnectivityState.SHUTDOWN);
    assertThat(health.state()).isEqualTo(ConnectivityState.SHUTDOWN);
    assertThat(channel.watchers).isEmpty(); // nothing follows a channel that was shut down
  }

  @Test
  void threeFailuresInARowWithAnUnansweredProbeRetireTheChannelOnce() {
    Entry entry = readyEntry(true);
    ChannelHealth health = entry.health;
    health.callClosed(DEADLINE);
    assertThat(channel.probes).hasSize(1); // the run's first failure sends the probe
    Probe probe = channel.probes.get(0);
    assertThat(probe.options.getDeadline()).isNotNull();
    assertThat(probe.options.getDeadline().timeRemaining(TimeUnit.MILLISECONDS))
        .isBetween(9_000L, 10_000L);
    health.callClosed(DEADLINE);
    health.callClosed(KEEPALIVE);
    assertThat(channel.probes).hasSize(1);
    assertThat(retired).isEmpty(); // three failures, but the probe may still be answered

    probe.close(Status.DEADLINE_EXCEEDED); // nothing arrived for the silence
    assertThat(retired).containsExactly(entry);
    assertThat(health.isSilent()).isTrue();
    health.callClosed(DEADLINE);
    assertThat(retired).containsExactly(entry); // asked once
  }

  @Test
  void aProbeLeftUnansweredBeforeTheThirdFailureRetiresAtTheThird() {
    Entry entry = readyEntry(true);
    entry.health.callClosed(DEADLINE);
    channel.probes.get(0).close(Status.DEADLINE_EXCEEDED);
    entry.health.callClosed(DEADLINE);
    assertThat(retired).isEmpty();
    entry.health.callClosed(DEADLINE);
    assertThat(retired).containsExactly(entry);
  }

  @Test
  void anAnsweredProbeKeepsTheChannelAndTheNextProbeWaitsASilence() {
    ChannelHealth health = readyEntry(true).health;
    health.callClosed(DEADLINE);
    Probe probe = channel.probes.get(0);
    health.inbound(); // the server answers the probe (UNIMPLEMENTED, say)
    probe.close(Status.UNIMPLEMENTED);
    for (int i = 0; i < 10; i++) {
      health.callClosed(DEADLINE); // a slow backend: calls miss their deadlines
    }
    assertThat(retired).isEmpty();
    assertThat(channel.probes).hasSize(1); // at most one probe a silence

    clock.forward(Duration.ofSeconds(10));
    health.callClosed(DEADLINE);
    assertThat(channel.probes).hasSize(2);
    health.inbound();
    channel.probes.get(1).close(Status.OK);
    assertThat(retired).isEmpty();
  }

  @Test
  void anythingArrivingOnAnyStreamWhileTheProbeWaitsCountsAsAnAnswer() {
    ChannelHealth health = readyEntry(true).health;
    health.callClosed(DEADLINE);
    health.callClosed(DEADLINE);
    health.inbound(); // a message on another stream of the channel
    health.callClosed(DEADLINE);
    channel.probes.get(0).close(Status.DEADLINE_EXCEEDED);
    assertThat(retired).isEmpty();
    assertThat(health.isSilent()).isFalse();
  }

  @Test
  void otherEndingsAreNotFailuresOfASilentConnection() {
    ChannelHealth health = readyEntry(true).health;
    for (Status status :
        List.of(
            Status.OK,
            Status.CANCELLED,
            Status.UNAVAILABLE.withDescription("io exception"),
            Status.UNAVAILABLE,
            Status.INTERNAL)) {
      health.callClosed(status);
      health.callClosed(status);
      health.callClosed(status);
    }
    assertThat(channel.probes).isEmpty();
    assertThat(ChannelHealth.isSilentFailure(KEEPALIVE, ConnectivityState.IDLE)).isTrue();
    assertThat(ChannelHealth.isSilentFailure(DEADLINE, ConnectivityState.READY)).isTrue();
    assertThat(ChannelHealth.isSilentFailure(DEADLINE, null)).isTrue();
  }

  @Test
  void aRefusedRetirementLetsALaterRunAskAgain() {
    Entry entry = readyEntry(true);
    refuseRetirement = true;
    failThreeTimesUnanswered(entry.health);
    assertThat(retired).isEmpty();
    assertThat(entry.health.isSilent()).isFalse();

    refuseRetirement = false;
    clock.forward(Duration.ofSeconds(10));
    failThreeTimesUnanswered(entry.health);
    assertThat(retired).containsExactly(entry);
  }

  @Test
  void withRetirementOffNothingIsProbedOrRetired() {
    ChannelHealth health = readyEntry(false).health;
    for (int i = 0; i < 5; i++) {
      health.callClosed(DEADLINE);
    }
    assertThat(channel.probes).isEmpty();
    assertThat(retired).isEmpty();
  }

  private void failThreeTimesUnanswered(ChannelHealth health) {
    health.callClosed(DEADLINE);
    health.callClosed(DEADLINE);
    health.callClosed(DEADLINE);
    channel.probes.get(channel.probes.size() - 1).close(Status.DEADLINE_EXCEEDED);
  }

  /** A probe the channel was asked to make; the test ends it. */
  private static final class Probe extends ClientCall<Object, Object> {
    final CallOptions options;
    private @Nullable Listener<Object> listener;

    Probe(CallOptions options) {
      this.options = options;
    }

    void close(Status status) {
      assertThat(listener).isNotNull();
      listener.onClose(status, new Metadata());
    }

    @Override
    public void start(Listener<Object> responseListener, Metadata headers) {
      listener = responseListener;
    }

    @Override
    public void request(int numMessages) {}

    @Override
    public void cancel(@Nullable String message, @Nullable Throwable cause) {}

    @Override
    public void halfClose() {}

    @Override
    public void sendMessage(Object message) {}
  }

  /** A channel whose state the test sets; it records resets, state watchers and probes. */
  private static final class Channel extends ManagedChannel {
    private ConnectivityState state = ConnectivityState.IDLE;
    int resets;
    final List<Runnable> watchers = new ArrayList<>();
    final List<Probe> probes = new ArrayList<>();

    void moveTo(ConnectivityState next) {
      state = next;
      List<Runnable> due = new ArrayList<>(watchers);
      watchers.clear();
      due.forEach(Runnable::run);
    }

    @Override
    public ConnectivityState getState(boolean requestConnection) {
      return state;
    }

    @Override
    public void notifyWhenStateChanged(ConnectivityState source, Runnable callback) {
      if (source != state) {
        callback.run();
      } else {
        watchers.add(callback);
      }
    }

    @Override
    public void resetConnectBackoff() {
      resets++;
    }

    @Override
    @SuppressWarnings("unchecked") // the probe's types are the test's business
    public <ReqT, RespT> ClientCall<ReqT, RespT> newCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options) {
      assertThat(method.getFullMethodName()).isEqualTo("grpc.health.v1.Health/Check");
      Probe probe = new Probe(options);
      probes.add(probe);
      return (ClientCall<ReqT, RespT>) (ClientCall<?, ?>) probe;
    }

    @Override
    public String authority() {
      return "backend:443";
    }

    @Override
    public ManagedChannel shutdown() {
      return this;
    }

    @Override
    public ManagedChannel shutdownNow() {
      return this;
    }

    @Override
    public boolean isShutdown() {
      return false;
    }

    @Override
    public boolean isTerminated() {
      return false;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
      return false;
    }
  }
}
