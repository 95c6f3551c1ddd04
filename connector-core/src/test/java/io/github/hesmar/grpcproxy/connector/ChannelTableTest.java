package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.hesmar.grpcproxy.connector.ChannelCount.Closed;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link ChannelTable} on its own: the claim of an address, detaching, closing, snapshots. */
class ChannelTableTest {

  final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
  final ChannelCount count = new ChannelCount(new ConnectorListener() {}, null);
  final ChannelTable table =
      new ChannelTable(new Drainer(Duration.ZERO, scheduler), count, Watches.of(1));
  final AddressPool pool = new AddressPool(4);
  int serial;

  @AfterEach
  void tearDown() {
    scheduler.shutdownNow();
  }

  /** A first channel of {@code address}, in the map, published with no lease. */
  Entry published(String address) {
    Entry entry = table.newEntry(address, null);
    assertThat(table.putIfAbsent(entry)).isNull();
    publish(entry);
    return entry;
  }

  /** An extra channel of {@code first}, published with no lease. */
  Entry extraOf(Entry first) {
    Entry extra = table.newEntry(first.address, first);
    assertThat(pool.add(first, extra)).isTrue();
    publish(extra);
    return extra;
  }

  void publish(Entry entry) {
    count.opened();
    assertThat(
            entry.publish(new TrackedChannel(entry.address, ++serial, null, false), /* now= */ 0))
        .isTrue();
    entry.dropReservation(); // the caller that dialed gave its lease back
  }

  @Test
  void thePendingEntryPutFirstClaimsTheAddress() {
    Entry first = table.newEntry("alpha", null);
    Entry second = table.newEntry("alpha", null);

    assertThat(table.putIfAbsent(first)).isNull();
    assertThat(table.putIfAbsent(second)).isSameAs(first);
    assertThat(table.get("alpha")).isSameAs(first);
    assertThat(second.id).isGreaterThan(first.id);
    assertThat(first.pendingDial()).isNotNull();
  }

  @Test
  void detachingAFirstChannelDetachesItsExtraChannels() {
    Entry first = published("alpha");
    Entry extra = extraOf(first);
    List<Closed> closes = new ArrayList<>();

    assertThat(table.detach(first, CloseCause.RELEASED, closes)).isTrue();

    assertThat(table.get("alpha")).isNull();
    assertThat(table.detached()).containsExactlyInAnyOrder(first, extra);
    assertThat(extra.detachCause()).isEqualTo(CloseCause.RELEASED);
    assertThat(closes).isEmpty();
    assertThat(table.detach(first, CloseCause.RELEASED, closes)).as("only once").isFalse();
  }

  @Test
  void aFirstChannelWithAnExtraChannelIsNotClosedUntilTheExtraOneIs() {
    Entry first = published("alpha");
    Entry extra = extraOf(first);

    assertThat(table.close(first, /* force= */ false)).isFalse();
    assertThat(table.close(extra, /* force= */ false)).isTrue();
    assertThat(table.close(first, /* force= */ false)).isTrue();

    assertThat(first.channel().isShutdown()).isTrue();
    assertThat(extra.channel().isShutdown()).isTrue();
    assertThat(table.get("alpha")).isNull();
    assertThat(AddressPool.extras(first)).isEmpty();
  }

  @Test
  void aClosedDetachedEntryLeavesTheDetachedSet() {
    Entry first = published("alpha");
    table.detach(first, CloseCause.RELEASED, new ArrayList<>());

    assertThat(table.close(first, /* force= */ false)).isTrue();

    assertThat(table.detached()).isEmpty();
    assertThat(table.close(first, /* force= */ true)).as("closed once").isFalse();
  }

  @Test
  void aLeasedEntryIsClosedOnlyByForce() {
    Entry first = published("alpha");
    int slot = first.lease(InstantSource.system(), Entry.NO_LIMIT);

    assertThat(table.close(first, /* force= */ false)).isFalse();
    assertThat(table.close(first, /* force= */ true)).isTrue();
    first.release(slot);
    assertThat(first.channel().isShutdown()).isTrue();
  }

  @Test
  void aDetachAfterTheConnectorClosedClosesWhatItDetaches() {
    Entry first = published("alpha");
    List<Closed> closes = new ArrayList<>();
    assertThat(table.markClosed()).isTrue();

    table.detach(first, CloseCause.STALE, closes);

    assertThat(closes).containsExactly(new Closed("alpha", CloseCause.SHUTDOWN));
    assertThat(first.channel().isShutdown()).isTrue();
    assertThat(table.markClosed()).as("closed once").isFalse();
    assertThatThrownBy(table::checkOpen)
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("CachingConnector is closed");
  }

  @Test
  void snapshotsListEveryChannelByAddressThenIdAndSumLeases() {
    Entry beta = published("beta");
    Entry alpha = published("alpha");
    Entry alphaExtra = extraOf(alpha);
    Entry pending = table.newEntry("gamma", null);
    table.putIfAbsent(pending);
    int slot = alphaExtra.lease(InstantSource.system(), Entry.NO_LIMIT);

    assertThat(table.connections())
        .extracting(ConnectionInfo::id)
        .containsExactly(alpha.id, alphaExtra.id, beta.id);
    assertThat(table.leaseCount()).isEqualTo(1);
    assertThat(table.callCount()).isZero();
    alphaExtra.release(slot);
    assertThat(table.leaseCount()).isZero();
    assertThat(requireNonNull(pending.pendingDial()).outcome()).isNull();
  }
}
