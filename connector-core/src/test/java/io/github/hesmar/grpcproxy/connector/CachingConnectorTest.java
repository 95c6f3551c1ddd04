package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.CallOptions;
import io.grpc.ClientStreamTracer;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * One test per rule (1-7) and per error rule of docs/design.md, with leases carrying real calls to
 * an in-process server with the health service.
 */
class CachingConnectorTest {

  @RegisterExtension final HealthBackend backend = new HealthBackend();

  final FakeClock clock = new FakeClock();
  final List<String> connects = new CopyOnWriteArrayList<>();
  final List<String> misses = new CopyOnWriteArrayList<>();
  final List<Integer> counts = new CopyOnWriteArrayList<>();
  final List<String> closes = new CopyOnWriteArrayList<>();
  final List<String> queuedCalls = new CopyOnWriteArrayList<>();
  TrackingDialer dialer;
  CachingConnector connector;

  @BeforeEach
  void setUp() {
    dialer = TrackingDialer.inProcess(backend.name());
    connector = newConnector(dialer);
  }

  @AfterEach
  void tearDown() {
    connector.close();
  }

  CachingConnector newConnector(Dialer dialer) {
    return CachingConnector.builder()
        .dialer(dialer)
        .clock(clock)
        .scheduler(clock.scheduler())
        .shutdownGracePeriod(Duration.ofSeconds(5))
        .onConnect(connects::add)
        .onCacheMiss(misses::add)
        .onConnectionCountUpdate(counts::add)
        .listener(
            new ConnectorListener() {
              @Override
              public void onClose(String address, CloseCause cause) {
                closes.add(address + ":" + cause);
              }

              @Override
              public void onCallQueued(String address, Duration queued) {
                queuedCalls.add(address);
              }
            })
        .build();
  }

  @Nested
  class Rule1DialLeasesTheCachedChannel {

    @Test
    void dialOfCachedAddressReusesChannel() {
      LeasedChannel first = connector.dial("alpha");
      LeasedChannel second = connector.dial("alpha");

      assertThat(HealthBackend.check(first)).isEqualTo(ServingStatus.SERVING);
      assertThat(HealthBackend.check(second)).isEqualTo(ServingStatus.SERVING);
      assertThat(dialer.dialsOf("alpha")).isEqualTo(1);
      assertThat(first).isNotSameAs(second);
      assertThat(connector.connections())
          .singleElement()
          .satisfies(info -> assertThat(info.leases()).isEqualTo(2));
    }

    @Test
    void dialsOfDifferentAddressesCreateDifferentChannels() {
      try (LeasedChannel alpha = connector.dial("alpha");
          LeasedChannel beta = connector.dial("beta")) {
        assertThat(HealthBackend.check(alpha)).isEqualTo(ServingStatus.SERVING);
        assertThat(HealthBackend.check(beta)).isEqualTo(ServingStatus.SERVING);
      }
      assertThat(dialer.created).extracting(c -> c.address).containsExactly("alpha", "beta");
      assertThat(connector.connectionCount()).isEqualTo(2);
    }

    @Test
    void onConnectFiresOnEveryDialAndOnCacheMissOncePerChannel() {
      connector.dial("alpha").close();
      connector.dial("alpha").close();
      connector.dial("beta").close();

      assertThat(connects).containsExactly("alpha", "alpha", "beta");
      assertThat(misses).containsExactly("alpha", "beta");
    }
  }

  @Nested
  class Rule2EachDialIsReleasedOnce {

    @Test
    void leaseCanBeReleasedByCloseShutdownOrRelease() {
      LeasedChannel byClose = connector.dial("alpha");
      LeasedChannel byShutdown = connector.dial("alpha");
      LeasedChannel byShutdownNow = connector.dial("alpha");
      LeasedChannel byRelease = connector.dial("alpha");
      assertThat(connector.leaseCount()).isEqualTo(4);

      byClose.close();
      byShutdown.shutdown();
      byShutdownNow.shutdownNow();
      connector.release("alpha", byRelease);

      assertThat(connector.leaseCount()).isZero();
      assertThat(List.of(byClose, byShutdown, byShutdownNow, byRelease))
          .allSatisfy(lease -> assertThat(lease.isShutdown()).isTrue());
    }

    @Test
    void secondReleaseOfSameLeaseIsNoOp() {
      LeasedChannel held = connector.dial("alpha");
      LeasedChannel released = connector.dial("alpha");

      released.close();
      released.close();
      connector.release("alpha", released);
      released.shutdown();

      assertThat(connector.connections())
          .singleElement()
          .satisfies(info -> assertThat(info.leases()).isEqualTo(1));
      assertThat(HealthBackend.check(held)).isEqualTo(ServingStatus.SERVING);
    }

    @Test
    void releasedLeaseRefusesNewCalls() {
      LeasedChannel lease = connector.dial("alpha");
      lease.close();

      assertThatThrownBy(() -> HealthBackend.check(lease))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("alpha")
          .hasMessageContaining("released");
    }

    @Test
    void callStartedBeforeReleaseRunsToCompletion() throws Exception {
      LeasedChannel lease = connector.dial("alpha");
      var future =
          HealthGrpc.newFutureStub(lease)
              .withDeadlineAfter(10, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance());
      lease.close();

      assertThat(future.get().getStatus()).isEqualTo(ServingStatus.SERVING);
    }
  }

  @Nested
  class Rule3ExpireClosesUnusedChannels {

    @Test
    void channelUnusedForTwoPassesIsClosed() {
      connector.dial("alpha").close();

      assertThat(connector.expire()).isEmpty();
      assertThat(connector.connections())
          .singleElement()
          .extracting(ConnectionInfo::idlePasses)
          .isEqualTo(1);
      assertThat(connector.expire()).containsExactly("alpha");

      assertThat(connector.connections()).isEmpty();
      assertThat(dialer.created)
          .singleElement()
          .satisfies(
              c -> {
                assertThat(c.shutdowns).hasValue(1);
              });
      assertThat(closes).containsExactly("alpha:EXPIRED");
    }

    @Test
    void leasedChannelIsNeverExpired() {
      LeasedChannel lease = connector.dial("alpha");
      for (int pass = 0; pass < 5; pass++) {
        assertThat(connector.expire()).isEmpty();
      }
      assertThat(HealthBackend.check(lease)).isEqualTo(ServingStatus.SERVING);
      lease.close();
    }

    @Test
    void dialBetweenPassesKeepsChannelOpen() {
      connector.dial("alpha").close();
      for (int pass = 0; pass < 5; pass++) {
        assertThat(connector.expire()).isEmpty();
        connector.dial("alpha").close();
      }
      assertThat(dialer.dialsOf("alpha")).isEqualTo(1);
    }

    @Test
    void aCallOutlivingItsLeaseKeepsItsChannelOpenUntilItEnds() throws Exception {
      LeasedChannel lease = connector.dial("alpha");
      Watch watch = Watch.start(lease);
      lease.close();

      for (int pass = 0; pass < 5; pass++) {
        assertThat(connector.expire()).isEmpty();
      }
      assertThat(connector.callCount()).isEqualTo(1);
      assertThat(connector.connections())
          .singleElement()
          .satisfies(
              info -> {
                assertThat(info.leases()).isZero();
                assertThat(info.calls()).isEqualTo(1);
                assertThat(info.idlePasses()).isZero();
              });
      assertThat(dialer.created.get(0).shutdowns).hasValue(0);
      assertThat(watch.ended).isNotDone();

      watch.cancel();

      assertThat(watch.ended.get(10, TimeUnit.SECONDS).getCode()).isEqualTo(Status.Code.CANCELLED);
      assertThat(connector.callCount()).isZero();
      assertThat(connector.expire()).isEmpty();
      assertThat(connector.expire()).containsExactly("alpha");
      assertThat(dialer.created.get(0).shutdowns).hasValue(1);
    }
  }

  @Nested
  class Rule4CloseOnReleaseDetachesTheChannel {

    @Test
    void nextDialCreatesNewChannelAndOldClosesAfterLastRelease() {
      LeasedChannel old = connector.dial("alpha");

      assertThat(connector.closeOnRelease("alpha")).isTrue();
      LeasedChannel fresh = connector.dial("alpha");

      assertThat(dialer.dialsOf("alpha")).isEqualTo(2);
      assertThat(connector.connections())
          .extracting(ConnectionInfo::closing)
          .containsExactlyInAnyOrder(true, false);
      assertThat(connector.expire()).isEmpty();
      assertThat(HealthBackend.check(old)).isEqualTo(ServingStatus.SERVING);

      old.close();
      assertThat(connector.expire()).containsExactly("alpha");
      assertThat(dialer.created.get(0).shutdowns).hasValue(1);
      assertThat(dialer.created.get(1).shutdowns).hasValue(0);
      assertThat(HealthBackend.check(fresh)).isEqualTo(ServingStatus.SERVING);
      assertThat(closes).containsExactly("alpha:RELEASED");
      fresh.close();
    }

    @Test
    void closeOnReleaseOfUnknownAddressReturnsFalse() {
      assertThat(connector.closeOnRelease("alpha")).isFalse();
    }
  }

  @Nested
  class Rule5CountFollowsOpenChannels {

    @Test
    void countCallbackFiresUpAndDown() {
      connector.dial("alpha").close();
      connector.dial("beta").close();
      connector.expire();
      connector.expire();

      assertThat(counts).containsExactly(1, 2, 1, 0);
      assertThat(connector.connectionCount()).isZero();
    }

    @Test
    void countIncludesChannelsPendingClose() {
      LeasedChannel old = connector.dial("alpha");
      connector.closeOnRelease("alpha");
      connector.dial("alpha").close();

      assertThat(connector.connectionCount()).isEqualTo(2);
      old.close();
      connector.expire();
      assertThat(connector.connectionCount()).isEqualTo(1);
      assertThat(counts).containsExactly(1, 2, 1);
    }
  }

  @Nested
  class Rule6ShutDownChannelIsNeverHandedOut {

    @Test
    void channelShutDownByOthersIsReplaced() {
      connector.dial("alpha").close();
      TrackedChannel first = dialer.created.get(0);
      first.shutdown();

      LeasedChannel lease = connector.dial("alpha");

      assertThat(dialer.dialsOf("alpha")).isEqualTo(2);
      assertThat(HealthBackend.check(lease)).isEqualTo(ServingStatus.SERVING);
      lease.close();
      assertThat(connector.expire()).containsExactly("alpha");
      assertThat(closes).containsExactly("alpha:STALE");
      assertThat(connector.connectionCount()).isEqualTo(1);
    }

    @Test
    void channelShutDownByOthersWhileIdleIsDroppedByExpire() {
      connector.dial("alpha").close();
      dialer.created.get(0).shutdown();

      assertThat(connector.expire()).containsExactly("alpha");
      assertThat(connector.connectionCount()).isZero();
    }
  }

  @Nested
  class Rule7CloseShutsEverythingDown {

    @Test
    void closeShutsDownLeasedAndIdleChannels() {
      LeasedChannel leased = connector.dial("alpha");
      connector.dial("beta").close();
      LeasedChannel detached = connector.dial("gamma");
      connector.closeOnRelease("gamma");

      connector.close();

      assertThat(dialer.created).allSatisfy(c -> assertThat(c.shutdowns).hasValue(1));
      assertThat(connector.connectionCount()).isZero();
      assertThat(counts).last().isEqualTo(0);
      leased.close();
      connector.release("gamma", detached);
      assertThat(connector.connectionCount()).isZero();
    }

    @Test
    void closeForcesChannelsThatAnExpiryPassClosedAndThatAreStillDraining() {
      TrackingDialer lingering = TrackingDialer.lingering(); // terminate only when forced
      CachingConnector draining =
          CachingConnector.builder()
              .dialer(lingering)
              .scheduler(clock.scheduler()) // the forced shutdown after the grace: never, here
              .shutdownGracePeriod(Duration.ofMillis(200))
              .build();
      draining.dial("alpha").close();
      draining.expire();
      assertThat(draining.expire()).containsExactly("alpha");
      TrackedChannel channel = lingering.created.get(0);
      assertThat(channel.isTerminated()).isFalse();

      draining.close();

      assertThat(channel.shutdowns).hasValue(1);
      assertThat(channel.shutdownNows).hasValue(1);
      clock.forward(Duration.ofSeconds(1)); // the forced shutdown the pass scheduled: a no-op now
      assertThat(channel.shutdownNows).hasValue(1);
    }

    @Test
    void closeEndsTheThreadsTheConnectorStarted() {
      Set<Thread> before = Thread.getAllStackTraces().keySet();
      // A channel that terminates only when forced: expiry keeps it draining, on the scheduler.
      CachingConnector ownThreads =
          CachingConnector.builder().dialer(TrackingDialer.lingering()).build();
      ownThreads.dial("alpha").close();
      ownThreads.expire();
      assertThat(ownThreads.expire()).containsExactly("alpha"); // schedules a look at it
      Set<Thread> started = new HashSet<>(Thread.getAllStackTraces().keySet());
      started.removeAll(before);
      started.removeIf(thread -> !thread.getName().startsWith("grpc-connector-"));
      assertThat(started).extracting(Thread::getName).anyMatch(name -> name.contains("scheduler"));

      ownThreads.close();

      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(() -> assertThat(started).noneMatch(Thread::isAlive));
    }

    @Test
    void dialAfterCloseThrowsIllegalState() {
      connector.close();
      connector.close();

      assertThatThrownBy(() -> connector.dial("alpha"))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("closed");
      assertThat(dialer.dials).hasValue(0);
    }

    @Test
    void callsOnLeaseOfClosedConnectorFail() {
      LeasedChannel lease = connector.dial("alpha");
      connector.close();

      assertThatThrownBy(() -> HealthBackend.check(lease))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
    }
  }

  @Nested
  class Errors {

    @Test
    void nullAddressIsNamed() {
      assertThatThrownBy(() -> connector.dial(null))
          .isInstanceOf(NullPointerException.class)
          .hasMessage("address");
      assertThatThrownBy(() -> connector.dial("alpha", null))
          .isInstanceOf(NullPointerException.class)
          .hasMessage("timeout");
    }

    @Test
    void nonPositiveTimeoutIsRejected() {
      assertThatThrownBy(() -> connector.dial("alpha", Duration.ZERO))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("timeout must be positive");
      assertThat(dialer.dials).hasValue(0);
    }

    @Test
    void failingDialerGivesUnavailableWithCauseAndNothingIsCached() {
      IllegalStateException boom = new IllegalStateException("no route to alpha");
      dialer.behaviour =
          address -> {
            throw boom;
          };

      assertThatThrownBy(() -> connector.dial("alpha"))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                assertThat(e.getStatus().getDescription()).contains("alpha");
              })
          .hasRootCause(boom);
      assertThat(dialer.dials).as("one dial() calls a failing dialer once").hasValue(1);
      assertThat(connector.connections()).isEmpty();
      assertThat(connector.connectionCount()).isZero();

      dialer.behaviour = address -> {};
      try (LeasedChannel lease = connector.dial("alpha")) {
        assertThat(HealthBackend.check(lease)).isEqualTo(ServingStatus.SERVING);
      }
    }

    @Test
    void dialerReturningNullGivesUnavailable() {
      try (CachingConnector nulls = newConnector(address -> null)) {
        assertThatThrownBy(() -> nulls.dial("alpha"))
            .isInstanceOfSatisfying(
                StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE))
            .hasRootCauseInstanceOf(NullPointerException.class);
        assertThat(nulls.connections()).isEmpty();
      }
    }

    @Test
    void throwingCallbacksAreLoggedAndNeverBreakTheConnector() {
      List<String> seen = new CopyOnWriteArrayList<>();
      try (CachingConnector noisy =
          CachingConnector.builder()
              .dialer(dialer)
              .scheduler(clock.scheduler())
              .onConnect(
                  a -> {
                    throw new IllegalStateException("onConnect");
                  })
              .onCacheMiss(
                  a -> {
                    throw new IllegalStateException("onCacheMiss");
                  })
              .onConnectionCountUpdate(
                  c -> {
                    throw new IllegalStateException("onConnectionCountUpdate");
                  })
              .listener(
                  new ConnectorListener() {
                    @Override
                    public void onClose(String address, CloseCause cause) {
                      throw new IllegalStateException("onClose");
                    }
                  })
              .onConnectionCountUpdate(c -> seen.add("count " + c))
              .build()) {
        try (LeasedChannel lease = noisy.dial("alpha")) {
          assertThat(HealthBackend.check(lease)).isEqualTo(ServingStatus.SERVING);
        }
        noisy.expire();
        assertThat(noisy.expire()).containsExactly("alpha");
        // The count may be delivered by another thread (see onConnectionCountUpdate): await it.
        org.awaitility.Awaitility.await()
            .untilAsserted(() -> assertThat(seen).containsExactly("count 1", "count 0"));
      }
    }

    @Test
    void releaseOfForeignChannelIsRejected() {
      LeasedChannel lease = connector.dial("alpha");
      ManagedChannel foreign = io.grpc.inprocess.InProcessChannelBuilder.forName("x").build();
      try (CachingConnector other = newConnector(dialer)) {
        LeasedChannel otherLease = other.dial("alpha");

        assertThatThrownBy(() -> connector.release("alpha", foreign))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("not a lease of this CachingConnector");
        assertThatThrownBy(() -> connector.release("alpha", otherLease))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("not a lease of this CachingConnector");
        assertThatThrownBy(() -> connector.release("beta", lease))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("was dialed for alpha, not beta");
        assertThatThrownBy(() -> connector.release("alpha", null))
            .isInstanceOf(NullPointerException.class)
            .hasMessage("channel");
        otherLease.close();
      } finally {
        foreign.shutdownNow();
      }
      assertThat(connector.leaseCount()).isEqualTo(1);
      lease.close();
    }
  }

  @Nested
  class Snapshot {

    @Test
    void connectionsReportLeasesStateAndTimes() {
      Instant created = clock.instant();
      LeasedChannel lease = connector.dial("beta");
      HealthBackend.check(lease);
      connector.dial("alpha").close();
      clock.forward(Duration.ofSeconds(7));
      connector.expire();
      connector.dial("alpha").close();

      List<ConnectionInfo> infos = connector.connections();

      assertThat(infos).extracting(ConnectionInfo::address).containsExactly("alpha", "beta");
      ConnectionInfo alpha = infos.get(0);
      assertThat(alpha.leases()).isZero();
      assertThat(alpha.idlePasses()).isZero();
      assertThat(alpha.closing()).isFalse();
      assertThat(alpha.createdAt()).isEqualTo(created);
      assertThat(alpha.lastDialedAt()).isEqualTo(created.plusSeconds(7));
      ConnectionInfo beta = infos.get(1);
      assertThat(beta.leases()).isEqualTo(1);
      assertThat(beta.state()).isEqualTo(ConnectivityState.READY);
      assertThat(beta.queued()).isZero();
      assertThat(beta.limit()).isEqualTo(100);
      lease.close();
    }

    @Test
    void aCallOnALeaseCarriesTheConnectorsStreamTracerAfterTheCallersOwn() {
      List<String> seen = new CopyOnWriteArrayList<>();
      ClientStreamTracer.Factory own =
          new ClientStreamTracer.Factory() {
            @Override
            public ClientStreamTracer newClientStreamTracer(
                ClientStreamTracer.StreamInfo info, Metadata headers) {
              return new ClientStreamTracer() {
                @Override
                public void outboundHeaders() {
                  seen.add("headers");
                }
              };
            }
          };

      try (LeasedChannel lease = connector.dial("alpha")) {
        ClientCalls.blockingUnaryCall(
            lease,
            HealthGrpc.getCheckMethod(),
            CallOptions.DEFAULT.withStreamTracerFactory(own),
            HealthCheckRequest.getDefaultInstance());
      }

      assertThat(seen).containsExactly("headers");
      assertThat(queuedCalls).as("the connector's tracer too").containsExactly("alpha");
      assertThat(connector.queuedCallCount()).isZero();
    }
  }

  /** A health Watch in flight, which the test can cancel from the client side. */
  record Watch(CompletableFuture<Status> ended, Runnable canceller) {

    /** Starts a Watch over {@code channel} and returns once its first response arrived. */
    static Watch start(ManagedChannel channel) throws InterruptedException {
      CountDownLatch watching = new CountDownLatch(1);
      CompletableFuture<Status> ended = new CompletableFuture<>();
      CompletableFuture<ClientCallStreamObserver<?>> call = new CompletableFuture<>();
      HealthGrpc.newStub(channel)
          .watch(
              HealthCheckRequest.getDefaultInstance(),
              new ClientResponseObserver<HealthCheckRequest, HealthCheckResponse>() {
                @Override
                public void beforeStart(ClientCallStreamObserver<HealthCheckRequest> stream) {
                  call.complete(stream);
                }

                @Override
                public void onNext(HealthCheckResponse response) {
                  watching.countDown();
                }

                @Override
                public void onError(Throwable t) {
                  ended.complete(Status.fromThrowable(t));
                }

                @Override
                public void onCompleted() {
                  ended.complete(Status.OK);
                }
              });
      assertThat(watching.await(10, TimeUnit.SECONDS)).isTrue();
      return new Watch(ended, () -> call.join().cancel("cancelled by the test", null));
    }

    void cancel() {
      canceller.run();
    }
  }
}
