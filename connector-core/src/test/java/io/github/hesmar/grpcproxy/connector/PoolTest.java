package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Rule 9 at its edges: which channel a dial leases, when an address gets one more, and extra
 * channels whose dial hangs or fails while their address is detached, expired or closed. Fake
 * channels; calls are {@link FakeCall}s, which fill a channel while in flight.
 */
class PoolTest {

  private static final String ADDRESS = "dns:///pool.test:443";

  private final ExecutorService callers = Executors.newCachedThreadPool();
  private final CountDownLatch release = new CountDownLatch(1);

  @AfterEach
  void tearDown() {
    release.countDown();
    callers.shutdownNow();
  }

  /** Makes the dialer hang until the test ends, ignoring interrupts (a blocking DNS lookup). */
  private void hangUninterruptibly(TrackingDialer dialer) {
    dialer.behaviour =
        address -> {
          boolean interrupted = false;
          while (true) {
            try {
              release.await();
              break;
            } catch (InterruptedException e) {
              interrupted = true;
            }
          }
          if (interrupted) {
            Thread.currentThread().interrupt();
          }
        };
  }

  /** Fake channels dialed on {@link #callers}; one call fills a channel, two per address. */
  private CachingConnector.Builder oneCallPerChannel(TrackingDialer dialer) {
    return CachingConnector.builder()
        .dialer(dialer)
        .dialExecutor(callers)
        .shutdownGracePeriod(Duration.ZERO)
        .maxCallsPerChannel(1)
        .maxChannelsPerAddress(2);
  }

  /** A lease whose call fills the address's channel, and a dial whose extra channel is held. */
  private record ExtraDialHeld(
      LeasedChannel first, FakeCall<?, ?> call, Future<LeasedChannel> opener) {

    /** Lets the extra dial complete, and gives everything back. */
    void finish(TrackingDialer dialer) throws Exception {
      dialer.proceed.countDown();
      opener.get(30, TimeUnit.SECONDS).close();
      call.end();
      first.close();
    }
  }

  private ExtraDialHeld fillTheChannelAndHoldTheExtraDial(
      CachingConnector connector, TrackingDialer dialer) throws InterruptedException {
    LeasedChannel first = connector.dial(ADDRESS);
    FakeCall<?, ?> call = FakeCall.startOn(first);
    dialer.holdDials(address -> {});
    Future<LeasedChannel> opener = callers.submit(() -> connector.dial(ADDRESS));
    assertThat(dialer.dialing.await(30, TimeUnit.SECONDS)).isTrue();
    return new ExtraDialHeld(first, call, opener);
  }

  @Test
  void aDialLeasesTheFirstChannelWithRoomSoThatExtraChannelsExpireWhenTheLoadFalls() {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector =
        dialer.inlineConnector().maxCallsPerChannel(2).maxChannelsPerAddress(3).build()) {
      List<FakeCall<?, ?>> burst = new ArrayList<>();
      for (int i = 0; i < 5; i++) { // 5 calls: 2 + 2 + 1 over three channels
        try (LeasedChannel lease = connector.dial(ADDRESS)) {
          burst.add(FakeCall.startOn(lease));
        }
      }
      assertThat(connector.connections())
          .extracting(ConnectionInfo::calls)
          .containsExactly(2, 2, 1);
      burst.forEach(FakeCall::end);

      // Then two calls at a time: both fit on the first channel, the others go idle and expire.
      for (int pass = 0; pass < 3; pass++) {
        try (LeasedChannel x = connector.dial(ADDRESS);
            LeasedChannel y = connector.dial(ADDRESS)) {
          assertThat(x.entry).isSameAs(y.entry);
          FakeCall<?, ?> one = FakeCall.startOn(x);
          FakeCall<?, ?> two = FakeCall.startOn(y);
          one.end();
          two.end();
        }
        connector.expire();
      }
      assertThat(connector.connections()).extracting(ConnectionInfo::id).containsExactly(1L);
      assertThat(dialer.created.get(1).shutdowns).hasValue(1);
      assertThat(dialer.created.get(2).shutdowns).hasValue(1);
    }
  }

  @Test
  void withOneChannelPerAddressAFullChannelIsLeasedAsInTheGoPackage() {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector =
        dialer.inlineConnector().maxCallsPerChannel(1).maxChannelsPerAddress(1).build()) {
      try (LeasedChannel first = connector.dial(ADDRESS)) {
        FakeCall<?, ?> call = FakeCall.startOn(first);
        try (LeasedChannel second = connector.dial(ADDRESS)) {
          assertThat(second.entry).isSameAs(first.entry);
        }
        call.end();
      }
      assertThat(dialer.dials).hasValue(1);
    }
  }

  @Test
  void anExtraChannelWhoseDialFailsLeavesItsCallerOnAFullChannel() {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector =
        dialer.inlineConnector().maxCallsPerChannel(1).maxChannelsPerAddress(2).build()) {
      LeasedChannel first = connector.dial(ADDRESS);
      FakeCall<?, ?> call = FakeCall.startOn(first);
      dialer.behaviour =
          address -> {
            throw new IOException("refused");
          };
      try (LeasedChannel second = connector.dial(ADDRESS)) {
        assertThat(second.entry)
            .as("the full channel, where its call queues")
            .isSameAs(first.entry);
      }
      assertThat(dialer.dials).hasValue(2);
      assertThat(connector.connections()).hasSize(1);
      call.end();
      first.close();
    }
  }

  /**
   * An extra channel whose dial hangs while its address is detached stays where expire() finds it:
   * it is abandoned past the dial timeout, and the detached first channel, kept open by it, closes.
   */
  @Test
  void anExtraChannelHungWhileItsAddressIsDetachedIsAbandonedByExpiryAndTheAddressCloses() {
    TrackingDialer dialer = TrackingDialer.fake();
    CachingConnector connector =
        oneCallPerChannel(dialer).dialTimeout(Duration.ofMillis(200)).build();
    try {
      LeasedChannel first = connector.dial(ADDRESS);
      FakeCall<?, ?> call = FakeCall.startOn(first); // the first channel is full
      hangUninterruptibly(dialer);
      // Opens an extra channel, gives up on it, and settles on the full one.
      try (LeasedChannel second = connector.dial(ADDRESS, Duration.ofMillis(20))) {
        assertThat(second.entry).isSameAs(first.entry);
      }
      assertThat(dialer.dials).hasValue(2);
      call.end();
      first.close();
      assertThat(connector.closeOnRelease(ADDRESS)).isTrue();

      await()
          .atMost(Duration.ofSeconds(30))
          .untilAsserted(
              () -> {
                connector.expire();
                assertThat(dialer.created.get(0).shutdowns)
                    .as("the detached first channel, once the hung extra dial is abandoned")
                    .hasValue(1);
              });
      assertThat(connector.connectionCount()).isZero();
      assertThat(connector.connections()).isEmpty();
    } finally {
      release.countDown();
      connector.close();
    }
  }

  /**
   * close() fails at once a caller waiting for the extra channel of a detached address, rather than
   * leaving it to wait for its own bound or the dialer.
   */
  @Test
  void closeFailsAtOnceACallerWaitingForTheExtraChannelOfADetachedAddress() throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    CachingConnector connector = oneCallPerChannel(dialer).build();
    LeasedChannel first = connector.dial(ADDRESS);
    FakeCall<?, ?> call = FakeCall.startOn(first);
    Entry firstChannel = first.entry;
    hangUninterruptibly(dialer);
    Future<LeasedChannel> waiter =
        callers.submit(() -> connector.dial(ADDRESS, Duration.ofHours(1)));
    await()
        .untilAsserted(
            () -> {
              Entry growing = AddressPool.growing(firstChannel);
              assertThat(growing).isNotNull();
              PendingDial pending = requireNonNull(growing).pendingDial();
              assertThat(pending).isNotNull();
              assertThat(requireNonNull(pending).waiterCount()).isEqualTo(1);
            });
    call.end();
    first.close();
    assertThat(connector.closeOnRelease(ADDRESS)).isTrue();

    connector.close();

    assertThatThrownBy(() -> waiter.get(30, TimeUnit.SECONDS))
        .hasCauseInstanceOf(IllegalStateException.class)
        .cause()
        .hasMessageContaining("closed");
    assertThat(dialer.created.get(0).shutdowns).hasValue(1);
  }

  /**
   * A dial waiting for the extra channel another dial opened gets it once it is published, if it
   * has room: two calls per channel here, since the opener's lease counts on the new channel from
   * its publication (load counted at the pick).
   */
  @Test
  void dialsThatFindAllChannelsFullWaitForTheExtraChannelInFlight() throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector = oneCallPerChannel(dialer).maxCallsPerChannel(2).build()) {
      LeasedChannel first = connector.dial(ADDRESS);
      FakeCall<?, ?> covered = FakeCall.startOn(first);
      FakeCall<?, ?> uncovered = FakeCall.startOn(first); // the lease covers one call: load 2
      dialer.holdDials(address -> {});
      Future<LeasedChannel> opener = callers.submit(() -> connector.dial(ADDRESS));
      assertThat(dialer.dialing.await(30, TimeUnit.SECONDS)).isTrue();
      Future<LeasedChannel> waiter = callers.submit(() -> connector.dial(ADDRESS));
      Entry growing = requireNonNull(AddressPool.growing(first.entry));
      await() // the opener and the waiter
          .untilAsserted(
              () -> assertThat(requireNonNull(growing.pendingDial()).waiterCount()).isEqualTo(2));

      dialer.proceed.countDown();

      try (LeasedChannel opened = opener.get(30, TimeUnit.SECONDS);
          LeasedChannel waited = waiter.get(30, TimeUnit.SECONDS)) {
        assertThat(opened.entry).isSameAs(growing);
        assertThat(waited.entry).as("the new channel had room").isSameAs(growing);
        assertThat(growing.load()).isEqualTo(2);
      }
      assertThat(dialer.dials).hasValue(2);
      covered.end();
      uncovered.end();
      first.close();
    }
  }

  /** A waiter's own bound passing while it waits for an extra channel: it takes a full one. */
  @Test
  void aDialWhoseBoundPassesWhileWaitingForTheExtraChannelLeasesAFullOne() throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector = oneCallPerChannel(dialer).build()) {
      ExtraDialHeld held = fillTheChannelAndHoldTheExtraDial(connector, dialer);

      try (LeasedChannel settled = connector.dial(ADDRESS, Duration.ofMillis(1))) {
        assertThat(settled.entry).isSameAs(held.first().entry);
      }

      held.finish(dialer);
    }
  }

  @Test
  void anInterruptWhileWaitingForTheExtraChannelGivesCancelledAndKeepsTheFlag() throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector = oneCallPerChannel(dialer).build()) {
      ExtraDialHeld held = fillTheChannelAndHoldTheExtraDial(connector, dialer);

      Thread.currentThread().interrupt();
      try {
        assertThatThrownBy(() -> connector.dial(ADDRESS))
            .isInstanceOfSatisfying(
                StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED));
        assertThat(Thread.currentThread().isInterrupted()).isTrue();
      } finally {
        Thread.interrupted();
      }

      held.finish(dialer);
    }
  }

  /**
   * Callers waiting for an extra channel whose dial fails lease the full channel at once: none of
   * them starts the next extra dial, so the dialer runs once for the eight of them, not once each.
   */
  @Test
  void callersOfAFullAddressWhoseExtraDialFailsLeaseTheFullChannelAtOnce() throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    CountDownLatch fail = new CountDownLatch(1);
    CachingConnector connector = oneCallPerChannel(dialer).build();
    try {
      LeasedChannel first = connector.dial(ADDRESS);
      FakeCall<?, ?> call = FakeCall.startOn(first); // the first channel is full
      dialer.behaviour =
          address -> {
            fail.await();
            throw new IllegalStateException("the extra channel's backend refused");
          };
      List<Future<LeasedChannel>> callers8 = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        callers8.add(callers.submit(() -> connector.dial(ADDRESS)));
      }
      await()
          .untilAsserted(
              () -> {
                Entry growing = AddressPool.growing(first.entry);
                assertThat(growing).isNotNull();
                PendingDial pending = requireNonNull(growing).pendingDial();
                assertThat(pending).isNotNull();
                assertThat(requireNonNull(pending).waiterCount()).isEqualTo(8);
              });

      fail.countDown();

      for (Future<LeasedChannel> caller : callers8) {
        try (LeasedChannel lease = caller.get(30, TimeUnit.SECONDS)) {
          assertThat(lease.entry).isSameAs(first.entry);
        }
      }
      assertThat(dialer.dialsOf(ADDRESS)).as("the first channel and one extra").isEqualTo(2);
      call.end();
      first.close();
    } finally {
      connector.close();
    }
  }

  /** The same when the extra dial hangs: it is abandoned once, at the dial timeout, for all. */
  @Test
  void callersOfAFullAddressWhoseExtraDialHangsAreServedAtTheDialTimeoutAllTogether()
      throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    CachingConnector connector =
        oneCallPerChannel(dialer).dialTimeout(Duration.ofSeconds(1)).build();
    try {
      LeasedChannel first = connector.dial(ADDRESS);
      FakeCall<?, ?> call = FakeCall.startOn(first);
      hangUninterruptibly(dialer);
      List<Future<LeasedChannel>> callers8 = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        callers8.add(callers.submit(() -> connector.dial(ADDRESS)));
      }

      for (Future<LeasedChannel> caller : callers8) {
        try (LeasedChannel lease = caller.get(30, TimeUnit.SECONDS)) {
          assertThat(lease.entry).isSameAs(first.entry);
        }
      }
      // Callers that arrived after the abandonment may have tried once more; never one each.
      assertThat(dialer.dialsOf(ADDRESS)).isLessThan(1 + 8);
      call.end();
      first.close();
    } finally {
      connector.close();
    }
  }
}
