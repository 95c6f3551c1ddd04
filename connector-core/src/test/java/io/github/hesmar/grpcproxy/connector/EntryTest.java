package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import java.time.Duration;
import java.time.InstantSource;
import org.junit.jupiter.api.Test;

/** {@link Entry} on its own: each transition of the state word, from pending to closed. */
class EntryTest {

  final FakeClock clock = new FakeClock();
  final TrackedChannel channel = new TrackedChannel("alpha", 0, null, false);

  Entry pending() {
    return new Entry("alpha", 1, null, new PendingDial(System.nanoTime()), Watches.defaults());
  }

  /** A published entry whose dialing caller gave its lease back. */
  Entry published() {
    Entry entry = pending();
    assertThat(entry.publish(channel, clock.millis())).isTrue();
    entry.dropReservation();
    return entry;
  }

  @Test
  void aPendingEntryIsNotLeasableAndHoldsTheReservedLeaseOnceItIsPublished() {
    Entry entry = pending();
    assertThat(entry.lease(clock, Entry.NO_LIMIT)).isEqualTo(Entry.NOT_LEASABLE);
    assertThat(entry.pendingDial()).isNotNull();

    assertThat(entry.publish(channel, clock.millis())).isTrue();

    assertThat(entry.pendingDial()).isNull();
    assertThat(entry.leases()).as("the reserved lease").isEqualTo(1);
    assertThat(entry.isLeasable()).isTrue();
    entry.release(Entry.BASE);
    assertThat(entry.leases()).isZero();
  }

  @Test
  void aReservationDroppedWhilePendingLeavesTheChannelWithNoLease() {
    Entry entry = pending();
    entry.dropReservation();
    entry.publish(channel, clock.millis());

    assertThat(entry.leases()).isZero();
  }

  @Test
  void aPendingEntryEndsInExactlyOneOfPublishAndFail() {
    Entry failed = pending();
    assertThat(failed.fail()).isTrue();
    assertThat(failed.fail()).isFalse();
    assertThat(failed.publish(channel, clock.millis())).isFalse();
    assertThat(failed.isClosed()).isTrue();
    assertThat(failed.leases()).isZero();

    Entry published = published();
    assertThat(published.fail()).isFalse();
    assertThat(published.isClosed()).isFalse();
  }

  @Test
  void leasesAreCountedInTheWordThenInCellsAndADetachedEntryIsGone() {
    Entry entry = published();
    int base = entry.lease(clock, Entry.NO_LIMIT);
    entry.stripe();
    int cell = entry.lease(clock, Entry.NO_LIMIT);

    assertThat(base).isEqualTo(Entry.BASE);
    assertThat(cell).isGreaterThan(Entry.BASE);
    assertThat(entry.leases()).isEqualTo(2);
    assertThat(entry.detach(CloseCause.RELEASED)).isTrue();
    assertThat(entry.detach(CloseCause.EXPIRED)).isFalse();
    assertThat(entry.detachCause()).isEqualTo(CloseCause.RELEASED);
    assertThat(entry.lease(clock, Entry.NO_LIMIT)).isEqualTo(Entry.GONE);
    entry.release(base);
    entry.release(cell);
    assertThat(entry.leases()).isZero();
  }

  @Test
  void aChannelShutDownBySomeoneElseIsStale() {
    Entry entry = published();
    channel.shutdown();

    assertThat(entry.lease(clock, Entry.NO_LIMIT)).isEqualTo(Entry.STALE);
  }

  @Test
  void aCloseThatIsNotForcedWaitsForEveryLeaseAndCall() {
    Entry entry = published();
    int slot = entry.lease(clock, Entry.NO_LIMIT);
    assertThat(entry.close(/* force= */ false)).isFalse();
    entry.release(slot);
    assertThat(entry.startCall()).isTrue();
    assertThat(entry.close(/* force= */ false)).isFalse();
    entry.endCall();

    assertThat(entry.close(/* force= */ false)).isTrue();
    assertThat(entry.close(/* force= */ true)).as("closed once").isFalse();
    assertThat(entry.startCall()).as("a call on a closed channel").isFalse();
    assertThat(entry.calls()).isZero();
    assertThat(entry.lease(clock, Entry.NO_LIMIT)).isEqualTo(Entry.GONE);
  }

  @Test
  void aForcedCloseClosesAnEntryInUse() {
    Entry entry = published();
    entry.lease(clock, Entry.NO_LIMIT);

    assertThat(entry.close(/* force= */ true)).isTrue();
    assertThat(entry.info()).isNull();
  }

  @Test
  void aFirstChannelWithAnExtraChannelIsNotClosedIdle() {
    Entry first = published();
    Entry extra =
        new Entry("alpha", 2, first, new PendingDial(System.nanoTime()), Watches.defaults());
    assertThat(new AddressPool(2).add(first, extra)).isTrue();

    assertThat(first.close(/* force= */ false)).isFalse();
    AddressPool.remove(extra);
    assertThat(first.close(/* force= */ false)).isTrue();
  }

  @Test
  void expiryClosesAtTheSecondIdlePassAndALeaseStartsTheCountAgain() {
    Entry entry = published();

    assertThat(entry.passAndCloseIfIdle()).as("pass 1 after the dial").isEqualTo(Entry.Pass.KEPT);
    entry.release(entry.lease(clock, Entry.NO_LIMIT));
    assertThat(entry.passAndCloseIfIdle()).as("pass 1 after the lease").isEqualTo(Entry.Pass.KEPT);
    assertThat(entry.info().idlePasses()).isEqualTo(1);
    assertThat(entry.passAndCloseIfIdle()).as("pass 2").isEqualTo(Entry.Pass.CLOSED);
    assertThat(entry.isClosed()).isTrue();
    assertThat(entry.isLive()).isFalse();
  }

  @Test
  void theClockHandGivesALeasedEntryOneSecondChance() {
    Entry entry = published();
    assertThat(entry.takeSecondChance()).as("never leased since its dial").isFalse();

    entry.release(entry.lease(InstantSource.system(), Entry.NO_LIMIT));

    assertThat(entry.takeSecondChance()).isTrue();
    assertThat(entry.takeSecondChance()).isFalse();
  }

  @Test
  void theFirstLeaseSinceAPassRecordsItsTimeAndTheOthersDoNot() {
    Entry entry = published();
    long created = entry.lastDialedMillis;
    entry.passAndCloseIfIdle();
    clock.forward(Duration.ofSeconds(5));

    entry.release(entry.lease(clock, Entry.NO_LIMIT));
    long first = entry.lastDialedMillis;
    clock.forward(Duration.ofSeconds(5));
    entry.release(entry.lease(clock, Entry.NO_LIMIT));

    assertThat(first).isEqualTo(created + 5_000);
    assertThat(entry.lastDialedMillis).as("not the second before the next pass").isEqualTo(first);
  }
}
