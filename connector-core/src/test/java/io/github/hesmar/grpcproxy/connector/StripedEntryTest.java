package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The rules hold for an entry whose leases are counted in cells, as after two leases collided
 * (striped here by hand, so that each step is deterministic).
 */
class StripedEntryTest {

  final TrackingDialer dialer = TrackingDialer.fake();
  final CachingConnector connector = dialer.inlineConnector().build();

  @AfterEach
  void tearDown() {
    connector.close();
  }

  /** Dials {@code address} once and stripes its entry; returns that first (state-word) lease. */
  LeasedChannel dialAndStripe(String address) {
    LeasedChannel first = connector.dial(address);
    first.entry.stripe();
    assertThat(first.entry.cells).isNotNull();
    return first;
  }

  @Test
  void leasesInCellsAndInTheStateWordAreCountedTogether() {
    LeasedChannel first = dialAndStripe("alpha");
    LeasedChannel second = connector.dial("alpha");
    LeasedChannel third = connector.dial("alpha");

    assertThat(first.slot).isEqualTo(Entry.BASE);
    assertThat(second.slot).isNotEqualTo(Entry.BASE);
    assertThat(connector.leaseCount()).isEqualTo(3);
    assertThat(connector.connections())
        .singleElement()
        .extracting(ConnectionInfo::leases)
        .isEqualTo(3);

    second.close();
    second.close();
    first.close();
    assertThat(connector.leaseCount()).isEqualTo(1);
    third.close();
    assertThat(connector.leaseCount()).isZero();
    assertThat(dialer.dials).hasValue(1);
  }

  @Test
  void leaseInACellKeepsTheChannelFromExpiring() {
    dialAndStripe("alpha").close();
    LeasedChannel held = connector.dial("alpha");

    for (int pass = 0; pass < 4; pass++) {
      assertThat(connector.expire()).isEmpty();
    }
    assertThat(dialer.created.get(0).shutdowns).hasValue(0);

    held.close();
    connector.expire();
    assertThat(connector.expire()).containsExactly("alpha");
    assertThat(dialer.created.get(0).shutdowns).hasValue(1);
    assertThat(connector.connectionCount()).isZero();
  }

  @Test
  void detachedStripedChannelClosesAfterItsLastCellLeaseIsReleased() {
    dialAndStripe("alpha").close();
    LeasedChannel held = connector.dial("alpha");
    assertThat(connector.closeOnRelease("alpha")).isTrue();

    assertThat(connector.expire()).isEmpty();
    held.close();

    assertThat(connector.expire()).containsExactly("alpha");
    assertThat(dialer.created.get(0).shutdowns).hasValue(1);
  }

  @Test
  void dialBetweenPassesOfAStripedEntryResetsItsIdleCount() {
    dialAndStripe("alpha").close();
    for (int pass = 0; pass < 4; pass++) {
      assertThat(connector.expire()).isEmpty();
      connector.dial("alpha").close();
    }
    assertThat(dialer.dials).hasValue(1);
  }
}
