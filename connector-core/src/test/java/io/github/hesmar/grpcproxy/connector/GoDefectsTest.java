package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * One test per defect of the Go original that the connector must not repeat; each fails against the
 * Go behaviour. The default-dialer defect (no transport security) is pinned by {@link
 * DefaultDialerTest}.
 */
class GoDefectsTest {

  @RegisterExtension final HealthBackend backend = new HealthBackend();

  final ExecutorService threads = Executors.newCachedThreadPool();
  final List<Integer> counts = new CopyOnWriteArrayList<>();

  @AfterEach
  void tearDown() {
    threads.shutdownNow();
  }

  CachingConnector.Builder builder(Dialer dialer) {
    return CachingConnector.builder()
        .dialer(dialer)
        .shutdownGracePeriod(Duration.ZERO)
        .onConnectionCountUpdate(counts::add);
  }

  /** Go: Release after CloseOnRelease never decrements (the entry left the map): never closed. */
  @Test
  void channelReleasedAfterCloseOnReleaseIsClosed() {
    TrackingDialer dialer = TrackingDialer.inProcess(backend.name());
    try (CachingConnector connector = builder(dialer).build()) {
      LeasedChannel lease = connector.dial("alpha");
      connector.closeOnRelease("alpha");
      connector.release("alpha", lease);

      assertThat(connector.expire()).containsExactly("alpha");
      assertThat(dialer.created.get(0).shutdowns).hasValue(1);
      assertThat(connector.connectionCount()).isZero();
    }
  }

  /** Go: an extra Release drives the count negative, closing a channel someone still uses. */
  @Test
  void extraReleaseNeverClosesChannelInUse() {
    TrackingDialer dialer = TrackingDialer.inProcess(backend.name());
    try (CachingConnector connector = builder(dialer).build()) {
      LeasedChannel first = connector.dial("alpha");
      LeasedChannel second = connector.dial("alpha");

      first.close();
      connector.release("alpha", first);
      first.shutdown();
      for (int pass = 0; pass < 3; pass++) {
        assertThat(connector.expire()).isEmpty();
      }

      assertThat(dialer.created.get(0).shutdowns).hasValue(0);
      assertThat(HealthBackend.check(second)).isEqualTo(ServingStatus.SERVING);
      assertThat(connector.leaseCount()).isEqualTo(1);
      second.close();
    }
  }

  /** Go: OnConnectionCountUpdate fires only when a channel opens, never when one closes. */
  @Test
  void countCallbackFiresWhenChannelsClose() {
    TrackingDialer dialer = TrackingDialer.inProcess(backend.name());
    try (CachingConnector connector = builder(dialer).build()) {
      connector.dial("alpha").close();
      connector.expire();
      connector.expire();

      assertThat(counts).containsExactly(1, 0);
      assertThat(connector.connectionCount()).isZero();
    }
  }

  /** Go: waiters share the first caller's context: its cancellation fails the others. */
  @Test
  void cancellingFirstCallerDoesNotFailOtherWaiters() throws Exception {
    TrackingDialer dialer = TrackingDialer.inProcess(backend.name());
    dialer.holdDials(address -> {});
    AtomicInteger connects = new AtomicInteger();
    try (CachingConnector connector =
        builder(dialer).onConnect(a -> connects.incrementAndGet()).build()) {
      Context.CancellableContext firstContext = Context.current().withCancellation();
      Future<LeasedChannel> first =
          threads.submit(() -> firstContext.call(() -> connector.dial("alpha")));
      assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
      Future<LeasedChannel> second =
          threads.submit(() -> connector.dial("alpha", Duration.ofMinutes(1)));
      await().until(() -> connects.get() == 2);

      firstContext.cancel(new RuntimeException("first caller gave up"));

      assertThatThrownBy(first::get)
          .cause()
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED));
      assertThat(second).isNotDone();
      dialer.proceed.countDown();
      try (LeasedChannel lease = second.get(10, TimeUnit.SECONDS)) {
        assertThat(HealthBackend.check(lease)).isEqualTo(ServingStatus.SERVING);
      }
      assertThat(dialer.dials).hasValue(1);
    }
  }

  /** Go: no caller can wait less than the first caller (all share its context). */
  @Test
  void laterCallerWaitsOnlyForItsOwnTimeout() throws Exception {
    TrackingDialer dialer = TrackingDialer.inProcess(backend.name());
    dialer.holdDials(address -> {});
    try (CachingConnector connector = builder(dialer).build()) {
      Future<LeasedChannel> patient = threads.submit(() -> connector.dial("alpha"));
      assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();

      assertThatThrownBy(() -> connector.dial("alpha", Duration.ofMillis(50)))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));

      assertThat(patient).isNotDone();
      dialer.proceed.countDown();
      patient.get(10, TimeUnit.SECONDS).close();
    }
  }

  /** Go: Expire holds the global lock while it scans, so every Dial waits for the whole pass. */
  @Test
  void dialsProceedWhileExpireIsInProgress() throws Exception {
    CountDownLatch expireInsidePass = new CountDownLatch(1);
    CountDownLatch finishPass = new CountDownLatch(1);
    TrackingDialer dialer = TrackingDialer.inProcess(backend.name());
    ConnectorListener blockingOnClose =
        new ConnectorListener() {
          @Override
          public void onClose(String address, CloseCause cause) {
            expireInsidePass.countDown();
            try {
              finishPass.await();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          }
        };
    try (CachingConnector connector = builder(dialer).listener(blockingOnClose).build()) {
      connector.dial("idle").close();
      LeasedChannel busy = connector.dial("busy");
      connector.expire();
      Future<List<String>> pass = threads.submit(connector::expire);
      assertThat(expireInsidePass.await(10, TimeUnit.SECONDS)).isTrue();

      try (LeasedChannel hit = connector.dial("busy");
          LeasedChannel miss = connector.dial("fresh")) {
        assertThat(HealthBackend.check(hit)).isEqualTo(ServingStatus.SERVING);
        assertThat(HealthBackend.check(miss)).isEqualTo(ServingStatus.SERVING);
      }

      assertThat(pass).isNotDone();
      finishPass.countDown();
      assertThat(pass.get(10, TimeUnit.SECONDS)).containsExactly("idle");
      busy.close();
    }
  }

  /**
   * Go: under concurrent CloseOnRelease and Expire, Dial hands out closed channels (over 100,000
   * times in a 4-second run) and fails spuriously with "connection reservation timeout".
   */
  @Test
  void dialNeverHandsOutClosedChannelUnderConcurrentCloseOnReleaseAndExpire() throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    try (CachingConnector connector = builder(dialer).build()) {
      AtomicBoolean churnDone = new AtomicBoolean();
      AtomicLong closedHandedOut = new AtomicLong();
      AtomicLong leases = new AtomicLong();
      AtomicInteger detaches = new AtomicInteger();
      List<Future<?>> workers = new ArrayList<>();
      for (int t = 0; t < 3; t++) {
        workers.add(
            threads.submit(
                () -> {
                  // Dials until the churn is over, and at least 1,000 times.
                  for (int i = 0; i < 1_000 || !churnDone.get(); i++) {
                    try (LeasedChannel lease = connector.dial("alpha")) {
                      if (((TrackedChannel) lease.entry.channel()).shutdowns.get() != 0) {
                        closedHandedOut.incrementAndGet();
                      }
                      leases.incrementAndGet();
                    }
                  }
                  return null;
                }));
      }
      // Churns once the workers hold leases, until it has detached 200 cached channels.
      Future<?> churn =
          threads.submit(
              () -> {
                await().until(() -> leases.get() > 0);
                while (detaches.get() < 200 && !workers.stream().allMatch(Future::isDone)) {
                  if (connector.closeOnRelease("alpha")) {
                    detaches.incrementAndGet();
                  }
                  connector.expire();
                }
                churnDone.set(true);
                return null;
              });
      churn.get(60, TimeUnit.SECONDS);
      for (Future<?> worker : workers) {
        worker.get(60, TimeUnit.SECONDS); // a spurious failure of dial would surface here
      }

      assertThat(closedHandedOut).hasValue(0);
      assertThat(leases.get()).isGreaterThanOrEqualTo(3_000);
      assertThat(dialer.created.size()).isGreaterThanOrEqualTo(200);
    }
  }

  /** Go's docs say "Close must be called on the returned value", contradicting Release. */
  @Test
  void closingALeaseReleasesItAndLeavesTheSharedChannelOpen() {
    TrackingDialer dialer = TrackingDialer.inProcess(backend.name());
    try (CachingConnector connector = builder(dialer).build()) {
      LeasedChannel first = connector.dial("alpha");
      LeasedChannel second = connector.dial("alpha");

      first.close();

      assertThat(first.isShutdown()).isTrue();
      assertThat(dialer.created.get(0).shutdowns).hasValue(0);
      assertThat(HealthBackend.check(second)).isEqualTo(ServingStatus.SERVING);
      assertThat(connector.leaseCount()).isEqualTo(1);
      second.close();
    }
  }
}
