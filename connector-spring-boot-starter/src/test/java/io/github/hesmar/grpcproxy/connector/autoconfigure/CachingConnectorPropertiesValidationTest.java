package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

class CachingConnectorPropertiesValidationTest {

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(AutoConfigurations.of(CachingConnectorAutoConfiguration.class));

  @ParameterizedTest(name = "{0}={1} stops start-up")
  @CsvSource({
    "grpc.connector.expiry.interval, 0s, must be positive",
    "grpc.connector.expiry.interval, -5s, must be positive",
    "grpc.connector.dial-timeout, 0s, 'must be positive, for example 30s'",
    "grpc.connector.dial-timeout, -1s, 'must be positive, for example 30s'",
    "grpc.connector.leak-detection-threshold, -1s, must not be negative",
    "grpc.connector.shutdown.grace-period, -1s, must not be negative",
    "grpc.connector.pool.max-calls-per-channel, 0, 'must be positive, was 0 (for example 100)'",
    "grpc.connector.pool.max-calls-per-channel, -3, 'must be positive, was -3'",
    "grpc.connector.pool.max-channels-per-address, 0, 'must be positive, was 0 (for example 8)'",
    "grpc.connector.pool.max-channels-per-address, -1, 'must be positive, was -1'",
    "grpc.connector.maximum-channels, 0, 'must be positive, was 0 (for example 1000)'",
    "grpc.connector.maximum-channels, -2, 'must be positive, was -2'",
    "grpc.connector.max-channel-age, 0s, 'must be positive, was PT0S (for example 30m)'",
    "grpc.connector.max-channel-age, -1m, 'must be positive, was PT-1M'",
    "grpc.connector.channel.idle.timeout, 0s, must be positive",
    "grpc.connector.channel.keepalive.time, -1s, must be positive",
    "grpc.connector.channel.keepalive.timeout, 0ms, must be positive",
    "grpc.connector.channel.inbound.message.max-size, 0B, must be between",
    "grpc.connector.channel.inbound.metadata.max-size, 4GB, must be between",
    "grpc.connector.channel.user-agent, ' ', must not be blank",
    "grpc.connector.channel.default.load-balancing-policy, ' ', must not be blank",
  })
  void invalidPropertyStopsStartUpNamingIt(String property, String value, String reason) {
    contextRunner
        .withPropertyValues(property + "=" + value)
        .run(
            context -> {
              assertThat(context).hasFailed();
              assertThat(context.getStartupFailure())
                  .rootCause()
                  .hasMessageContaining(property + " " + reason);
            });
  }

  @Test
  void sslBundleWithPlaintextStopsStartUpNamingIt() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.ssl.bundle=client", "grpc.connector.channel.plaintext=true")
        .run(
            context ->
                assertThat(context.getStartupFailure())
                    .rootCause()
                    .hasMessageContaining(
                        "grpc.connector.channel.ssl.bundle must not be set when grpc.connector.channel.plaintext is true"));
  }
}
