package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.autoconfigure.RecordingChannelProvider.Keepalive;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

/**
 * {@code grpc.connector.channel.keepalive.*}: the keepalive options that the builders of the
 * starter's channels get, recorded inside grpc-java's channel registry, on channels that then make
 * a real call to a loopback backend.
 */
class ChannelKeepaliveTest {

  /** grpc-java's default: nothing set, no pings. */
  private static final Keepalive NO_KEEPALIVE = new Keepalive(null, null, null);

  private static LoopbackBackend backend;

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(AutoConfigurations.of(CachingConnectorAutoConfiguration.class))
          .withPropertyValues(
              "grpc.connector.channel.plaintext=true", "grpc.connector.expiry.enabled=false");

  @BeforeAll
  static void startBackend() {
    backend = LoopbackBackend.start();
  }

  @AfterAll
  static void stopBackend() throws InterruptedException {
    backend.close();
  }

  /** The backend by another address than {@link LoopbackBackend#address()}, for a second target. */
  private static String ipAddress() {
    return "127.0.0.1:" + backend.port();
  }

  @Test
  void channelsPingAfterFiveMinutesWithoutReadsWaitTwentySecondsAndNeverPingWithoutCalls() {
    try (RecordingChannelProvider recorded = RecordingChannelProvider.register(backend.address())) {
      contextRunner.run(
          context -> {
            LoopbackBackend.checkAndRelease(
                context.getBean(CachingConnector.class), backend.address());
            assertThat(recorded.keepalive(backend.address()))
                .isEqualTo(new Keepalive(Duration.ofMinutes(5), Duration.ofSeconds(20), false));
          });
    }
  }

  @Test
  void configuredKeepaliveReachesTheChannels() {
    try (RecordingChannelProvider recorded = RecordingChannelProvider.register(backend.address())) {
      contextRunner
          .withPropertyValues(
              "grpc.connector.channel.keepalive.time=10m",
              "grpc.connector.channel.keepalive.timeout=5s",
              "grpc.connector.channel.keepalive.without-calls=true")
          .run(
              context -> {
                LoopbackBackend.checkAndRelease(
                    context.getBean(CachingConnector.class), backend.address());
                assertThat(recorded.keepalive(backend.address()))
                    .isEqualTo(new Keepalive(Duration.ofMinutes(10), Duration.ofSeconds(5), true));
              });
    }
  }

  @Test
  void keepaliveEnabledFalseLeavesTheChannelsWithoutPingsAsGrpcJavaHasThem() {
    try (RecordingChannelProvider recorded = RecordingChannelProvider.register(backend.address())) {
      contextRunner
          .withPropertyValues(
              "grpc.connector.channel.keepalive.enabled=false",
              // Ignored while keepalive is off.
              "grpc.connector.channel.keepalive.time=10m")
          .run(
              context -> {
                LoopbackBackend.checkAndRelease(
                    context.getBean(CachingConnector.class), backend.address());
                assertThat(recorded.keepalive(backend.address())).isEqualTo(NO_KEEPALIVE);
              });
    }
  }

  @Test
  void targetCanTurnKeepaliveOffForItsAddresses() {
    try (RecordingChannelProvider recorded =
        RecordingChannelProvider.register(backend.address(), ipAddress())) {
      contextRunner
          .withPropertyValues(
              "grpc.connector.targets.local.pattern=localhost:*",
              "grpc.connector.targets.local.keepalive.enabled=false")
          .run(
              context -> {
                CachingConnector connector = context.getBean(CachingConnector.class);
                LoopbackBackend.checkAndRelease(connector, backend.address());
                LoopbackBackend.checkAndRelease(connector, ipAddress());
                assertThat(recorded.keepalive(backend.address())).isEqualTo(NO_KEEPALIVE);
                assertThat(recorded.keepalive(ipAddress()))
                    .isEqualTo(new Keepalive(Duration.ofMinutes(5), Duration.ofSeconds(20), false));
              });
    }
  }

  @Test
  void targetSettingAKeepaliveTimeHasKeepaliveWhereTheGlobalSwitchIsOff() {
    try (RecordingChannelProvider recorded =
        RecordingChannelProvider.register(backend.address(), ipAddress())) {
      contextRunner
          .withPropertyValues(
              "grpc.connector.channel.keepalive.enabled=false",
              "grpc.connector.targets.local.pattern=localhost:*",
              "grpc.connector.targets.local.keepalive.time=7m")
          .run(
              context -> {
                CachingConnector connector = context.getBean(CachingConnector.class);
                LoopbackBackend.checkAndRelease(connector, backend.address());
                LoopbackBackend.checkAndRelease(connector, ipAddress());
                // The target's time; the global timeout and without-calls.
                assertThat(recorded.keepalive(backend.address()))
                    .isEqualTo(new Keepalive(Duration.ofMinutes(7), Duration.ofSeconds(20), false));
                assertThat(recorded.keepalive(ipAddress())).isEqualTo(NO_KEEPALIVE);
              });
    }
  }
}
