package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnectorTest.Watch;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * One test per item of docs/design.md's "The edges", rule 8 (calls hold their channel) and rule 12
 * (the dial timeout).
 */
class EdgesTest {

  @RegisterExtension final HealthBackend backend = new HealthBackend();

  final List<CachingConnector> connectors = new ArrayList<>();
  final ExecutorService threads = Executors.newCachedThreadPool();

  @AfterEach
  void tearDown() {
    connectors.forEach(CachingConnector::close);
    threads.shutdownNow();
  }

  CachingConnector track(CachingConnector connector) {
    connectors.add(connector);
    return connector;
  }

  /** Runs {@code dial(address)} on a thread of its own. */
  Future<LeasedChannel> dialAsync(CachingConnector connector, String address) {
    return threads.submit(() -> connector.dial(address));
  }

  static Throwable failureOf(Future<?> future) throws Exception {
    try {
      future.get(10, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      return e.getCause();
    }
    throw new AssertionError("expected " + future + " to fail");
  }

  static Status.Code codeOf(Throwable t) {
    assertThat(t).isInstanceOf(StatusRuntimeException.class);
    return ((StatusRuntimeException) t).getStatus().getCode();
  }

  @Nested
  class CallsHoldTheirChannel {

    TrackingDialer dialer;

    @BeforeEach
    void setUp() {
      dialer = TrackingDialer.inProcess(backend.name()); // once the backend has started
    }

    @Test
    void closeOnReleaseClosesAChannelOnlyAfterItsCallsEnd() throws Exception {
      CachingConnector connector = track(dialer.inlineConnector().build());
      LeasedChannel lease = connector.dial("alpha");
      Watch watch = Watch.start(lease);
      lease.close();

      assertThat(connector.closeOnRelease("alpha")).isTrue();
      for (int pass = 0; pass < 3; pass++) {
        assertThat(connector.expire()).isEmpty();
      }
      assertThat(connector.connections())
          .singleElement()
          .satisfies(info -> assertThat(info.closing()).isTrue())
          .satisfies(info -> assertThat(info.calls()).isEqualTo(1));
      assertThat(watch.ended()).isNotDone();

      watch.cancel();
      watch.ended().get(10, TimeUnit.SECONDS);

      assertThat(connector.expire()).containsExactly("alpha");
      assertThat(dialer.created.get(0).shutdowns).hasValue(1);
    }

    @Test
    void closeForcesARunningCallAfterItsGracePeriod() throws Exception {
      CachingConnector connector =
          CachingConnector.builder()
              .dialer(dialer)
              .shutdownGracePeriod(Duration.ofMillis(100))
              .build();
      LeasedChannel lease = connector.dial("alpha");
      Watch watch = Watch.start(lease);
      lease.close();

      connector.close();

      assertThat(watch.ended().get(10, TimeUnit.SECONDS).getCode())
          .isEqualTo(Status.Code.UNAVAILABLE);
      assertThat(dialer.created.get(0).shutdownNows).hasValue(1);
    }

    @Test
    void aCallStartedOnAClosedChannelFailsAtOnceAndOnlyOnce() {
      CachingConnector connector = track(dialer.inlineConnector().build());
      LeasedChannel lease = connector.dial("alpha");
      connector.close();
      ClientCall<HealthCheckRequest, HealthCheckResponse> call =
          lease.newCall(HealthGrpc.getCheckMethod(), CallOptions.DEFAULT);
      List<Status> closedWith = new CopyOnWriteArrayList<>();
      ClientCall.Listener<HealthCheckResponse> listener =
          new ClientCall.Listener<>() {
            @Override
            public void onClose(Status status, io.grpc.Metadata trailers) {
              closedWith.add(status);
            }
          };

      call.start(listener, new io.grpc.Metadata());
      call.request(1); // a no-op on a refused call
      assertThatThrownBy(() -> call.start(listener, new io.grpc.Metadata()))
          .isInstanceOf(IllegalStateException.class);

      assertThat(closedWith)
          .singleElement()
          .satisfies(status -> assertThat(status.getCode()).isEqualTo(Status.Code.UNAVAILABLE));
      assertThat(connector.callCount()).isZero();
    }

    @Test
    void aCallWhoseStartThrowsIsNotCounted() {
      CachingConnector connector = track(dialer.inlineConnector().build());
      LeasedChannel lease = connector.dial("alpha");
      ClientCall<HealthCheckRequest, HealthCheckResponse> call =
          lease.newCall(HealthGrpc.getCheckMethod(), CallOptions.DEFAULT);
      call.start(new ClientCall.Listener<>() {}, new io.grpc.Metadata());
      call.cancel("done", null);

      assertThatThrownBy(() -> call.start(new ClientCall.Listener<>() {}, new io.grpc.Metadata()))
          .isInstanceOf(IllegalStateException.class);
      lease.close();
      await().atMost(Duration.ofSeconds(10)).until(() -> connector.callCount() == 0);
      assertThat(connector.expire()).isEmpty();
      assertThat(connector.expire()).containsExactly("alpha");
    }
  }

  @Nested
  class LeasedChannelKeepsTheLeaseContract {

    CachingConnector connector;

    @BeforeEach
    void setUp() {
      connector = track(TrackingDialer.inProcess(backend.name()).inlineConnector().build());
    }

    @Test
    void awaitTerminationWaitsForTheReleaseAndTheLeasesCalls() throws Exception {
      LeasedChannel lease = connector.dial("alpha");
      assertThat(lease.awaitTermination(20, TimeUnit.MILLISECONDS)).isFalse();
      Watch watch = Watch.start(lease);
      lease.close();
      assertThat(lease.isShutdown()).isTrue();
      assertThat(lease.isTerminated()).isFalse();
      assertThat(lease.awaitTermination(20, TimeUnit.MILLISECONDS)).isFalse();

      Future<Boolean> awaiting = threads.submit(() -> lease.awaitTermination(1, TimeUnit.MINUTES));
      watch.cancel();

      assertThat(awaiting.get(10, TimeUnit.SECONDS)).isTrue();
      assertThat(lease.isTerminated()).isTrue();
    }

    @Test
    void aReleasedLeaseRefusesWhatWouldActOnTheSharedChannel() {
      LeasedChannel lease = connector.dial("alpha");
      lease.getState(/* requestConnection= */ true);
      lease.resetConnectBackoff();
      lease.close();

      assertThatThrownBy(lease::enterIdle)
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("enterIdle on a released lease");
      assertThatThrownBy(lease::resetConnectBackoff).isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> lease.getState(/* requestConnection= */ true))
          .isInstanceOf(IllegalStateException.class);
      assertThat(lease.getState(/* requestConnection= */ false))
          .isNotEqualTo(ConnectivityState.SHUTDOWN);
    }
  }

  @Nested
  class Close {

    @Test
    void closeFailsWaitersOfAHungDialAtOnceAndShutsItsLateChannelDown() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      dialer.holdDials(address -> {});
      ExecutorService usersDialThreads = Executors.newSingleThreadExecutor();
      try {
        CachingConnector connector =
            CachingConnector.builder()
                .dialer(dialer)
                .dialExecutor(usersDialThreads)
                .shutdownGracePeriod(Duration.ZERO)
                .build();
        List<Future<LeasedChannel>> waiters = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
          waiters.add(dialAsync(connector, "alpha"));
        }
        assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
        await().atMost(Duration.ofSeconds(10)).until(() -> connector.pendingDial("alpha") != null);
        PendingDial pending = connector.pendingDial("alpha");
        await().atMost(Duration.ofSeconds(10)).until(() -> pending.waiterCount() == 3);

        connector.close(); // returns while the dialer still hangs

        for (Future<LeasedChannel> waiter : waiters) {
          assertThat(failureOf(waiter))
              .isInstanceOf(IllegalStateException.class)
              .hasMessageContaining("closed");
        }
        dialer.proceed.countDown();
        await().atMost(Duration.ofSeconds(10)).until(() -> dialer.created.size() == 1);
        TrackedChannel late = dialer.created.get(0);
        await().atMost(Duration.ofSeconds(10)).until(() -> late.shutdownNows.get() == 1);
        assertThat(late.shutdowns).hasValue(1);
        assertThat(connector.connectionCount()).isZero();
      } finally {
        usersDialThreads.shutdownNow();
      }
    }

    @Test
    void closeInterruptsItsOwnDialThreads() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      CompletableFuture<Throwable> dialerSaw = new CompletableFuture<>();
      dialer.behaviour =
          address -> {
            try {
              new CountDownLatch(1).await();
            } catch (InterruptedException e) {
              dialerSaw.complete(e);
              throw e;
            }
          };
      CachingConnector connector = CachingConnector.builder().dialer(dialer).build();
      Future<LeasedChannel> waiter = dialAsync(connector, "alpha");
      await().atMost(Duration.ofSeconds(10)).until(() -> dialer.dials.get() == 1);

      connector.close();

      assertThat(failureOf(waiter)).isInstanceOf(IllegalStateException.class);
      assertThat(dialerSaw.get(10, TimeUnit.SECONDS)).isInstanceOf(InterruptedException.class);
    }

    @Test
    void aChannelWhoseShutdownThrowsDoesNotStopCloseFromClosingTheOthers() {
      TrackingDialer dialer = TrackingDialer.fake();
      Set<Thread> before = Thread.getAllStackTraces().keySet();
      CachingConnector connector =
          CachingConnector.builder()
              .dialer(
                  address -> address.equals("bad") ? new ExplodingChannel() : dialer.dial(address))
              .build();
      connector.dial("a").close();
      connector.dial("bad").close();
      connector.dial("b").close();
      LeasedChannel held = connector.dial("c");

      connector.close();

      assertThat(dialer.created).hasSize(3).allSatisfy(c -> assertThat(c.shutdowns).hasValue(1));
      assertThat(connector.connectionCount()).isZero();
      assertThatThrownBy(() -> connector.dial("a")).isInstanceOf(IllegalStateException.class);
      held.close();
      connector.close(); // a no-op, and no exception
      Set<Thread> started = new HashSet<>(Thread.getAllStackTraces().keySet());
      started.removeAll(before);
      started.removeIf(thread -> !thread.getName().startsWith("grpc-connector-"));
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(() -> assertThat(started).noneMatch(Thread::isAlive));
    }

    @Test
    void closeFromAListenerOnADialThreadKeepsTheGracePeriodAndTheInterrupt() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      AtomicReference<Boolean> interruptedWhileAwaited = new AtomicReference<>();
      CompletableFuture<Boolean> interruptAfterClose = new CompletableFuture<>();
      AtomicReference<CachingConnector> self = new AtomicReference<>();
      CachingConnector connector =
          CachingConnector.builder()
              .dialer(
                  address -> {
                    ManagedChannel channel = dialer.dial(address);
                    return !address.equals("held")
                        ? channel
                        : new ForwardingChannel(channel) {
                          @Override
                          public boolean isTerminated() {
                            return false; // calls in flight when it is shut down: kept draining
                          }

                          @Override
                          public boolean awaitTermination(long timeout, TimeUnit unit) {
                            interruptedWhileAwaited.set(Thread.currentThread().isInterrupted());
                            return true; // its calls finished within the grace
                          }
                        };
                  })
              .shutdownGracePeriod(Duration.ofSeconds(30))
              .listener(
                  new ConnectorListener() {
                    @Override
                    public void onDialComplete(
                        String address, Duration duration, @Nullable Throwable failure) {
                      if (address.equals("closer")) {
                        self.get().close(); // on the connector's own dial thread
                        interruptAfterClose.complete(Thread.currentThread().isInterrupted());
                      }
                    }
                  })
              .build();
      self.set(connector);
      LeasedChannel held = connector.dial("held");

      try {
        connector.dial("closer").close();
      } catch (IllegalStateException e) {
        // the listener closed the connector before this caller took its lease
      }

      assertThat(interruptAfterClose.get(10, TimeUnit.SECONDS))
          .as("interrupt handed back")
          .isTrue();
      assertThat(interruptedWhileAwaited.get()).as("interrupted during the grace").isFalse();
      assertThat(dialer.created.get(0).shutdownNows).as("forced").hasValue(0);
      held.close();
    }

    @Test
    void anExpiryPassThatFailsHalfWayStillCountsWhatItClosed() {
      TrackingDialer dialer = TrackingDialer.fake();
      List<String> closed = new CopyOnWriteArrayList<>();
      List<TrackedChannel> channels = new CopyOnWriteArrayList<>();
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(
                      address -> {
                        TrackedChannel channel = (TrackedChannel) dialer.dial(address);
                        channels.add(channel);
                        // Breaks once another channel was shut down: the second one a pass visits.
                        return new ForwardingChannel(channel) {
                          @Override
                          public boolean isShutdown() {
                            if (channels.stream().anyMatch(c -> c != channel && c.isShutdown())) {
                              throw new IllegalStateException("isShutdown() broke");
                            }
                            return super.isShutdown();
                          }
                        };
                      })
                  .dialExecutor(Runnable::run)
                  .shutdownGracePeriod(Duration.ZERO)
                  .listener(
                      new ConnectorListener() {
                        @Override
                        public void onClose(String address, CloseCause cause) {
                          closed.add(address);
                        }
                      })
                  .build());
      connector.dial("a").close();
      connector.dial("b").close();
      connector.expire();

      assertThatThrownBy(connector::expire).hasMessageContaining("isShutdown() broke");

      assertThat(closed).hasSize(1);
      assertThat(connector.connectionCount()).isEqualTo(1);
    }

    @Test
    void aChannelWhoseShutdownThrowsDoesNotStopExpiryFromClosingTheOthers() {
      TrackingDialer dialer = TrackingDialer.fake();
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(
                      address ->
                          address.equals("bad") ? new ExplodingChannel() : dialer.dial(address))
                  .dialExecutor(Runnable::run)
                  .shutdownGracePeriod(Duration.ZERO)
                  .build());
      for (String address : List.of("a", "bad", "b")) {
        connector.dial(address).close();
      }

      connector.expire();

      assertThat(connector.expire()).containsExactlyInAnyOrder("a", "bad", "b");
      assertThat(dialer.created).allSatisfy(c -> assertThat(c.shutdowns).hasValue(1));
      assertThat(connector.connectionCount()).isZero();
    }
  }

  @Nested
  class Dialers {

    @Test
    void aDialerReturningAShutDownChannelFailsThatDialOnce() {
      TrackingDialer dialer = TrackingDialer.fake();
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(address -> dialer.dial(address).shutdown())
                  .dialExecutor(Runnable::run)
                  .build());

      assertThatThrownBy(() -> connector.dial("alpha"))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                assertThat(e).hasMessageContaining("shut down already");
              });
      assertThat(dialer.dials).hasValue(1);
      assertThat(connector.connectionCount()).isZero();
      assertThat(connector.connections()).isEmpty();
    }

    @Test
    void aHungDialerIsAbandonedAfterTheDialTimeoutAndItsLateChannelShutDown() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      CountDownLatch firstMayReturn = new CountDownLatch(1);
      AtomicInteger calls = new AtomicInteger();
      dialer.behaviour =
          address -> {
            if (calls.incrementAndGet() == 1) {
              firstMayReturn.await();
            }
          };
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(dialer)
                  .dialTimeout(Duration.ofSeconds(1)) // a new dial gets going well within it
                  .shutdownGracePeriod(Duration.ZERO)
                  .build());

      Future<LeasedChannel> first = dialAsync(connector, "alpha");
      await().atMost(Duration.ofSeconds(10)).until(() -> calls.get() == 1); // the dialer hangs
      assertThat(failureOf(first))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
                assertThat(e).hasMessageContaining("dial timeout of PT1S");
              });
      LeasedChannel second = connector.dial("alpha"); // a new dial, not the hung one
      assertThat(dialer.dials).hasValue(2);

      firstMayReturn.countDown();
      await().atMost(Duration.ofSeconds(10)).until(() -> dialer.created.size() == 2);
      TrackedChannel late =
          dialer.created.stream().filter(c -> c != second.entry.channel()).findFirst().get();
      await().atMost(Duration.ofSeconds(10)).until(() -> late.shutdownNows.get() == 1);
      assertThat(connector.connectionCount()).isEqualTo(1);
      assertThat(second.entry.channel().isShutdown()).isFalse();
      second.close();
    }

    @Test
    void aHungDialerIsAbandonedByExpiryWhenNobodyWaits() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      dialer.holdDials(address -> {});
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(dialer)
                  .dialTimeout(Duration.ofMillis(1))
                  .shutdownGracePeriod(Duration.ZERO)
                  .build());
      Context.CancellableContext gaveUp = Context.current().withCancellation();
      gaveUp.cancel(null); // the caller stops waiting at once, and leaves the dial to itself
      assertThatThrownBy(() -> gaveUp.call(() -> connector.dial("alpha")))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED));
      assertThat(connector.pendingDial("alpha")).isNotNull();

      await()
          .atMost(Duration.ofSeconds(10))
          .until(
              () -> {
                connector.expire();
                return connector.pendingDial("alpha") == null;
              });
      assertThat(connector.closeOnRelease("alpha")).isFalse();
      dialer.proceed.countDown();
    }

    @Test
    void aStatusADialerThrowsIsADialFailureNotATimeout() {
      StatusRuntimeException denied = Status.PERMISSION_DENIED.asRuntimeException();
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(
                      address -> {
                        throw denied;
                      })
                  .dialExecutor(Runnable::run)
                  .build());

      assertThatThrownBy(() -> connector.dial("alpha"))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                assertThat(e.getCause()).isSameAs(denied);
              });
    }

    @Test
    void anExecutorThatThrowsAfterRunningTheDialLeavesNoLeaseBehind() {
      TrackingDialer dialer = TrackingDialer.fake();
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(dialer)
                  .dialExecutor(
                      task -> {
                        task.run();
                        throw new IllegalStateException("executor broke after running the dial");
                      })
                  .shutdownGracePeriod(Duration.ZERO)
                  .build());

      assertThatThrownBy(() -> connector.dial("alpha")).hasMessageContaining("executor broke");

      assertThat(connector.leaseCount()).isZero();
      connector.expire();
      assertThat(connector.expire()).containsExactly("alpha");
      assertThat(dialer.created.get(0).shutdowns).hasValue(1);
    }

    @Test
    void dialTimeoutMustBePositive() {
      assertThatThrownBy(() -> CachingConnector.builder().dialTimeout(Duration.ZERO))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("dialTimeout must be positive");
    }
  }

  @Nested
  class Waiting {

    @Test
    void callersGivingUpOnAHungDialLeaveNothingBehind() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      dialer.holdDials(address -> {});
      CachingConnector connector =
          track(CachingConnector.builder().dialer(dialer).dialTimeout(Duration.ofHours(1)).build());
      Future<LeasedChannel> owner = dialAsync(connector, "alpha");
      assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
      PendingDial pending = connector.pendingDial("alpha");
      assertThat(pending).isNotNull();

      Context.CancellableContext context = Context.current().withCancellation();
      try {
        context.run(
            () -> {
              for (int i = 0; i < 200_000; i++) {
                try {
                  connector.dial("alpha", Duration.ofNanos(1));
                  throw new AssertionError("dial " + i + " did not time out");
                } catch (StatusRuntimeException e) {
                  assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
                }
              }
            });
      } finally {
        context.cancel(null);
      }

      await().atMost(Duration.ofSeconds(10)).until(() -> pending.waiterCount() == 1); // the owner
      dialer.proceed.countDown();
      owner.get(10, TimeUnit.SECONDS).close();
      assertThat(pending.waiterCount()).isZero();
      assertThat(dialer.dials).hasValue(1);
    }

    @Test
    void aCallersBoundIsFixedAtItsFirstWaitHoweverOftenItWaits() throws Exception {
      FakeTicker ticker = new FakeTicker();
      AtomicReference<Thread> caller = new AtomicReference<>();
      CountDownLatch firstMayReturn = new CountDownLatch(1);
      CountDownLatch secondStarted = new CountDownLatch(1);
      CountDownLatch secondMayReturn = new CountDownLatch(1);
      AtomicInteger calls = new AtomicInteger();
      TrackingDialer tracking = TrackingDialer.fake();
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(
                      address -> {
                        if (calls.incrementAndGet() == 1) {
                          firstMayReturn.await();
                          return new ShutDownForOneThread(tracking.dial(address), caller);
                        }
                        secondStarted.countDown();
                        secondMayReturn.await();
                        return tracking.dial(address);
                      })
                  .shutdownGracePeriod(Duration.ZERO)
                  .build());
      Future<LeasedChannel> owner = dialAsync(connector, "alpha");
      await().atMost(Duration.ofSeconds(10)).until(() -> calls.get() == 1);
      ScheduledExecutorService deadlines = Executors.newSingleThreadScheduledExecutor();
      Context.CancellableContext context =
          Context.current().withDeadline(Deadline.after(10, TimeUnit.SECONDS, ticker), deadlines);
      try {
        Future<LeasedChannel> bounded =
            threads.submit(
                () -> {
                  caller.set(Thread.currentThread());
                  return context.call(() -> connector.dial("alpha"));
                });
        await()
            .atMost(Duration.ofSeconds(10))
            .until(() -> connector.pendingDial("alpha").waiterCount() == 2); // first wait

        // By the Context's clock its deadline has passed; the caller's bound was fixed at its first
        // wait, 10 s from then, and holds for its second wait.
        ticker.advance(Duration.ofSeconds(15));
        firstMayReturn.countDown(); // the caller sees this channel shut down and dials again
        assertThat(secondStarted.await(10, TimeUnit.SECONDS)).isTrue();
        await()
            .atMost(Duration.ofSeconds(10))
            .until(
                () -> {
                  PendingDial second = connector.pendingDial("alpha");
                  return bounded.isDone() || (second != null && second.waiterCount() == 1);
                });
        assertThat(bounded).as("the caller waits for its second dial").isNotDone();
        secondMayReturn.countDown();

        LeasedChannel lease = bounded.get(10, TimeUnit.SECONDS);
        assertThat(lease.entry.channel()).isSameAs(tracking.created.get(1));
        lease.close();
        owner.get(10, TimeUnit.SECONDS).close();
        assertThat(calls).hasValue(2);
      } finally {
        context.cancel(null);
        deadlines.shutdownNow();
      }
    }

    @Test
    void anInterruptedWaiterGetsCancelledAndKeepsItsInterruptFlag() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      dialer.holdDials(address -> {});
      CachingConnector connector = track(CachingConnector.builder().dialer(dialer).build());
      Future<LeasedChannel> owner = dialAsync(connector, "alpha");
      assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
      AtomicReference<Thread> waiterThread = new AtomicReference<>();
      Future<Boolean> flagAfter =
          threads.submit(
              () -> {
                waiterThread.set(Thread.currentThread());
                try {
                  connector.dial("alpha");
                  return null;
                } catch (StatusRuntimeException e) {
                  assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED);
                  return Thread.currentThread().isInterrupted();
                }
              });
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> connector.pendingDial("alpha").waiterCount() == 2);

      waiterThread.get().interrupt();

      assertThat(flagAfter.get(10, TimeUnit.SECONDS)).isTrue();
      dialer.proceed.countDown();
      owner.get(10, TimeUnit.SECONDS).close();
    }

    @Test
    void anInterruptedInlineDialerGivesCancelledAndKeepsTheInterruptFlag() {
      TrackingDialer dialer = TrackingDialer.fake();
      dialer.behaviour = address -> new CountDownLatch(1).await();
      CachingConnector connector = track(dialer.inlineConnector().build());

      Thread.currentThread().interrupt();
      try {
        assertThatThrownBy(() -> connector.dial("alpha"))
            .isInstanceOfSatisfying(
                StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED));
        assertThat(Thread.currentThread().isInterrupted()).isTrue();
      } finally {
        Thread.interrupted();
      }
      dialer.behaviour = address -> {};
      connector.dial("alpha").close(); // the address is dialable again
    }
  }

  @Nested
  class Callbacks {

    @Test
    void errorsThrownByCallbacksLeaveTheAddressDialable() {
      TrackingDialer dialer = TrackingDialer.fake();
      AtomicInteger throwsLeft = new AtomicInteger(2);
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(dialer)
                  .shutdownGracePeriod(Duration.ZERO)
                  .listener(
                      new ConnectorListener() {
                        @Override
                        public void onCacheMiss(String address) {
                          if (throwsLeft.getAndDecrement() == 2) {
                            throw new StackOverflowError("from onCacheMiss");
                          }
                        }

                        @Override
                        public void onDialComplete(
                            String address, Duration duration, @Nullable Throwable failure) {
                          if (failure == null && throwsLeft.getAndDecrement() == 1) {
                            throw new StackOverflowError("from onDialComplete");
                          }
                        }
                      })
                  .build());

      assertThatThrownBy(() -> connector.dial("alpha", Duration.ofSeconds(10)))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
      connector.dial("alpha", Duration.ofSeconds(10)).close(); // onDialComplete throws
      connector.dial("alpha", Duration.ofSeconds(10)).close();

      assertThat(dialer.dials).hasValue(1);
      connector.expire();
      assertThat(connector.expire()).containsExactly("alpha");
    }

    @Test
    void aListenerDialingTheMissedAddressFailsFastInsteadOfWaitingForItself() {
      TrackingDialer dialer = TrackingDialer.fake();
      List<Throwable> reentrant = new CopyOnWriteArrayList<>();
      AtomicReference<CachingConnector> self = new AtomicReference<>();
      CachingConnector connector =
          track(
              dialer
                  .inlineConnector()
                  .onCacheMiss(
                      address -> {
                        try {
                          self.get().dial(address).close();
                        } catch (IllegalStateException e) {
                          reentrant.add(e);
                        }
                        if (address.equals("alpha")) {
                          self.get().dial("beta").close(); // another address works
                        }
                      })
                  .build());
      self.set(connector);

      connector.dial("alpha").close();

      assertThat(reentrant)
          .hasSize(2)
          .allSatisfy(e -> assertThat(e).hasMessageContaining("would wait for itself"));
      assertThat(connector.connections())
          .extracting(ConnectionInfo::address)
          .containsExactly("alpha", "beta");
    }

    @Test
    void listenersMayCallTheConnectorFromEveryCallback() {
      TrackingDialer dialer = TrackingDialer.fake();
      AtomicReference<CachingConnector> self = new AtomicReference<>();
      List<String> closes = new CopyOnWriteArrayList<>();
      CachingConnector connector =
          track(
              dialer
                  .inlineConnector()
                  .listener(
                      new ConnectorListener() {
                        @Override
                        public void onClose(String address, CloseCause cause) {
                          closes.add(address);
                          self.get().expire(); // a nested pass, after the outer one
                          if (address.equals("alpha")) {
                            self.get().dial("gamma").close();
                          }
                        }

                        @Override
                        public void onConnectionCountUpdate(int count) {
                          self.get().closeOnRelease("beta");
                        }
                      })
                  .build());
      self.set(connector);
      connector.dial("alpha").close();
      connector.dial("beta").close();

      connector.expire();
      connector.expire();

      assertThat(closes).contains("alpha", "beta");
      assertThat(connector.connections()).extracting(ConnectionInfo::address).contains("gamma");
      connector.dial("alpha").close(); // everything still dialable
      connector.dial("beta").close();
    }
  }

  @Nested
  class LeakDetection {

    @Test
    void releasedLeasesLeaveNothingQueuedOnAUsersScheduler() {
      ScheduledThreadPoolExecutor scheduler = new ScheduledThreadPoolExecutor(1);
      try {
        CachingConnector connector =
            track(
                TrackingDialer.fake()
                    .inlineConnector()
                    .scheduler(scheduler) // no removeOnCancel: a cancelled task stays queued
                    .leakDetectionThreshold(Duration.ofHours(1))
                    .build());
        for (int i = 0; i < 1_000; i++) {
          connector.dial("alpha").close();
        }

        assertThat(scheduler.getQueue()).as("the one leak scan").hasSize(1);
      } finally {
        scheduler.shutdownNow();
      }
    }
  }

  /** A ticker for gRPC deadlines that moves only when told to. */
  static final class FakeTicker extends Deadline.Ticker {

    private final AtomicLong nanos = new AtomicLong();

    @Override
    public long nanoTime() {
      return nanos.get();
    }

    void advance(Duration duration) {
      nanos.addAndGet(duration.toNanos());
    }
  }

  /** A channel that one thread sees shut down (as if shut down just before it looks). */
  static final class ShutDownForOneThread extends ForwardingChannel {

    private final AtomicReference<Thread> viewer;

    ShutDownForOneThread(ManagedChannel delegate, AtomicReference<Thread> viewer) {
      super(delegate);
      this.viewer = viewer;
    }

    @Override
    public boolean isShutdown() {
      return Thread.currentThread() == viewer.get() || delegate.isShutdown();
    }
  }

  /** A channel whose shutdown methods throw. */
  static final class ExplodingChannel extends ManagedChannel {

    @Override
    public ManagedChannel shutdown() {
      throw new IllegalStateException("shutdown() exploded");
    }

    @Override
    public ManagedChannel shutdownNow() {
      throw new IllegalStateException("shutdownNow() exploded");
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

    @Override
    public <RequestT, ResponseT> ClientCall<RequestT, ResponseT> newCall(
        MethodDescriptor<RequestT, ResponseT> method, CallOptions options) {
      throw new UnsupportedOperationException("a fake channel carries no calls");
    }

    @Override
    public String authority() {
      return "bad";
    }
  }

  @Nested
  class CountListenerAndConcurrentClose {

    /**
     * The count listener runs on the dial thread before the dial's callers wake; one that waits for
     * a lock the caller holds delays the caller until the dial timeout, and the caller then gets
     * its lease: a dial that published its channel is never reported as timed out.
     */
    @Test
    void aCountListenerThatWaitsForTheCallersLockNeverFailsItsDial() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      Object callersLock = new Object();
      List<Integer> counts = new CopyOnWriteArrayList<>();
      CachingConnector connector =
          track(
              CachingConnector.builder()
                  .dialer(dialer)
                  .dialExecutor(threads)
                  .dialTimeout(Duration.ofMillis(300))
                  .shutdownGracePeriod(Duration.ZERO)
                  .onConnectionCountUpdate(
                      count -> {
                        synchronized (callersLock) {
                          counts.add(count);
                        }
                      })
                  .build());

      LeasedChannel lease;
      synchronized (callersLock) {
        lease = connector.dial("alpha");
      }

      assertThat(lease.isShutdown()).isFalse();
      assertThat(connector.leaseCount()).isEqualTo(1);
      await().until(() -> counts.contains(1));
      lease.close();
      assertThat(connector.connectionCount()).isEqualTo(1);
      assertThat(dialer.dialsOf("alpha")).isEqualTo(1);
    }

    /**
     * A close() that runs while another thread's close() is still shutting channels down returns
     * only once that one has finished: every channel is shut down when either returns.
     */
    @Test
    void aSecondCloseReturnsOnlyOnceTheFirstHasShutEverythingDown() throws Exception {
      TrackingDialer dialer = TrackingDialer.fake();
      CountDownLatch shuttingDown = new CountDownLatch(1);
      CountDownLatch proceed = new CountDownLatch(1);
      CachingConnector connector =
          CachingConnector.builder()
              .dialer(
                  address -> {
                    ManagedChannel channel = dialer.dial(address);
                    return new ForwardingChannel(channel) {
                      @Override
                      public ManagedChannel shutdown() {
                        if (shuttingDown.getCount() != 0) {
                          shuttingDown.countDown();
                          try {
                            proceed.await(); // the first channel the sweep closes blocks it
                          } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                          }
                        }
                        return super.shutdown();
                      }
                    };
                  })
              .dialExecutor(Runnable::run)
              .shutdownGracePeriod(Duration.ZERO)
              .build();
      connector.dial("alpha").close();
      connector.dial("beta").close();
      Future<?> first = threads.submit(connector::close);
      assertThat(shuttingDown.await(10, TimeUnit.SECONDS)).isTrue();
      AtomicReference<Thread> secondThread = new AtomicReference<>();
      Future<Boolean> second =
          threads.submit(
              () -> {
                secondThread.set(Thread.currentThread());
                connector.close();
                return dialer.created.stream().allMatch(TrackedChannel::isShutdown);
              });
      await()
          .until(
              () ->
                  second.isDone()
                      || (secondThread.get() != null
                          && secondThread.get().getState() == Thread.State.WAITING));

      proceed.countDown();

      assertThat(second.get(10, TimeUnit.SECONDS)).as("all shut down when it returned").isTrue();
      first.get(10, TimeUnit.SECONDS);
    }

    /**
     * A close() called from a listener that close() runs returns at once: it cannot wait for
     * itself.
     */
    @Test
    void aCloseFromAListenerOfTheCloseReturnsAtOnce() {
      TrackingDialer dialer = TrackingDialer.fake();
      AtomicReference<CachingConnector> self = new AtomicReference<>();
      AtomicInteger reentered = new AtomicInteger();
      CachingConnector connector =
          dialer
              .inlineConnector()
              .listener(
                  new ConnectorListener() {
                    @Override
                    public void onClose(String address, CloseCause cause) {
                      self.get().close();
                      reentered.incrementAndGet();
                    }
                  })
              .build();
      self.set(connector);
      connector.dial("alpha").close();

      connector.close();

      assertThat(reentered).hasValue(1);
      assertThat(dialer.created).allMatch(TrackedChannel::isShutdown);
    }
  }
}
