package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;
import static org.assertj.core.api.Assertions.assertThat;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link Expirer} on its own, on a clock run by hand: idle passes, detached channels, ages. */
class ExpirerTest {

  final FakeClock clock = new FakeClock();
  final ExecutorService dialThreads = Executors.newCachedThreadPool();
  final List<String> closes = new CopyOnWriteArrayList<>();
  final ConnectorListener recording =
      new ConnectorListener() {
        @Override
        public void onClose(String address, CloseCause cause) {
          closes.add(address + " " + cause);
        }
      };
  final ChannelCount count = new ChannelCount(recording, null);
  final Drainer drainer = new Drainer(Duration.ZERO, clock.scheduler());
  final ChannelTable table = new ChannelTable(drainer, count, Watches.defaults());
  int serial;

  @AfterEach
  void tearDown() {
    dialThreads.shutdownNow();
  }

  Expirer expirer(@Nullable Duration maxAge, Duration dialTimeout) {
    DialRunner runner =
        new DialRunner(
            table,
            count,
            null,
            address -> new TrackedChannel(address, ++serial, null, false),
            recording,
            clock,
            dialThreads,
            dialTimeout);
    return new Expirer(table, count, runner, drainer, clock, null, maxAge);
  }

  Expirer expirer() {
    return expirer(null, Duration.ofDays(1));
  }

  /** A first channel of {@code address}, published now with no lease. */
  Entry published(String address) {
    Entry entry = table.newEntry(address, null);
    table.putIfAbsent(entry);
    count.opened();
    entry.publish(new TrackedChannel(address, ++serial, null, false), clock.millis());
    entry.dropReservation();
    return entry;
  }

  @Test
  void aChannelUnusedAtTwoPassesInARowIsClosedAtTheSecond() {
    Expirer expirer = expirer();
    Entry alpha = published("alpha");

    assertThat(expirer.expire()).isEmpty();
    assertThat(expirer.expire()).containsExactly("alpha");

    assertThat(alpha.channel().isShutdown()).isTrue();
    assertThat(table.get("alpha")).isNull();
    assertThat(count.get()).isZero();
    assertThat(closes).containsExactly("alpha EXPIRED");
  }

  @Test
  void aChannelClosesAtTheSecondPassAfterItsLastLease() {
    Expirer expirer = expirer();
    Entry alpha = published("alpha");
    int slot = alpha.lease(clock, Entry.NO_LIMIT);
    expirer.expire();
    expirer.expire();
    alpha.release(slot);
    alpha.release(alpha.lease(clock, Entry.NO_LIMIT));

    assertThat(expirer.expire()).as("the first pass after the last lease").isEmpty();
    assertThat(expirer.expire()).containsExactly("alpha");
  }

  @Test
  void aChannelWithACallIsNeverExpired() {
    Expirer expirer = expirer();
    Entry alpha = published("alpha");
    assertThat(alpha.startCall()).isTrue();

    for (int pass = 0; pass < 4; pass++) {
      assertThat(expirer.expire()).isEmpty();
    }
    alpha.endCall();
    expirer.expire();
    assertThat(expirer.expire()).containsExactly("alpha");
  }

  @Test
  void aDetachedChannelClosesAtThePassAfterItsLastLease() {
    Expirer expirer = expirer();
    Entry alpha = published("alpha");
    int slot = alpha.lease(clock, Entry.NO_LIMIT);
    table.detach(alpha, CloseCause.RELEASED, new ArrayList<>());

    assertThat(expirer.expire()).isEmpty();
    alpha.release(slot);
    assertThat(expirer.expire()).containsExactly("alpha");
    assertThat(closes).containsExactly("alpha RELEASED");
  }

  @Test
  void aChannelIsRetiredWithinTenPercentOfItsMaximumAge() {
    Expirer expirer = expirer(Duration.ofSeconds(100), Duration.ofDays(1));
    Entry alpha = published("alpha");
    int slot = alpha.lease(clock, Entry.NO_LIMIT);
    long retireAt = expirer.retireAt(alpha);
    assertThat(retireAt - alpha.createdMillis).isBetween(90_000L, 110_000L);

    clock.forward(Duration.ofSeconds(89));
    assertThat(expirer.expire()).isEmpty();
    assertThat(alpha.isDetached()).isFalse();

    clock.forward(Duration.ofSeconds(22));
    assertThat(expirer.expire()).as("held: detached, not closed").isEmpty();
    assertThat(alpha.isDetached()).isTrue();
    alpha.release(slot);
    assertThat(expirer.expire()).containsExactly("alpha");
    assertThat(closes).containsExactly("alpha MAX_AGE");
  }

  @Test
  void aPassAbandonsADialPastTheDialTimeout() {
    Expirer expirer = expirer(null, Duration.ofNanos(1_000));
    Entry hung =
        new Entry(
            "alpha",
            1,
            null,
            new PendingDial(System.nanoTime() - TimeUnit.MILLISECONDS.toNanos(1)),
            Watches.defaults());
    table.putIfAbsent(hung);
    PendingDial pending = requireNonNull(hung.pendingDial());

    assertThat(expirer.expire()).isEmpty();

    assertThat(pending.outcome()).isInstanceOf(StatusRuntimeException.class);
    assertThat(hung.isClosed()).isTrue();
    assertThat(table.get("alpha")).isNull();
  }
}
