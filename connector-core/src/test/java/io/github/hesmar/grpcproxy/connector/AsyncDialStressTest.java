package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * The door for event loops under a storm (docs/design.md, "16. A door for event loops"): three
 * threads take leases through {@code dialAsync} (with and without a timeout of a few milliseconds,
 * its future cancelled at once, a moment later, or never), {@code tryDial} and {@code dial}, over
 * four addresses of two channels of two calls each, while the dialer takes up to 3 ms, refuses one
 * dial in five and hangs one in twenty past the dial timeout, and a fourth thread runs {@code
 * expire()} and {@code closeOnRelease()}. Then {@code close()} races the last futures.
 *
 * <p>Invariants: every future completes; a completed future holds a lease (which the test releases)
 * or fails as {@code dial()} throws ({@code UNAVAILABLE} with the dialer's cause, {@code
 * DEADLINE_EXCEEDED}, {@code IllegalStateException} after close) or was cancelled; once every lease
 * is released, no lease is counted (a lease that reached a cancelled future was released by the
 * connector), no dial has a waiter left, and after {@code close()} every channel the dialer created
 * is shut down exactly once.
 */
class AsyncDialStressTest {

  private static final long BUDGET_NANOS = TimeUnit.SECONDS.toNanos(4);
  private static final int WORKERS = 3;

  @Test
  void futuresCancelledTimedOutOrFailedLeaveNoLeaseAndNoWaiterBehind() throws Exception {
    long seed = Long.getLong("stress.seed", new SecureRandom().nextLong());
    System.out.println(
        "AsyncDialStressTest seed " + seed + " (replay with -Dstress.seed=" + seed + ")");
    TrackingDialer dialer = TrackingDialer.fake();
    dialer.behaviour =
        address -> {
          ThreadLocalRandom random = ThreadLocalRandom.current();
          int roll = random.nextInt(20);
          if (roll < 4) {
            throw new IOException("refused by the test");
          }
          if (roll == 4) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(80)); // past the dial timeout
          } else {
            LockSupport.parkNanos(random.nextLong(TimeUnit.MILLISECONDS.toNanos(3)));
          }
        };
    CachingConnector connector =
        CachingConnector.builder()
            .dialer(dialer)
            .maxCallsPerChannel(2)
            .maxChannelsPerAddress(2)
            .dialTimeout(Duration.ofMillis(40))
            .shutdownGracePeriod(Duration.ZERO)
            .build();
    String[] addresses = {"a", "b", "c", "d"};
    Queue<CompletableFuture<LeasedChannel>> futures = new ConcurrentLinkedQueue<>();
    Queue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
    AtomicLong leased = new AtomicLong();
    AtomicLong cancelled = new AtomicLong();
    AtomicLong failed = new AtomicLong();
    AtomicBoolean stop = new AtomicBoolean();
    ExecutorService threads = Executors.newFixedThreadPool(WORKERS + 1);
    try {
      List<Future<?>> running = new ArrayList<>();
      for (int w = 0; w < WORKERS; w++) {
        long workerSeed = seed + w;
        running.add(
            threads.submit(
                () -> {
                  Random random = new Random(workerSeed);
                  long end = System.nanoTime() + BUDGET_NANOS;
                  while (System.nanoTime() - end < 0) {
                    String address = addresses[random.nextInt(addresses.length)];
                    int op = random.nextInt(10);
                    if (op < 6) {
                      CompletableFuture<LeasedChannel> future =
                          random.nextBoolean()
                              ? connector.dialAsync(address)
                              : connector.dialAsync(
                                  address, Duration.ofMillis(1 + random.nextInt(20)));
                      futures.add(future);
                      future.whenComplete(
                          (lease, failure) ->
                              settle(lease, failure, leased, cancelled, failed, unexpected));
                      int cancel = random.nextInt(4);
                      if (cancel == 0) {
                        future.cancel(false);
                      } else if (cancel == 1) {
                        LockSupport.parkNanos(random.nextInt(2_000_000));
                        future.cancel(false);
                      }
                    } else if (op < 8) {
                      LeasedChannel lease = connector.tryDial(address);
                      if (lease != null) {
                        leased.incrementAndGet();
                        lease.close();
                      }
                    } else {
                      try (LeasedChannel lease = connector.dial(address, Duration.ofMillis(30))) {
                        leased.incrementAndGet();
                      } catch (StatusRuntimeException e) {
                        expectedFailure(e, unexpected);
                      }
                    }
                  }
                  return null;
                }));
      }
      Future<?> churn =
          threads.submit(
              () -> {
                Random random = new Random(seed - 1);
                while (!stop.get()) {
                  connector.expire();
                  if (random.nextInt(8) == 0) {
                    connector.closeOnRelease(addresses[random.nextInt(addresses.length)]);
                  }
                  LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
                }
                return null;
              });
      for (Future<?> worker : running) {
        worker.get(60, TimeUnit.SECONDS);
      }
      stop.set(true);
      churn.get(10, TimeUnit.SECONDS);

      await()
          .atMost(Duration.ofSeconds(20))
          .until(() -> futures.stream().allMatch(CompletableFuture::isDone));
      assertThat(unexpected).as("seed %s", seed).isEmpty();
      await().atMost(Duration.ofSeconds(10)).until(() -> connector.leaseCount() == 0);
      for (String address : addresses) {
        PendingDial pending = connector.pendingDial(address);
        assertThat(pending == null ? 0 : pending.waiterCount())
            .as("waiters left on %s (seed %s)", address, seed)
            .isZero();
      }
      assertThat(leased.get()).as("seed %s", seed).isPositive();
      assertThat(cancelled.get()).as("seed %s", seed).isPositive();
      assertThat(failed.get()).as("seed %s", seed).isPositive();

      // close() against futures in flight: each fails at once, or completes, and nothing leaks.
      List<CompletableFuture<LeasedChannel>> last = new ArrayList<>();
      for (int i = 0; i < 32; i++) {
        CompletableFuture<LeasedChannel> future = connector.dialAsync("late-" + (i % 4));
        future.whenComplete(
            (lease, failure) -> settle(lease, failure, leased, cancelled, failed, unexpected));
        last.add(future);
      }
      connector.close();
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> last.stream().allMatch(CompletableFuture::isDone));
      assertThat(unexpected).as("seed %s", seed).isEmpty();
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(
              () ->
                  assertThat(dialer.created)
                      .as("seed %s", seed)
                      .allSatisfy(channel -> assertThat(channel.shutdowns).hasValue(1)));
    } finally {
      stop.set(true);
      threads.shutdownNow();
      assertThat(threads.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
      connector.close();
    }
  }

  private static void settle(
      LeasedChannel lease,
      Throwable failure,
      AtomicLong leased,
      AtomicLong cancelled,
      AtomicLong failed,
      Queue<Throwable> unexpected) {
    if (lease != null) {
      leased.incrementAndGet();
      lease.close();
      return;
    }
    Throwable cause = failure instanceof CompletionException ? failure.getCause() : failure;
    if (cause instanceof CancellationException) {
      cancelled.incrementAndGet();
    } else if (cause instanceof IllegalStateException
        && String.valueOf(cause.getMessage()).contains("closed")) {
      failed.incrementAndGet();
    } else if (cause instanceof StatusRuntimeException e) {
      failed.incrementAndGet();
      expectedFailure(e, unexpected);
    } else {
      unexpected.add(cause);
    }
  }

  private static void expectedFailure(StatusRuntimeException e, Queue<Throwable> unexpected) {
    Status.Code code = e.getStatus().getCode();
    boolean refused = code == Status.Code.UNAVAILABLE && e.getCause() instanceof IOException;
    if (!refused && code != Status.Code.DEADLINE_EXCEEDED) {
      unexpected.add(e);
    }
  }
}
