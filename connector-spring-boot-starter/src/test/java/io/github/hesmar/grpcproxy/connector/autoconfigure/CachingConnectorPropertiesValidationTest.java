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
    "grpc.connector.silent-channel.failed-calls, 0, 'must be positive, was 0 (for example 3)'",
    "grpc.connector.silent-channel.failed-calls, -1, 'must be positive, was -1'",
    "grpc.connector.silent-channel.silence, 0s, 'must be at least 1ms, was PT0S (for example 10s)'",
    "grpc.connector.silent-channel.silence, 500us, 'must be at least 1ms, was PT0.0005S'",
    "grpc.connector.silent-channel.silence, -1s, 'must be at least 1ms, was PT-1S'",
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

  @ParameterizedTest(name = "{0}={1} stops start-up")
  @CsvSource(
      delimiter = '|',
      value = {
        "grpc.connector.targets.local.pattern | ' ' | must not be blank",
        "grpc.connector.targets.local.pattern | regex: | must have a regular expression"
            + " after regex:, was 'regex:'",
        "grpc.connector.targets.local.pattern | regex:[0-9 | must be a valid regular"
            + " expression after regex:, was 'regex:[0-9' (Unclosed character class",
        "grpc.connector.targets.local.idle.timeout | 0s | must be positive, was PT0S",
        "grpc.connector.targets.local.keepalive.time | -1s | must be positive, was PT-1S",
        "grpc.connector.targets.local.keepalive.timeout | 0ms | must be positive, was PT0S",
        "grpc.connector.targets.local.inbound.message.max-size | 0B | must be between 1B and"
            + " 2047MB, was 0B",
        "grpc.connector.targets.local.inbound.metadata.max-size | 4GB | must be between 1B and"
            + " 2047MB, was 4294967296B",
        "grpc.connector.targets.local.user-agent | ' ' | must not be blank",
        "grpc.connector.targets.local.default.load-balancing-policy | ' ' | must not be blank",
        "grpc.connector.targets.local.ssl.bundle | ' ' | must not be blank",
      })
  void invalidTargetPropertyStopsStartUpNamingItAndTheValue(
      String property, String value, String reason) {
    contextRunner
        .withPropertyValues("grpc.connector.targets.local.pattern=127.0.0.1:*")
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
  void targetSettingNoOptionStopsStartUpAsAMisspeltKey() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.targets.local.pattern=127.0.0.1:*",
            "grpc.connector.targets.local.channel.plaintext=true")
        .run(
            context ->
                assertThat(context.getStartupFailure())
                    .rootCause()
                    .hasMessageContaining(
                        "grpc.connector.targets.local.pattern is set but the target sets no"
                            + " channel option"));
  }

  @Test
  void targetWithoutPatternStopsStartUpNamingIt() {
    contextRunner
        .withPropertyValues("grpc.connector.targets.local.plaintext=true")
        .run(
            context ->
                assertThat(context.getStartupFailure())
                    .rootCause()
                    .hasMessageContaining("grpc.connector.targets.local.pattern must be set"));
  }

  @Test
  void targetWithSslBundleAndPlaintextStopsStartUpNamingIt() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.targets.local.pattern=127.0.0.1:*",
            "grpc.connector.targets.local.plaintext=true",
            "grpc.connector.targets.local.ssl.bundle=client")
        .run(
            context ->
                assertThat(context.getStartupFailure())
                    .rootCause()
                    .hasMessageContaining(
                        "grpc.connector.targets.local.ssl.bundle must not be set when"
                            + " grpc.connector.targets.local.plaintext is true, was 'client'"));
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
