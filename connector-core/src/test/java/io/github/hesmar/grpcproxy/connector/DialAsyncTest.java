package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.nio.NioEventLoopGroup;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The door for event loops (docs/design.md, "16. A door for event loops"): {@code tryDial}, a hit
 * that never dials nor waits, and {@code dialAsync}, a future complete at once on a hit and
 * completed by the dial on a miss, with the bounds and the failures of {@code dial()}, leaving
 * nothing behind when its caller gives up. Dials run on the connector's own dial threads; the test
 * holds them with {@link TrackingDialer#holdDials}.
 */
class DialAsyncTest {

  private final TrackingDialer dialer = TrackingDialer.fake();
  private final AtomicInteger connects = new AtomicInteger();
  private @Nullable CachingConnector connector;

  private CachingConnector connector(CachingConnector.Builder builder) {
    CachingConnector built =
        builder
            .dialer(dialer)
            .shutdownGracePeriod(Duration.ZERO)
            .listener(
                new ConnectorListener() {
                  @Override
                  public void onConnect(String address) {
                    connects.incrementAndGet();
                  }
                })
            .build();
    connector = built;
    return built;
  }

  private CachingConnector connector() {
    return connector(CachingConnector.builder());
  }

  @AfterEach
  void close() {
    dialer.proceed.countDown();
    if (connector != null) {
      connector.close();
    }
  }

  @Test
  void tryDialLeasesACachedChannelAndNeverDials() {
    CachingConnector connector = connector();
    assertThat(connector.tryDial("alpha")).isNull();
    assertThat(dialer.dials).hasValue(0);
    assertThat(connects).hasValue(0); // a try that returns nothing is no dial

    connector.dial("alpha").close();
    LeasedChannel lease = connector.tryDial("alpha");
    assertThat(lease).isNotNull();
    assertThat(connector.leaseCount()).isEqualTo(1);
    assertThat(dialer.dials).hasValue(1);
    assertThat(connects).hasValue(2);
    lease.close();
  }

  @Test
  void tryDialReturnsNothingWhileTheDialIsInFlightAndNeverWaitsForIt() throws Exception {
    CachingConnector connector = connector();
    dialer.holdDials(address -> {});
    CompletableFuture<LeasedChannel> dial = connector.dialAsync("alpha");
    assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();

    assertThat(connector.tryDial("alpha")).isNull();
    dialer.proceed.countDown();
    assertThat(dial.get(10, TimeUnit.SECONDS)).isNotNull();
    dial.get().close();
  }

  @Test
  void tryDialTakesAnotherChannelOfTheAddressWithRoomAndNothingWhenAllAreFull() {
    CachingConnector connector =
        connector(CachingConnector.builder().maxCallsPerChannel(1).maxChannelsPerAddress(2));
    LeasedChannel first = connector.dial("alpha");
    LeasedChannel second = connector.dial("alpha"); // the first is full: a second channel
    assertThat(connector.connections()).hasSize(2);
    second.close();

    LeasedChannel tried = connector.tryDial("alpha");
    assertThat(tried).isNotNull();
    assertThat(tried.entry).isSameAs(second.entry);
    assertThat(connector.tryDial("alpha")).isNull(); // both full
    tried.close();
    first.close();
  }

  @Test
  void badInputIsRejectedAtOnceAndAClosedConnectorSaysSo() {
    CachingConnector connector = connector();
    assertThatThrownBy(() -> connector.tryDial(null)).isInstanceOf(NullPointerException.class);
    assertThatThrownBy(() -> connector.dialAsync(null)).isInstanceOf(NullPointerException.class);
    assertThatThrownBy(() -> connector.tryDial(" ")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> connector.dialAsync("")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> connector.dialAsync("alpha", Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("timeout must be positive");
    assertThat(dialer.dials).hasValue(0);

    connector.close();
    assertThatThrownBy(() -> connector.tryDial("alpha")).isInstanceOf(IllegalStateException.class);
    assertThat(connector.dialAsync("alpha"))
        .failsWithin(Duration.ZERO)
        .withThrowableThat()
        .havingCause()
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void aHitIsCompleteOnReturn() {
    CachingConnector connector = connector();
    connector.dial("alpha").close();
    CompletableFuture<LeasedChannel> hit = connector.dialAsync("alpha");
    assertThat(hit).isCompleted();
    assertThat(connector.leaseCount()).isEqualTo(1);
    hit.join().close();
  }

  @Test
  void aMissCompletesWhenTheDialDoesAndOneDialServesAllItsCallers() throws Exception {
    CachingConnector connector = connector();
    dialer.holdDials(address -> {});
    CompletableFuture<LeasedChannel> own = connector.dialAsync("alpha");
    CompletableFuture<LeasedChannel> other = connector.dialAsync("alpha", Duration.ofSeconds(30));
    assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
    CompletableFuture<LeasedChannel> blocking =
        CompletableFuture.supplyAsync(() -> connector.dial("alpha"));
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> requirePending(connector, "alpha").waiterCount() == 3);
    assertThat(own).isNotDone();
    assertThat(other).isNotDone();

    dialer.proceed.countDown();
    List<LeasedChannel> leases = new ArrayList<>();
    for (CompletableFuture<LeasedChannel> future : List.of(own, other, blocking)) {
      leases.add(future.get(10, TimeUnit.SECONDS));
    }
    assertThat(dialer.dials).hasValue(1);
    assertThat(leases).extracting(lease -> lease.entry).containsOnly(leases.get(0).entry);
    assertThat(connector.leaseCount()).isEqualTo(3);
    assertThat(connects).hasValue(3); // one per call
    leases.forEach(LeasedChannel::close);
    assertThat(connector.leaseCount()).isZero();
  }

  @Test
  void aFailedDialFailsTheFutureAsDialWouldThrow() {
    CachingConnector connector = connector();
    dialer.behaviour =
        address -> {
          throw new IOException("refused");
        };
    CompletableFuture<LeasedChannel> future = connector.dialAsync("alpha");
    assertFailsWith(future, Status.Code.UNAVAILABLE, "alpha", "refused");
    assertThat(connector.connections()).isEmpty();
  }

  @Test
  void aCancelledFutureLeavesNoWaiterAndNoLeaseAndTheChannelIsCached() throws Exception {
    CachingConnector connector = connector();
    dialer.holdDials(address -> {});
    CompletableFuture<LeasedChannel> own = connector.dialAsync("alpha");
    CompletableFuture<LeasedChannel> other = connector.dialAsync("alpha");
    assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
    PendingDial pending = requirePending(connector, "alpha");
    await().atMost(Duration.ofSeconds(10)).until(() -> pending.waiterCount() == 2);

    assertThat(own.cancel(false)).isTrue();
    assertThat(other.cancel(false)).isTrue();
    assertThat(pending.waiterCount()).isZero();

    dialer.proceed.countDown();
    await().atMost(Duration.ofSeconds(10)).until(() -> connector.connectionCount() == 1);
    assertThat(connector.leaseCount()).isZero(); // the reserved lease was given back
    assertThat(connector.connections())
        .singleElement()
        .satisfies(c -> assertThat(c.leases()).isZero());
  }

  @Test
  void pastItsTimeoutTheFutureFailsAndTheDialGoesOnToBeCached() throws Exception {
    CachingConnector connector = connector();
    dialer.holdDials(address -> {});
    CompletableFuture<LeasedChannel> future = connector.dialAsync("alpha", Duration.ofMillis(50));
    assertFailsWith(future, Status.Code.DEADLINE_EXCEEDED, "alpha", "PT0.05S");
    assertThat(requirePending(connector, "alpha").waiterCount()).isZero();

    dialer.proceed.countDown();
    await().atMost(Duration.ofSeconds(10)).until(() -> connector.connectionCount() == 1);
    assertThat(connector.leaseCount()).isZero();
  }

  @Test
  void aDialPastTheDialTimeoutIsAbandonedAndItsFutureFailsWithTheDialTimeout() {
    CachingConnector connector =
        connector(CachingConnector.builder().dialTimeout(Duration.ofMillis(100)));
    dialer.holdDials(address -> {});
    CompletableFuture<LeasedChannel> future = connector.dialAsync("alpha");
    assertFailsWith(future, Status.Code.DEADLINE_EXCEEDED, "dial timeout");
  }

  @Test
  void closeFailsAPendingFutureAtOnce() throws Exception {
    CachingConnector connector = connector();
    dialer.holdDials(address -> {});
    CompletableFuture<LeasedChannel> future = connector.dialAsync("alpha");
    assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
    connector.close();
    assertThat(future)
        .failsWithin(Duration.ZERO)
        .withThrowableThat()
        .havingCause()
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void fromAnEventLoopNeitherDoorWaitsForADialThatBlocks() throws Exception {
    CachingConnector connector = connector();
    connector.dial("cached").close();
    dialer.holdDials(address -> {});
    EventLoopGroup loop = new NioEventLoopGroup(1);
    try {
      AtomicReference<Thread> loopThread = new AtomicReference<>();
      AtomicReference<Thread> completedOn = new AtomicReference<>();
      CountDownLatch returned = new CountDownLatch(1);
      List<CompletableFuture<LeasedChannel>> futures = new ArrayList<>();
      loop.execute(
          () -> {
            loopThread.set(Thread.currentThread());
            CompletableFuture<LeasedChannel> miss = connector.dialAsync("hung");
            miss.thenRun(() -> completedOn.set(Thread.currentThread()));
            futures.add(miss);
            futures.add(connector.dialAsync("hung")); // a second caller of the hung dial
            futures.add(connector.dialAsync("cached"));
            LeasedChannel tried = connector.tryDial("hung");
            if (tried == null) {
              returned.countDown();
            }
          });
      // The dial of "hung" blocks until the test lets it go, which it does only once the loop's
      // task has returned: a door that waited for the dial would never return.
      assertThat(returned.await(10, TimeUnit.SECONDS)).isTrue();
      assertThat(futures.get(0)).isNotDone();
      assertThat(futures.get(2)).isCompleted();
      dialer.proceed.countDown();
      for (CompletableFuture<LeasedChannel> future : futures) {
        future.get(10, TimeUnit.SECONDS).close();
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> completedOn.get() != null);
      assertThat(completedOn.get()).isNotSameAs(loopThread.get());
      assertThat(completedOn.get().getName()).startsWith("grpc-connector-dial-");
    } finally {
      loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }
  }

  @Test
  void aLeaseThatReachesACancelledFutureIsReleased() throws Exception {
    CachingConnector connector = connector();
    dialer.holdDials(address -> {});
    CompletableFuture<LeasedChannel> future = connector.dialAsync("alpha");
    assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
    // The cancellation races the dial's completion: whichever wins, no lease may stay held.
    dialer.proceed.countDown();
    boolean cancelled = future.cancel(false);
    if (!cancelled) {
      future.get(10, TimeUnit.SECONDS).close(); // delivered first: the caller releases it
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> connector.connectionCount() == 1);
    await().atMost(Duration.ofSeconds(10)).until(() -> connector.leaseCount() == 0);
  }

  /** Asserts that {@code future} fails as {@code dial()} would throw: the status and its words. */
  private static void assertFailsWith(
      CompletableFuture<LeasedChannel> future, Status.Code code, String... described) {
    assertThat(future)
        .failsWithin(Duration.ofSeconds(10))
        .withThrowableThat()
        .havingCause()
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(code);
              assertThat(e.getStatus().getDescription()).contains(described);
            });
  }

  private static PendingDial requirePending(CachingConnector connector, String address) {
    PendingDial pending = connector.pendingDial(address);
    assertThat(pending).as("dial of %s in flight", address).isNotNull();
    return pending;
  }
}
