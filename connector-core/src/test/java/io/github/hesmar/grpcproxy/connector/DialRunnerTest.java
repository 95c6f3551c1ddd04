package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.time.InstantSource;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link DialRunner} on its own: publishing, failing and abandoning one dial, and its place. */
class DialRunnerTest {

  final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
  final ExecutorService dialThreads = Executors.newCachedThreadPool();
  final List<String> events = new CopyOnWriteArrayList<>();
  final ConnectorListener recording =
      new ConnectorListener() {
        @Override
        public void onCacheMiss(String address) {
          events.add("miss " + address);
        }

        @Override
        public void onDialComplete(String address, Duration took, @Nullable Throwable failure) {
          events.add("dialed " + address + (failure == null ? "" : " failed"));
        }
      };
  final AtomicInteger serial = new AtomicInteger();

  @AfterEach
  void tearDown() {
    scheduler.shutdownNow();
    dialThreads.shutdownNow();
  }

  DialRunner runner(
      ChannelTable table, ChannelCount count, @Nullable ChannelBound bound, Dialer dialer) {
    return new DialRunner(
        table,
        count,
        bound,
        dialer,
        recording,
        InstantSource.system(),
        dialThreads,
        Duration.ofDays(1));
  }

  TrackedChannel channelFor(String address) {
    return new TrackedChannel(address, serial.incrementAndGet(), null, false);
  }

  @Test
  void aDialThatSucceedsPublishesItsChannelAndCountsIt() throws Exception {
    ChannelCount count = new ChannelCount(recording, null);
    ChannelTable table =
        new ChannelTable(new Drainer(Duration.ZERO, scheduler), count, Watches.of(1));
    DialRunner runner = runner(table, count, null, this::channelFor);
    Entry entry = table.newEntry("alpha", null);
    table.putIfAbsent(entry);
    PendingDial pending = requireNonNull(entry.pendingDial());

    runner.start(entry, pending);

    await().until(() -> pending.outcome() != null);
    assertThat(pending.outcome()).isSameAs(PendingDial.SUCCEEDED);
    assertThat(entry.isPending()).isFalse();
    assertThat(entry.leases()).as("the reserved lease of the caller that dialed").isEqualTo(1);
    assertThat(count.get()).isEqualTo(1);
    await().until(() -> events.size() == 2);
    assertThat(events).containsExactly("miss alpha", "dialed alpha");
  }

  @Test
  void aDialerThatThrowsFailsTheEntryAndTakesItOutOfTheTable() {
    ChannelCount count = new ChannelCount(recording, null);
    ChannelTable table =
        new ChannelTable(new Drainer(Duration.ZERO, scheduler), count, Watches.of(1));
    IllegalStateException broken = new IllegalStateException("broken");
    DialRunner runner =
        runner(
            table,
            count,
            null,
            address -> {
              throw broken;
            });
    Entry entry = table.newEntry("alpha", null);
    table.putIfAbsent(entry);
    PendingDial pending = requireNonNull(entry.pendingDial());

    runner.start(entry, pending);

    await().until(() -> pending.outcome() != null);
    assertThat(pending.outcome()).isSameAs(broken);
    assertThat(entry.isClosed()).isTrue();
    assertThat(table.get("alpha")).isNull();
    assertThat(count.get()).isZero();
  }

  @Test
  void aChannelReturnedAfterItsDialWasAbandonedIsShutDownAndNeverCounted() throws Exception {
    ChannelCount count = new ChannelCount(recording, null);
    ChannelTable table =
        new ChannelTable(new Drainer(Duration.ZERO, scheduler), count, Watches.of(1));
    CountDownLatch dialing = new CountDownLatch(1);
    CountDownLatch returnChannel = new CountDownLatch(1);
    List<TrackedChannel> returned = new CopyOnWriteArrayList<>();
    DialRunner runner =
        runner(
            table,
            count,
            null,
            address -> {
              dialing.countDown();
              returnChannel.await();
              TrackedChannel channel = channelFor(address);
              returned.add(channel);
              return channel;
            });
    Entry entry = table.newEntry("alpha", null);
    table.putIfAbsent(entry);
    PendingDial pending = requireNonNull(entry.pendingDial());
    runner.start(entry, pending);
    // Abandoned while its dialer runs (abandoned before, the dialer would never be called).
    assertThat(dialing.await(10, TimeUnit.SECONDS)).isTrue();

    runner.abandon(entry, pending);
    returnChannel.countDown();

    assertThat(pending.outcome())
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
    await().until(() -> events.contains("dialed alpha"));
    assertThat(returned).singleElement().satisfies(c -> assertThat(c.isShutdown()).isTrue());
    assertThat(count.get()).isZero();
    assertThat(table.get("alpha")).isNull();
  }

  @Test
  void aDialIsOverdueOnlyOnceItsTimeoutHasPassed() {
    ChannelCount count = new ChannelCount(recording, null);
    ChannelTable table =
        new ChannelTable(new Drainer(Duration.ZERO, scheduler), count, Watches.of(1));
    DialRunner patient = runner(table, count, null, this::channelFor);
    DialRunner hasty =
        new DialRunner(
            table,
            count,
            null,
            this::channelFor,
            recording,
            InstantSource.system(),
            dialThreads,
            Duration.ofNanos(1_000));
    PendingDial started = new PendingDial(System.nanoTime() - TimeUnit.MILLISECONDS.toNanos(1));

    assertThat(patient.isOverdue(started)).isFalse();
    assertThat(hasty.isOverdue(started)).isTrue();
    assertThat(hasty.deadline(started)).isEqualTo(started.startNanos + 1_000);
  }

  @Test
  void aFailedDialGivesItsPlaceUnderTheBoundBack() {
    ChannelBound bound = new ChannelBound(1);
    ChannelCount count = new ChannelCount(recording, bound);
    ChannelTable table =
        new ChannelTable(new Drainer(Duration.ZERO, scheduler), count, Watches.of(1));
    DialRunner runner =
        runner(
            table,
            count,
            bound,
            address -> {
              throw new IllegalStateException("refused");
            });
    Entry entry = table.newEntry("alpha", null);
    table.putIfAbsent(entry);
    PendingDial pending = requireNonNull(entry.pendingDial());

    runner.start(entry, pending);
    await().until(() -> pending.outcome() != null);

    AtomicInteger examined = new AtomicInteger();
    bound.claim(
        candidate -> {
          examined.incrementAndGet();
          return false;
        });
    assertThat(examined).as("the place was free again").hasValue(0);
    assertThat(pending.takePlace()).as("given back once").isFalse();
  }
}
