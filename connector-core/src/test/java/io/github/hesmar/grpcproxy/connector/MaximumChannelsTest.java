package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/**
 * Rule 10: {@code maximumChannels} closes idle channels, least recently leased first, before a dial
 * creates a channel past the bound, and never one that holds a lease or a call. Fake channels,
 * dialed inline: each step is finished when it returns.
 */
class MaximumChannelsTest {

  /** Records every close with its cause. */
  private static final class Closes implements ConnectorListener {
    final List<String> evicted = new CopyOnWriteArrayList<>();
    final Map<CloseCause, AtomicInteger> byCause = new ConcurrentHashMap<>();

    @Override
    public void onClose(String address, CloseCause cause) {
      byCause.computeIfAbsent(cause, c -> new AtomicInteger()).incrementAndGet();
      if (cause == CloseCause.EVICTED) {
        evicted.add(address);
      }
    }

    int of(CloseCause cause) {
      AtomicInteger count = byCause.get(cause);
      return count == null ? 0 : count.get();
    }
  }

  private static String address(int i) {
    return "dns:///backend-" + i + ".test:443";
  }

  @Test
  void aThousandAddressesThroughABoundOfTenKeepAtMostTenChannelsOpenAndNeverCloseOneInUse() {
    TrackingDialer dialer = TrackingDialer.fake();
    AtomicInteger mostOpenBeforeADial = new AtomicInteger();
    dialer.behaviour =
        address -> mostOpenBeforeADial.accumulateAndGet(dialer.open().size(), Math::max);
    Closes closes = new Closes();
    List<LeasedChannel> held = new ArrayList<>();
    FakeCall<?, ?> call;
    try (CachingConnector connector =
        dialer.inlineConnector().maximumChannels(10).listener(closes).build()) {
      LeasedChannel callLease = connector.dial(address(0));
      call = FakeCall.startOn(callLease); // a call that outlives its lease
      callLease.close();
      for (int i = 1; i < 1_000; i++) {
        LeasedChannel lease = connector.dial(address(i));
        if (i % 250 == 0) {
          held.add(lease); // leases held from here to the end
        } else {
          lease.close();
        }
        assertThat(dialer.open()).as("open after dial %d", i).hasSizeLessThanOrEqualTo(10);
        assertThat(connector.connectionCount()).isLessThanOrEqualTo(10);
      }
      assertThat(mostOpenBeforeADial.get())
          .as("channels open when the dialer was called")
          .isLessThanOrEqualTo(9);
      for (LeasedChannel lease : held) {
        assertThat(lease.isShutdown()).as("a held lease's channel").isFalse();
      }
      assertThat(call.status()).as("the call in flight").isNull();
      assertThat(dialer.createdFor(address(0)).get(0).shutdowns).hasValue(0);
      assertThat(closes.evicted).doesNotContain(address(0), address(250), address(500));
      assertThat(closes.of(CloseCause.EVICTED)).isEqualTo(1_000 - dialer.open().size());
      assertThat(connector.connectionCount()).isEqualTo(10);

      call.end();
      held.forEach(LeasedChannel::close);
    }
    assertThat(dialer.created).hasSize(1_000);
    assertThat(dialer.created)
        .allSatisfy(channel -> assertThat(channel.shutdowns).as("%s", channel).hasValue(1));
  }

  @Test
  void aChannelLeasedAgainIsEvictedAfterTheChannelsDialedOnce() {
    TrackingDialer dialer = TrackingDialer.fake();
    Closes closes = new Closes();
    try (CachingConnector connector =
        dialer.inlineConnector().maximumChannels(3).listener(closes).build()) {
      for (int i = 0; i < 3; i++) {
        connector.dial(address(i)).close();
      }
      connector.dial(address(0)).close(); // 0 is now the most recently used

      connector.dial(address(3)).close();
      connector.dial(address(4)).close();
      assertThat(closes.evicted).containsExactly(address(1), address(2));

      connector.dial(address(0)).close(); // still cached: a hit
      assertThat(dialer.dialsOf(address(0))).isEqualTo(1);
    }
  }

  @Test
  void whenEveryChannelIsInUseTheBoundIsExceededThenRegained() {
    TrackingDialer dialer = TrackingDialer.fake();
    Closes closes = new Closes();
    try (CachingConnector connector =
        dialer.inlineConnector().maximumChannels(3).listener(closes).build()) {
      List<LeasedChannel> leases = new ArrayList<>();
      for (int i = 0; i < 5; i++) {
        leases.add(connector.dial(address(i)));
      }
      assertThat(connector.connectionCount()).as("soft while all are in use").isEqualTo(5);
      assertThat(closes.evicted).isEmpty();

      leases.forEach(LeasedChannel::close);
      connector.dial(address(5)).close();
      assertThat(connector.connectionCount()).isEqualTo(3);
      assertThat(dialer.open()).hasSize(3);
      assertThat(closes.evicted).hasSize(3);
    }
  }

  @Test
  void aDetachedChannelMakesRoomOnceIdleAndIsReportedWithItsCause() {
    TrackingDialer dialer = TrackingDialer.fake();
    Closes closes = new Closes();
    try (CachingConnector connector =
        dialer.inlineConnector().maximumChannels(2).listener(closes).build()) {
      LeasedChannel lease = connector.dial(address(0));
      connector.closeOnRelease(address(0));
      connector.dial(address(1)).close();
      connector.dial(address(0)).close(); // a new channel; the detached one is still leased
      assertThat(connector.connectionCount()).isEqualTo(2);
      assertThat(closes.evicted).containsExactly(address(1));

      lease.close();
      connector.dial(address(2)).close();
      assertThat(closes.of(CloseCause.RELEASED)).isEqualTo(1);
      assertThat(dialer.createdFor(address(0)).get(0).shutdowns).hasValue(1);
      assertThat(connector.connectionCount()).isEqualTo(2);
    }
  }

  @Test
  void extraChannelsOfAnAddressCountTowardsTheBound() {
    TrackingDialer dialer = TrackingDialer.fake();
    Closes closes = new Closes();
    try (CachingConnector connector =
        dialer
            .inlineConnector()
            .maximumChannels(3)
            .maxCallsPerChannel(1)
            .maxChannelsPerAddress(3)
            .listener(closes)
            .build()) {
      List<FakeCall<?, ?>> calls = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        try (LeasedChannel lease = connector.dial(address(0))) {
          calls.add(FakeCall.startOn(lease));
        }
      }
      assertThat(connector.connectionCount()).isEqualTo(3);
      connector.dial(address(1)).close();
      assertThat(connector.connectionCount()).as("all three carry a call").isEqualTo(4);

      calls.forEach(FakeCall::end);
      connector.dial(address(2)).close();
      connector.dial(address(3)).close();
      // The first channel of address 0 cannot go before its extra channels.
      assertThat(connector.connections())
          .extracting(ConnectionInfo::address)
          .doesNotHaveDuplicates()
          .hasSize(3);
      assertThat(dialer.open()).hasSize(3);
    }
  }

  @Test
  void aDialAbandonedWhileItsDialerHangsGivesItsPlaceBack() throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    CountDownLatch never = new CountDownLatch(1);
    dialer.behaviour =
        address -> {
          if (address.contains("hung")) {
            never.await();
          }
        };
    Closes closes = new Closes();
    try (CachingConnector connector =
        CachingConnector.builder()
            .dialer(dialer)
            .shutdownGracePeriod(Duration.ZERO)
            .dialTimeout(Duration.ofMillis(100))
            .maximumChannels(3)
            .listener(closes)
            .build()) {
      for (int i = 0; i < 3; i++) {
        assertThatThrownBy(() -> connector.dial("dns:///hung.test:443"))
            .isInstanceOfSatisfying(
                StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
      }
      connector.dial(address(0)).close();
      connector.dial(address(1)).close();
      connector.dial(address(2)).close();
      assertThat(closes.evicted).as("three channels open under a bound of 3").isEmpty();
      connector.dial(address(3)).close();
      // Reported by the dial thread once the dial's outcome is published: maybe after it returns.
      await().untilAsserted(() -> assertThat(closes.evicted).containsExactly(address(0)));
      assertThat(connector.connectionCount()).isEqualTo(3);
    } finally {
      never.countDown();
    }
  }

  @Test
  void aListenerHearsOfAnEvictionAfterTheDialThatMadeItAndMayDialTheSameAddress() {
    TrackingDialer dialer = TrackingDialer.fake();
    AtomicReference<@Nullable CachingConnector> self = new AtomicReference<>();
    List<String> redialed = new CopyOnWriteArrayList<>();
    CachingConnector connector =
        dialer
            .inlineConnector()
            .maximumChannels(1)
            .listener(
                new ConnectorListener() {
                  @Override
                  public void onClose(String address, CloseCause cause) {
                    if (cause == CloseCause.RELEASED) {
                      // The detached channel of the address whose dial evicted it.
                      try (LeasedChannel lease = requireNonNull(self.get()).dial(address)) {
                        redialed.add(lease.address());
                      }
                    }
                  }
                })
            .build();
    self.set(connector);
    try (connector) {
      connector.dial(address(0)).close();
      connector.closeOnRelease(address(0));
      connector.dial(address(0)).close(); // evicts the detached channel of address 0
      assertThat(redialed).containsExactly(address(0));
      assertThat(dialer.dialsOf(address(0))).as("the listener's dial was a hit").isEqualTo(2);
    }
  }

  @Test
  void theBoundMustBePositive() {
    CachingConnector.Builder builder = CachingConnector.builder();
    assertThatThrownBy(() -> builder.maximumChannels(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maximumChannels must be positive, was 0");
    assertThatThrownBy(() -> builder.maximumChannels(-1))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("maximumChannels");
  }

  /**
   * A working set warmer than the hand's scan: every channel is leased again after its dial, and
   * older ones between two new ones, so each is marked when the hand comes; the hand gives each its
   * second chance and then looks again, and the bound holds for a bound above {@value
   * ChannelBound#SCAN_LIMIT} as for one below it.
   */
  @Test
  void aWarmWorkingSetLargerThanTheScanKeepsTheBound() {
    for (int bound : new int[] {10, 70, 200}) {
      TrackingDialer dialer = TrackingDialer.fake();
      try (CachingConnector connector = dialer.inlineConnector().maximumChannels(bound).build()) {
        int backends = 2 * bound;
        for (int i = 0; i < backends; i++) {
          connector.dial(address(i)).close();
          connector.dial(address(i)).close(); // leased again: marked
          if (i > 0) {
            connector.dial(address(i / 2)).close(); // an older one, leased again
          }
          assertThat(connector.connectionCount())
              .as("open after backend %d of %d, bound %d", i, backends, bound)
              .isLessThanOrEqualTo(bound);
        }
      }
    }
  }
}
