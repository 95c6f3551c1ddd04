package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** {@link DialAttempt} on its own: one caller's miss, its pool growth and its bound. */
class DialAttemptTest {

  final TrackingDialer dialer = TrackingDialer.fake();

  @Test
  void aMissDialsOnceAndHandsOutTheLeaseReservedForIt() {
    try (CachingConnector connector = dialer.inlineConnector().build()) {
      LeasedChannel lease =
          new DialAttempt(connector, "alpha", Long.MAX_VALUE, null).lease(/* entry= */ null);

      assertThat(dialer.dialsOf("alpha")).isEqualTo(1);
      assertThat(lease.slot).isEqualTo(Entry.BASE);
      assertThat(connector.leaseCount()).isEqualTo(1);
      lease.close();
      assertThat(connector.leaseCount()).isZero();
    }
  }

  @Test
  void anAttemptThatFindsEveryChannelFullOpensOneMoreAndThenSettles() {
    try (CachingConnector connector =
        dialer.inlineConnector().maxCallsPerChannel(1).maxChannelsPerAddress(2).build()) {
      LeasedChannel first = connector.dial("alpha");
      FakeCall<?, ?> onFirst = FakeCall.startOn(first);
      LeasedChannel second =
          new DialAttempt(connector, "alpha", Long.MAX_VALUE, null).lease(first.entry);
      FakeCall<?, ?> onSecond = FakeCall.startOn(second);

      LeasedChannel third =
          new DialAttempt(connector, "alpha", Long.MAX_VALUE, null).lease(first.entry);

      assertThat(second.entry).isNotSameAs(first.entry);
      assertThat(third.entry).as("both full, no room for a third").isSameAs(first.entry);
      assertThat(dialer.dialsOf("alpha")).isEqualTo(2);
      onFirst.end();
      onSecond.end();
      first.close();
      second.close();
      third.close();
    }
  }

  @Test
  void aCallerWhoseBoundPassesFailsAndLeavesNoWaiterBehind() throws Exception {
    dialer.holdDials(address -> {});
    try (CachingConnector connector =
        CachingConnector.builder().dialer(dialer).shutdownGracePeriod(Duration.ZERO).build()) {
      assertThatThrownBy(
              () ->
                  new DialAttempt(
                          connector,
                          "alpha",
                          Duration.ofMillis(50).toNanos(),
                          Duration.ofMillis(50))
                      .lease(null))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
                assertThat(e.getStatus().getDescription()).contains("the timeout of PT0.05S");
              });

      PendingDial pending = connector.pendingDial("alpha");
      assertThat(pending).isNotNull();
      assertThat(pending.waiterCount()).isZero();
      dialer.proceed.countDown();
    }
  }
}
