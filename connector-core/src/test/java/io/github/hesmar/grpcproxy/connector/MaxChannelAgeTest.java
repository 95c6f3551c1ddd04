package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * Rule 11: {@code maxChannelAge} detaches a channel at the first expiry pass after its jittered
 * age, and closes it once its leases and calls have ended. Time is the injected clock's.
 */
class MaxChannelAgeTest {

  private static final String ADDRESS = "dns:///aged.test:443";
  private static final Duration AGE = Duration.ofMinutes(10);

  private final FakeClock clock = new FakeClock();
  private final List<CloseCause> closes = new CopyOnWriteArrayList<>();

  private CachingConnector.Builder aging(TrackingDialer dialer) {
    return dialer
        .inlineConnector()
        .clock(clock)
        .scheduler(clock.scheduler())
        .maxChannelAge(AGE)
        .listener(
            new ConnectorListener() {
              @Override
              public void onClose(String address, CloseCause cause) {
                closes.add(cause);
              }
            });
  }

  @Test
  void aChannelPastItsAgeIsRetiredUnderItsLeaseAndClosesOnlyAfterTheLeaseAndItsCallEnd() {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector = aging(dialer).build()) {
      LeasedChannel old = connector.dial(ADDRESS);
      clock.forward(Duration.ofMinutes(8)); // below 90 % of the age: never retired
      connector.expire();
      assertThat(connector.connections()).singleElement().returns(false, ConnectionInfo::closing);

      clock.forward(Duration.ofMinutes(4)); // 12 min: past 110 % of the age
      assertThat(connector.expire()).isEmpty();
      assertThat(connector.connections()).singleElement().returns(true, ConnectionInfo::closing);

      LeasedChannel fresh = connector.dial(ADDRESS); // held: it does not expire meanwhile
      assertThat(fresh.entry).isNotSameAs(old.entry);
      assertThat(dialer.created).hasSize(2);

      FakeCall<?, ?> call = FakeCall.startOn(old);
      old.close();
      connector.expire();
      assertThat(dialer.created.get(0).shutdowns).as("a call in flight").hasValue(0);

      call.end();
      assertThat(connector.expire()).containsExactly(ADDRESS);
      assertThat(dialer.created.get(0).shutdowns).hasValue(1);
      assertThat(closes).containsExactly(CloseCause.MAX_AGE);
      assertThat(call.status()).isNotNull().returns(true, status -> status.isOk());
      fresh.close();
    }
  }

  @Test
  void anIdleChannelPastItsAgeClosesAtThePassThatRetiresIt() {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector = aging(dialer).build()) {
      connector.dial(ADDRESS).close();
      clock.forward(Duration.ofMinutes(12));
      assertThat(connector.expire()).containsExactly(ADDRESS);
      assertThat(closes).containsExactly(CloseCause.MAX_AGE);
      assertThat(connector.connectionCount()).isZero();
    }
  }

  @Test
  void channelsCreatedTogetherRetireOverAFifthOfTheAgeNotInOnePass() {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector = aging(dialer).build()) {
      List<LeasedChannel> leases = new ArrayList<>(); // held: no channel expires as unused
      for (int i = 0; i < 100; i++) {
        leases.add(connector.dial("dns:///backend-" + i + ".test:443"));
      }
      Duration step = AGE.dividedBy(100); // 1 % of the age per pass
      clock.forward(step.multipliedBy(89));
      Set<Integer> passesThatRetired = new HashSet<>();
      int retired = 0;
      for (int pass = 89; pass <= 111; pass++) {
        connector.expire();
        int detached =
            (int) connector.connections().stream().filter(ConnectionInfo::closing).count();
        if (pass < 90) {
          assertThat(detached).as("retired before 90 %% of the age").isZero();
        }
        if (detached > retired) {
          passesThatRetired.add(pass);
          retired = detached;
        }
        clock.forward(step);
      }
      assertThat(retired).as("all retired by 111 %% of the age").isEqualTo(100);
      assertThat(passesThatRetired).as("passes that retired channels").hasSizeGreaterThan(10);
      leases.forEach(LeasedChannel::close);
      connector.expire();
      assertThat(connector.connectionCount()).isZero();
      assertThat(closes).hasSize(100).containsOnly(CloseCause.MAX_AGE);
    }
  }

  @Test
  void retiringTheFirstChannelOfAnAddressRetiresItsExtraChannels() {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector =
        aging(dialer).maxCallsPerChannel(1).maxChannelsPerAddress(2).build()) {
      LeasedChannel first = connector.dial(ADDRESS);
      FakeCall<?, ?> call = FakeCall.startOn(first);
      clock.forward(Duration.ofMinutes(5));
      connector.dial(ADDRESS).close(); // the extra channel, idle, 5 minutes younger
      assertThat(connector.connections()).hasSize(2);

      clock.forward(Duration.ofMinutes(7)); // the first is 12 minutes old, the extra one 7
      assertThat(connector.expire()).containsExactly(ADDRESS); // the idle extra channel
      assertThat(connector.connections()).singleElement().returns(true, ConnectionInfo::closing);

      call.end();
      first.close();
      assertThat(connector.expire()).containsExactly(ADDRESS);
      assertThat(closes).containsExactly(CloseCause.MAX_AGE, CloseCause.MAX_AGE);
    }
  }

  @Test
  void theAgeMustBePositive() {
    CachingConnector.Builder builder = CachingConnector.builder();
    assertThatThrownBy(() -> builder.maxChannelAge(Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maxChannelAge must be positive, was PT0S");
    assertThatThrownBy(() -> builder.maxChannelAge(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("maxChannelAge");
    assertThatThrownBy(() -> builder.maxChannelAge(null))
        .isInstanceOf(NullPointerException.class)
        .hasMessageContaining("maxAge");
  }
}
