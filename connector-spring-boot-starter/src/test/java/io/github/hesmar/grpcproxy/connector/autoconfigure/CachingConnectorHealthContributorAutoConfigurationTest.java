package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.github.hesmar.grpcproxy.connector.actuate.CachingConnectorHealthIndicator;
import io.grpc.ConnectivityState;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

class CachingConnectorHealthContributorAutoConfigurationTest {

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(
              AutoConfigurations.of(
                  CachingConnectorAutoConfiguration.class,
                  CachingConnectorHealthContributorAutoConfiguration.class))
          .withPropertyValues(
              "grpc.connector.channel.plaintext=true", "grpc.connector.expiry.enabled=false");

  @Test
  void channelInTransientFailureIsReportedAndHealthStaysUp() {
    contextRunner.run(
        context -> {
          Health health =
              healthWithOneFailingChannel(
                  context.getBean(CachingConnector.class),
                  context.getBean(CachingConnectorHealthIndicator.class));
          assertThat(health.getStatus()).isEqualTo(Status.UP);
        });
  }

  @Test
  void channelInTransientFailureMakesHealthDownWhenConfigured() {
    contextRunner
        .withPropertyValues("grpc.connector.health.down-on-transient-failure=true")
        .run(
            context -> {
              Health health =
              healthWithOneFailingChannel(
                  context.getBean(CachingConnector.class),
                  context.getBean(CachingConnectorHealthIndicator.class));
              assertThat(health.getStatus()).isEqualTo(Status.DOWN);
            });
  }

  @Test
  void healthContributorCanBeSwitchedOff() {
    contextRunner
        .withPropertyValues("management.health.grpcconnector.enabled=false")
        .run(context -> assertThat(context).doesNotHaveBean(CachingConnectorHealthIndicator.class));
  }

  private static Health healthWithOneFailingChannel(
      CachingConnector connector, CachingConnectorHealthIndicator indicator) throws Exception {
    String address;
    try (ServerSocket closed = new ServerSocket(0)) {
      address = "localhost:" + closed.getLocalPort();
    }
    try (LeasedChannel channel = connector.dial(address)) {
      channel.getState(/* requestConnection= */ true);
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> channel.getState(false) == ConnectivityState.TRANSIENT_FAILURE);
    }
    Health health = indicator.health(/* includeDetails= */ true);
    assertThat(health.getDetails())
        .containsEntry("connections", 1)
        .containsEntry("transientFailures", List.of(address));
    return health;
  }
}
