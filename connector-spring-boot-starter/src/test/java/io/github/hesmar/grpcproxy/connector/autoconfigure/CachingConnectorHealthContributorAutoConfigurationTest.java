package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.ConnectivityState;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.ApplicationContext;

class CachingConnectorHealthContributorAutoConfigurationTest {

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(
              AutoConfigurations.of(
                  CachingConnectorAutoConfiguration.class, BootLine.HEALTH_AUTO_CONFIGURATION))
          .withPropertyValues(
              "grpc.connector.channel.plaintext=true", "grpc.connector.expiry.enabled=false");

  @Test
  void addressWhoseOnlyChannelFailsIsReportedDownAndHealthStaysUp() {
    contextRunner.run(
        context -> {
          assertThat(healthWithOneFailingChannel(context).status()).isEqualTo("UP");
        });
  }

  @Test
  void addressWhoseOnlyChannelFailsMakesHealthDownWhenConfigured() {
    contextRunner
        .withPropertyValues("grpc.connector.health.down-on-transient-failure=true")
        .run(
            context -> {
              assertThat(healthWithOneFailingChannel(context).status()).isEqualTo("DOWN");
            });
  }

  @Test
  void addressAllOfWhoseChannelsFailIsDownSinceTheLastOfThemStartedFailing() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.pool.max-calls-per-channel=1",
            "grpc.connector.health.down-on-transient-failure=true")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              String address = closedPortAddress();
              try (LeasedChannel first = connector.dial(address);
                  // Waits for a connection that never comes: the first channel stays full.
                  LoopbackBackend.Watch waiting = LoopbackBackend.watchWaitingForReady(first);
                  LeasedChannel second = connector.dial(address)) {
                second.getState(/* requestConnection= */ true);
                await().atMost(Duration.ofSeconds(10)).until(() -> failing(connector).size() == 2);
                // Read again should a channel's state move between the two reads.
                await()
                    .atMost(Duration.ofSeconds(10))
                    .untilAsserted(
                        () -> {
                          Instant lastToFail =
                              failing(connector).stream()
                                  .map(ConnectionInfo::stateSince)
                                  .max(Comparator.naturalOrder())
                                  .orElseThrow();
                          HealthReport health = BootLine.health(context);
                          assertThat(health.status()).isEqualTo("DOWN");
                          assertThat(health.details())
                              .containsEntry("connections", 2)
                              .containsEntry("leases", 2)
                              .containsEntry("transientFailures", List.of(address))
                              .containsEntry("downSince", Map.of(address, lastToFail));
                        });
              }
            });
  }

  @Test
  void addressWithAFailingChannelBesideAReadyOneIsNotDown() throws Exception {
    try (LoopbackBackend backend = LoopbackBackend.start();
        LoopbackRelay relay = LoopbackRelay.to(backend.port())) {
      contextRunner
          .withPropertyValues(
              "grpc.connector.pool.max-calls-per-channel=1",
              "grpc.connector.health.down-on-transient-failure=true")
          .run(
              context -> {
                CachingConnector connector = context.getBean(CachingConnector.class);
                String address = relay.address();
                try (LeasedChannel first = connector.dial(address);
                    LoopbackBackend.Watch watch = LoopbackBackend.watch(first)) {
                  // The first channel is connected through the relay, and full.
                  await().atMost(Duration.ofSeconds(10)).until(() -> !watch.statuses.isEmpty());
                  relay.stopAccepting();
                  try (LeasedChannel second = connector.dial(address)) {
                    second.getState(/* requestConnection= */ true);
                    await()
                        .atMost(Duration.ofSeconds(10))
                        .until(() -> failing(connector).size() == 1);
                    assertThat(connector.connections())
                        .extracting(ConnectionInfo::address, ConnectionInfo::state)
                        .containsExactlyInAnyOrder(
                            tuple(address, ConnectivityState.READY),
                            tuple(address, ConnectivityState.TRANSIENT_FAILURE));
                    HealthReport health = BootLine.health(context);
                    assertThat(health.status()).isEqualTo("UP");
                    assertThat(health.details())
                        .containsEntry("connections", 2)
                        .containsEntry("transientFailures", List.of(address))
                        .containsEntry("downSince", Map.of());
                  }
                }
              });
    }
  }

  @Test
  void healthContributorCanBeSwitchedOff() {
    contextRunner
        .withPropertyValues("management.health.grpcconnector.enabled=false")
        .run(
            context -> {
              assertThat(context).hasSingleBean(CachingConnector.class);
              assertThat(context).doesNotHaveBean(BootLine.HEALTH_INDICATOR);
            });
  }

  private static HealthReport healthWithOneFailingChannel(ApplicationContext context)
      throws Exception {
    CachingConnector connector = context.getBean(CachingConnector.class);
    String address = closedPortAddress();
    try (LeasedChannel channel = connector.dial(address)) {
      channel.getState(/* requestConnection= */ true);
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> channel.getState(false) == ConnectivityState.TRANSIENT_FAILURE);
    }
    ConnectionInfo failed = connector.connections().get(0);
    HealthReport health = BootLine.health(context);
    assertThat(health.details())
        .containsEntry("connections", 1)
        .containsEntry("transientFailures", List.of(address))
        .containsEntry("downSince", Map.of(address, failed.stateSince()));
    return health;
  }

  private static List<ConnectionInfo> failing(CachingConnector connector) {
    return connector.connections().stream()
        .filter(info -> info.state() == ConnectivityState.TRANSIENT_FAILURE)
        .toList();
  }

  /** The address of a loopback port that nothing listens on: channels to it fail to connect. */
  private static String closedPortAddress() throws IOException {
    try (ServerSocket closed = new ServerSocket(0)) {
      return "localhost:" + closed.getLocalPort();
    }
  }
}
