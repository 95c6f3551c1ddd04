package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** At most one dial in flight per address, and each waiter bounded by its own deadline. */
class DialConcurrencyTest {

  static final int CALLERS = 32;

  @RegisterExtension final HealthBackend backend = new HealthBackend();

  final ExecutorService threads = Executors.newFixedThreadPool(CALLERS);
  final AtomicInteger connects = new AtomicInteger();
  TrackingDialer dialer;
  CachingConnector connector;

  @BeforeEach
  void setUp() {
    dialer = TrackingDialer.inProcess(backend.name());
    connector =
        CachingConnector.builder()
            .dialer(dialer)
            .shutdownGracePeriod(Duration.ofSeconds(5))
            .onConnect(address -> connects.incrementAndGet())
            .build();
  }

  @AfterEach
  void tearDown() {
    dialer.proceed.countDown();
    threads.shutdownNow();
    connector.close();
  }

  List<Future<LeasedChannel>> dialFromManyThreads(String address) {
    List<Future<LeasedChannel>> results = new ArrayList<>();
    for (int i = 0; i < CALLERS; i++) {
      results.add(threads.submit(() -> connector.dial(address, Duration.ofMinutes(1))));
    }
    return results;
  }

  @Test
  void manyThreadsDialingOneNewAddressCauseOneDialerCall() throws Exception {
    dialer.holdDials(address -> {});
    List<Future<LeasedChannel>> results = dialFromManyThreads("alpha");
    await().until(() -> connects.get() == CALLERS);
    dialer.proceed.countDown();

    for (Future<LeasedChannel> result : results) {
      try (LeasedChannel lease = result.get(10, TimeUnit.SECONDS)) {
        assertThat(HealthBackend.check(lease)).isEqualTo(ServingStatus.SERVING);
      }
    }
    assertThat(dialer.dials).hasValue(1);
    assertThat(connector.connectionCount()).isEqualTo(1);
  }

  @Test
  void dialsOfDifferentAddressesRunInParallel() throws Exception {
    CountDownLatch bothDialing = new CountDownLatch(2);
    dialer.behaviour =
        address -> {
          bothDialing.countDown();
          // Returns only once the other address is being dialed too: a serialized dialer would
          // never get here for both.
          assertThat(bothDialing.await(10, TimeUnit.SECONDS)).isTrue();
        };
    Future<LeasedChannel> alpha = threads.submit(() -> connector.dial("alpha"));
    Future<LeasedChannel> beta = threads.submit(() -> connector.dial("beta"));

    alpha.get(10, TimeUnit.SECONDS).close();
    beta.get(10, TimeUnit.SECONDS).close();
    assertThat(connector.connectionCount()).isEqualTo(2);
  }

  @Test
  void failingDialerGivesEveryWaiterUnavailableAndNextDialRetries() throws Exception {
    IllegalStateException boom = new IllegalStateException("resolver failed");
    dialer.holdDials(
        address -> {
          throw boom;
        });
    List<Future<LeasedChannel>> results = dialFromManyThreads("alpha");
    await().until(() -> connects.get() == CALLERS);
    dialer.proceed.countDown();

    for (Future<LeasedChannel> result : results) {
      assertThatThrownBy(() -> result.get(10, TimeUnit.SECONDS))
          .isInstanceOf(ExecutionException.class)
          .cause()
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE))
          .hasRootCause(boom);
    }
    assertThat(dialer.dials).hasValue(1);
    assertThat(connector.connections()).isEmpty();

    dialer.behaviour = address -> {};
    connector.dial("alpha").close();
    assertThat(dialer.dials).hasValue(2);
  }

  @Test
  void slowDialerGivesShortTimeoutDeadlineExceededAndCachesTheLateChannel() throws Exception {
    dialer.holdDials(address -> {});

    assertThatThrownBy(() -> connector.dial("alpha", Duration.ofMillis(100)))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
              assertThat(e.getStatus().getDescription()).contains("alpha", "PT0.1S");
            });
    assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
    dialer.proceed.countDown();

    await().until(() -> connector.connectionCount() == 1);
    assertThat(connector.connections())
        .singleElement()
        .satisfies(info -> assertThat(info.leases()).isZero());
    try (LeasedChannel lease = connector.dial("alpha")) {
      assertThat(HealthBackend.check(lease)).isEqualTo(ServingStatus.SERVING);
    }
    assertThat(dialer.dials).hasValue(1);
  }

  @Test
  void lateChannelNobodyWaitedForExpiresAfterTwoPasses() throws Exception {
    dialer.holdDials(address -> {});
    assertThatThrownBy(() -> connector.dial("alpha", Duration.ofMillis(10)))
        .isInstanceOf(StatusRuntimeException.class);
    dialer.proceed.countDown();
    await().until(() -> connector.connectionCount() == 1);

    assertThat(connector.expire()).isEmpty();
    assertThat(connector.expire()).containsExactly("alpha");
    assertThat(dialer.created.get(0).shutdowns).hasValue(1);
  }

  @Test
  void contextDeadlineBoundsTheWait() {
    dialer.holdDials(address -> {});
    ScheduledExecutorService deadlines = Executors.newSingleThreadScheduledExecutor();
    Context.CancellableContext context =
        Context.current().withDeadlineAfter(100, TimeUnit.MILLISECONDS, deadlines);
    try {
      assertThatThrownBy(() -> context.call(() -> connector.dial("alpha")))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
                assertThat(e.getStatus().getDescription())
                    .contains("alpha", "the deadline of the current gRPC Context");
              });
    } finally {
      context.cancel(null);
      deadlines.shutdownNow();
    }
  }

  @Test
  void cancelledContextGivesCancelled() throws Exception {
    dialer.holdDials(address -> {});
    Context.CancellableContext context = Context.current().withCancellation();
    Future<LeasedChannel> waiter =
        threads.submit(() -> context.call(() -> connector.dial("alpha")));
    assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();

    context.cancel(new RuntimeException("client went away"));

    assertThatThrownBy(() -> waiter.get(10, TimeUnit.SECONDS))
        .cause()
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED))
        .hasRootCauseMessage("client went away");
  }

  @Test
  void interruptedWaiterGetsCancelledAndKeepsInterruptFlag() throws Exception {
    dialer.holdDials(address -> {});
    CountDownLatch interrupted = new CountDownLatch(1);
    Thread waiter =
        new Thread(
            () -> {
              try {
                connector.dial("alpha");
              } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() == Status.Code.CANCELLED
                    && Thread.currentThread().isInterrupted()) {
                  interrupted.countDown();
                }
              }
            });
    waiter.start();
    assertThat(dialer.dialing.await(10, TimeUnit.SECONDS)).isTrue();
    await()
        .until(
            () ->
                waiter.getState() == Thread.State.WAITING
                    || waiter.getState() == Thread.State.TIMED_WAITING);

    waiter.interrupt();

    assertThat(interrupted.await(10, TimeUnit.SECONDS)).isTrue();
    waiter.join();
  }

  /**
   * A miss racing close() ends with a lease, IllegalStateException or a gRPC status, never with
   * anything else (the dial it started may be failed by the close as soon as it is in the table).
   */
  @Test
  void missesRacingCloseFailOnlyAsTheContractSays() throws Exception {
    ExecutorService racer = Executors.newSingleThreadExecutor();
    try {
      for (int round = 0; round < 300; round++) {
        CachingConnector racing =
            CachingConnector.builder()
                .dialer(TrackingDialer.fake())
                .shutdownGracePeriod(Duration.ZERO)
                .build();
        CountDownLatch started = new CountDownLatch(1);
        Future<Throwable> misses =
            racer.submit(
                () -> {
                  started.countDown();
                  for (int i = 0; ; i++) {
                    try {
                      racing.dial("miss-" + i).close();
                    } catch (IllegalStateException | StatusRuntimeException e) {
                      if (racing.toString().contains("closed=true")) {
                        return null;
                      }
                    } catch (RuntimeException | Error e) {
                      return e;
                    }
                  }
                });
        started.await();
        racing.close();
        assertThat(misses.get(10, TimeUnit.SECONDS)).as("round %d", round).isNull();
      }
    } finally {
      racer.shutdownNow();
    }
  }
}
