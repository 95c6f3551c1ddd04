package io.github.hesmar.grpcproxy.connector.actuate;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.ConnectivityState;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/**
 * The rule of the health indicator of the Boot line under test, on channel lists built by hand:
 * which addresses are down and since when. The auto-configuration's tests check it on real
 * channels.
 */
class CachingConnectorHealthIndicatorTest {

  private static final String ORDERS = "dns:///orders.internal:443";
  private static final String USERS = "dns:///users.internal:443";
  private static final Instant CREATED = Instant.parse("2026-01-05T10:00:00Z");

  private static final ConnectivityState READY = ConnectivityState.READY;
  private static final ConnectivityState FAILING = ConnectivityState.TRANSIENT_FAILURE;

  private long ids;

  @Test
  void anAddressWithOneChannelFailingBesideAReadySiblingIsNotDown() {
    IndicatorHealth health =
        BootLineIndicator.health(
            List.of(channel(ORDERS, FAILING, "10:01:00"), channel(ORDERS, READY, "10:00:05")),
            /* downOnTransientFailure= */ true);

    assertThat(health.status()).isEqualTo("UP");
    assertThat(health.details())
        .containsEntry("transientFailures", List.of(ORDERS))
        .containsEntry("downSince", Map.of());
  }

  @Test
  void anAddressAllOfWhoseChannelsFailIsDownSinceTheLastOfThemStartedFailing() {
    IndicatorHealth health =
        BootLineIndicator.health(
            List.of(
                channel(ORDERS, FAILING, "10:01:00"),
                channel(ORDERS, FAILING, "10:03:00"),
                channel(ORDERS, FAILING, "10:02:00"),
                channel(USERS, READY, "10:00:05")),
            /* downOnTransientFailure= */ true);

    assertThat(health.status()).isEqualTo("DOWN");
    assertThat(health.details())
        .containsEntry("connections", 4)
        .containsEntry("transientFailures", List.of(ORDERS))
        .containsEntry("downSince", Map.of(ORDERS, at("10:03:00")));
  }

  @Test
  void withTheSwitchOffAnAddressDownIsListedAndTheHealthStaysUp() {
    IndicatorHealth health =
        BootLineIndicator.health(
            List.of(channel(ORDERS, FAILING, "10:01:00"), channel(USERS, FAILING, "10:02:00")),
            /* downOnTransientFailure= */ false);

    assertThat(health.status()).isEqualTo("UP");
    assertThat(health.details())
        .containsEntry("transientFailures", List.of(ORDERS, USERS))
        .containsEntry("downSince", Map.of(ORDERS, at("10:01:00"), USERS, at("10:02:00")));
  }

  @Test
  void aChannelStillConnectingKeepsItsAddressUp() {
    IndicatorHealth health =
        BootLineIndicator.health(
            List.of(
                channel(ORDERS, FAILING, "10:01:00"),
                channel(ORDERS, ConnectivityState.CONNECTING, "10:01:30")),
            /* downOnTransientFailure= */ true);

    assertThat(health.status()).isEqualTo("UP");
    assertThat(health.details()).containsEntry("downSince", Map.of());
  }

  @Test
  void aClosingChannelDoesNotCountWhileItsAddressHasOthers() {
    // Retired for silence but READY, beside the fresh channel new dials get: that one fails.
    IndicatorHealth retiredReady =
        BootLineIndicator.health(
            List.of(
                closing(ORDERS, READY, "10:00:05", CloseCause.UNHEALTHY),
                channel(ORDERS, FAILING, "10:04:00")),
            /* downOnTransientFailure= */ true);
    // Detached and failing, beside a fresh channel that works.
    IndicatorHealth detachedFailing =
        BootLineIndicator.health(
            List.of(
                closing(ORDERS, FAILING, "10:01:00", CloseCause.RELEASED),
                channel(ORDERS, READY, "10:04:00")),
            /* downOnTransientFailure= */ true);

    assertThat(retiredReady.status()).isEqualTo("DOWN");
    assertThat(retiredReady.details()).containsEntry("downSince", Map.of(ORDERS, at("10:04:00")));
    assertThat(detachedFailing.status()).isEqualTo("UP");
    assertThat(detachedFailing.details())
        .containsEntry("transientFailures", List.of(ORDERS))
        .containsEntry("downSince", Map.of());
  }

  @Test
  void anAddressWhoseChannelsAreAllClosingIsJudgedOnThem() {
    IndicatorHealth health =
        BootLineIndicator.health(
            List.of(
                closing(ORDERS, FAILING, "10:01:00", CloseCause.RELEASED),
                closing(ORDERS, FAILING, "10:02:00", CloseCause.MAX_AGE)),
            /* downOnTransientFailure= */ true);

    assertThat(health.status()).isEqualTo("DOWN");
    assertThat(health.details()).containsEntry("downSince", Map.of(ORDERS, at("10:02:00")));
  }

  @Test
  void countsChannelsAndTheirLeasesAndAnEmptyConnectorIsUp() {
    IndicatorHealth empty = BootLineIndicator.health(List.of(), /* downOnTransientFailure= */ true);
    IndicatorHealth two =
        BootLineIndicator.health(
            List.of(
                new ConnectionInfo(
                    1, ORDERS, 3, 5, 0, 100, 0, READY, CREATED, false, null, CREATED, CREATED),
                new ConnectionInfo(
                    2, USERS, 2, 2, 0, 100, 0, null, null, false, null, CREATED, CREATED)),
            /* downOnTransientFailure= */ true);

    assertThat(empty.status()).isEqualTo("UP");
    assertThat(empty.details())
        .containsEntry("connections", 0)
        .containsEntry("leases", 0)
        .containsEntry("transientFailures", List.of())
        .containsEntry("downSince", Map.of());
    assertThat(two.status()).isEqualTo("UP");
    assertThat(two.details()).containsEntry("connections", 2).containsEntry("leases", 5);
  }

  private ConnectionInfo channel(String address, ConnectivityState state, String since) {
    return info(address, state, since, null);
  }

  private ConnectionInfo closing(
      String address, ConnectivityState state, String since, CloseCause cause) {
    return info(address, state, since, cause);
  }

  private ConnectionInfo info(
      String address, ConnectivityState state, String since, @Nullable CloseCause cause) {
    return new ConnectionInfo(
        ++ids, address, 1, 0, 0, 100, 0, state, at(since), cause != null, cause, CREATED, CREATED);
  }

  /** A time on the day of {@link #CREATED}, as {@code HH:mm:ss}. */
  private static Instant at(String time) {
    return Instant.parse("2026-01-05T" + time + "Z");
  }
}
