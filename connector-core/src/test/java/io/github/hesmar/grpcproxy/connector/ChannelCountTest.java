package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.hesmar.grpcproxy.connector.ChannelCount.Closed;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** {@link ChannelCount} on its own: the count, the close reports and the single deliverer. */
class ChannelCountTest {

  final List<String> events = new CopyOnWriteArrayList<>();

  final ConnectorListener recording =
      new ConnectorListener() {
        @Override
        public void onConnectionCountUpdate(int count) {
          events.add("count " + count);
        }

        @Override
        public void onClose(String address, CloseCause cause) {
          events.add("close " + address + " " + cause);
        }
      };

  @Test
  void theListenerHearsTheCountAfterEachChangeItIsToldOf() {
    ChannelCount count = new ChannelCount(recording, null);
    count.opened();
    count.opened();
    count.deliver();
    count.reportClosed("alpha", CloseCause.EXPIRED);

    assertThat(count.get()).isEqualTo(1);
    assertThat(events).containsExactly("count 2", "close alpha EXPIRED", "count 1");
  }

  @Test
  void anUnchangedCountIsNotDeliveredAgain() {
    ChannelCount count = new ChannelCount(recording, null);
    count.opened();
    count.deliver();
    count.opened();
    count.unopened();
    count.deliver();

    assertThat(events).containsExactly("count 1");
  }

  @Test
  void aClosedChannelGivesItsPlaceUnderTheBoundBack() {
    ChannelBound bound = new ChannelBound(1);
    ChannelCount count = new ChannelCount(recording, bound);
    bound.claim(entry -> false);
    count.opened();

    count.closed();
    AtomicInteger examined = new AtomicInteger();
    bound.claim(
        entry -> {
          examined.incrementAndGet();
          return false;
        });

    assertThat(examined).as("a place was free: nothing had to be evicted").hasValue(0);
    assertThat(count.get()).isZero();
  }

  @Test
  void everyCloseIsCountedEvenIfAListenerThrowsAnError() {
    ConnectorListener failing =
        new ConnectorListener() {
          @Override
          public void onClose(String address, CloseCause cause) {
            events.add(address);
            throw new StackOverflowError("from the listener");
          }
        };
    ChannelCount count = new ChannelCount(failing, null);
    count.opened();
    count.opened();

    assertThatThrownBy(
            () ->
                count.reportAll(
                    List.of(
                        new Closed("alpha", CloseCause.EXPIRED),
                        new Closed("beta", CloseCause.EVICTED)),
                    /* counted= */ false))
        .isInstanceOf(StackOverflowError.class);
    assertThat(count.get()).isZero();
    assertThat(events).containsExactly("alpha", "beta");
  }

  @Test
  void closesCountedAlreadyAreOnlyReported() {
    ChannelCount count = new ChannelCount(recording, null);
    count.opened();
    count.closed();

    count.reportAll(List.of(new Closed("alpha", CloseCause.EVICTED)), /* counted= */ true);

    assertThat(count.get()).isZero();
    assertThat(events).containsExactly("close alpha EVICTED");
  }

  @Test
  void deliveriesNeverOverlapAndTheLastOneIsTheFinalCount() throws Exception {
    AtomicInteger inside = new AtomicInteger();
    AtomicInteger overlaps = new AtomicInteger();
    AtomicInteger last = new AtomicInteger(-1);
    ConnectorListener slow =
        new ConnectorListener() {
          @Override
          public void onConnectionCountUpdate(int value) {
            if (inside.incrementAndGet() != 1) {
              overlaps.incrementAndGet();
            }
            Thread.yield();
            last.set(value);
            inside.decrementAndGet();
          }
        };
    ChannelCount count = new ChannelCount(slow, null);
    int threads = 4;
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> workers = new CopyOnWriteArrayList<>();
      for (int t = 0; t < threads; t++) {
        int seed = t;
        workers.add(
            pool.submit(
                () -> {
                  start.await();
                  for (int i = 0; i < 20_000; i++) {
                    if ((i + seed) % 3 == 0) {
                      count.opened();
                    } else if (count.get() > 0) {
                      count.unopened();
                    } else {
                      count.opened();
                    }
                    count.deliver();
                  }
                  return null;
                }));
      }
      start.countDown();
      for (Future<?> worker : workers) {
        worker.get(1, TimeUnit.MINUTES);
      }
    } finally {
      pool.shutdownNow();
    }

    assertThat(overlaps).hasValue(0);
    assertThat(last).hasValue(count.get());
  }
}
