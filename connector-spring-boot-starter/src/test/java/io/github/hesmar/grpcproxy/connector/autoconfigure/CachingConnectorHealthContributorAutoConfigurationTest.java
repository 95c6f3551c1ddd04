package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.ConnectivityState;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
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
  void channelInTransientFailureIsReportedAndHealthStaysUp() {
    contextRunner.run(
        context -> {
          assertThat(healthWithOneFailingChannel(context).status()).isEqualTo("UP");
        });
  }

  @Test
  void channelInTransientFailureMakesHealthDownWhenConfigured() {
    contextRunner
        .withPropertyValues("grpc.connector.health.down-on-transient-failure=true")
        .run(
            context -> {
              assertThat(healthWithOneFailingChannel(context).status()).isEqualTo("DOWN");
            });
  }

  @Test
  void addressWithSeveralFailingChannelsIsReportedOnce() {
    contextRunner
        .withPropertyValues("grpc.connector.pool.max-calls-per-channel=1")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              String address = closedPortAddress();
              try (LeasedChannel first = connector.dial(address);
                  // Waits for a connection that never comes: the first channel stays full.
                  LoopbackBackend.Watch waiting = LoopbackBackend.watchWaitingForReady(first);
                  LeasedChannel second = connector.dial(address)) {
                second.getState(/* requestConnection= */ true);
                await()
                    .atMost(Duration.ofSeconds(10))
                    .until(
                        () ->
                            connector.connections().stream()
                                    .filter(
                                        info -> info.state() == ConnectivityState.TRANSIENT_FAILURE)
                                    .count()
                                == 2);
                HealthReport health = BootLine.health(context);
                assertThat(health.details())
                    .containsEntry("connections", 2)
                    .containsEntry("leases", 2)
                    .containsEntry("transientFailures", List.of(address));
              }
            });
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
    HealthReport health = BootLine.health(context);
    assertThat(health.details())
        .containsEntry("connections", 1)
        .containsEntry("transientFailures", List.of(address));
    return health;
  }

  /** The address of a loopback port that nothing listens on: channels to it fail to connect. */
  private static String closedPortAddress() throws IOException {
    try (ServerSocket closed = new ServerSocket(0)) {
      return "localhost:" + closed.getLocalPort();
    }
  }
}
