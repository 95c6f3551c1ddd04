package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.netty.handler.ssl.NotSslRecordException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.autoconfigure.ssl.SslAutoConfiguration;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.env.PropertiesPropertySourceLoader;
import org.springframework.boot.env.PropertySourceLoader;
import org.springframework.boot.env.YamlPropertySourceLoader;
import org.springframework.boot.ssl.DefaultSslBundleRegistry;
import org.springframework.boot.ssl.SslBundle;
import org.springframework.boot.ssl.SslStoreBundle;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.env.PropertySource;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.io.ByteArrayResource;

/**
 * {@code grpc.connector.targets.*}: per-address channel options, seen on real calls to a plaintext
 * loopback backend while the global default is TLS.
 */
class TargetChannelOptionsTest {

  private static LoopbackBackend backend;

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(
              AutoConfigurations.of(
                  CachingConnectorAutoConfiguration.class, SslAutoConfiguration.class))
          .withPropertyValues("grpc.connector.expiry.enabled=false");

  @BeforeAll
  static void startBackend() {
    backend = LoopbackBackend.start();
  }

  @AfterAll
  static void stopBackend() throws InterruptedException {
    backend.close();
  }

  /** The backend as {@code 127.0.0.1:<port>}, as the sample dials its demo backends. */
  private static String ipAddress() {
    return "127.0.0.1:" + backend.port();
  }

  @Test
  void matchingTargetDialsPlaintextWhileAnAddressMatchedByNoTargetUsesTls() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.targets.loopback.pattern=127.0.0.1:*",
            "grpc.connector.targets.loopback.plaintext=true")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              assertThat(check(connector, ipAddress())).isEqualTo(ServingStatus.SERVING);
              // The same backend by another address: TLS, which the plaintext server cannot speak.
              assertThat(failure(connector, backend.address()).getStatus().getCode())
                  .isEqualTo(Status.Code.UNAVAILABLE);
            });
  }

  @Test
  void firstMatchingTargetWinsInDeclarationOrderNotInNameOrder() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.targets.zulu.pattern=127.0.0.1:*",
            "grpc.connector.targets.zulu.plaintext=true",
            "grpc.connector.targets.alpha.pattern=*",
            "grpc.connector.targets.alpha.plaintext=false")
        .run(
            context -> {
              assertThat(context.getBean(CachingConnectorProperties.class).getTargets())
                  .containsOnlyKeys("zulu", "alpha");
              assertThat(check(context.getBean(CachingConnector.class), ipAddress()))
                  .isEqualTo(ServingStatus.SERVING);
            });
    contextRunner
        .withPropertyValues(
            "grpc.connector.targets.alpha.pattern=*",
            "grpc.connector.targets.alpha.plaintext=false",
            "grpc.connector.targets.zulu.pattern=127.0.0.1:*",
            "grpc.connector.targets.zulu.plaintext=true")
        .run(
            context ->
                assertThat(
                        failure(context.getBean(CachingConnector.class), ipAddress())
                            .getStatus()
                            .getCode())
                    .isEqualTo(Status.Code.UNAVAILABLE));
  }

  @Test
  void keyUnsetOnTheTargetInheritsTheGlobalValue() {
    // A health check response is 2 bytes: over a 1-byte limit it is refused.
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.inbound.message.max-size=1B",
            "grpc.connector.targets.loopback.pattern=127.0.0.1:*",
            "grpc.connector.targets.loopback.plaintext=true")
        .run(
            context ->
                assertThat(
                        failure(context.getBean(CachingConnector.class), ipAddress())
                            .getStatus()
                            .getCode())
                    .isEqualTo(Status.Code.RESOURCE_EXHAUSTED));
  }

  @Test
  void keySetOnTheTargetReplacesTheGlobalValue() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.inbound.message.max-size=1B",
            "grpc.connector.targets.loopback.pattern=127.0.0.1:*",
            "grpc.connector.targets.loopback.plaintext=true",
            "grpc.connector.targets.loopback.inbound.message.max-size=1KB")
        .run(
            context ->
                assertThat(check(context.getBean(CachingConnector.class), ipAddress()))
                    .isEqualTo(ServingStatus.SERVING));
  }

  @Test
  void targetCanTurnTheGlobalPlaintextOff() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.plaintext=true",
            "grpc.connector.targets.external.pattern=127.0.0.1:*",
            "grpc.connector.targets.external.plaintext=false")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              assertThat(failure(connector, ipAddress()).getStatus().getCode())
                  .isEqualTo(Status.Code.UNAVAILABLE);
              assertThat(check(connector, backend.address())).isEqualTo(ServingStatus.SERVING);
            });
  }

  @Test
  void regexPatternMustMatchTheWholeAddress() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.targets.local.pattern=regex:localhost:\\d+",
            "grpc.connector.targets.local.plaintext=true")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              assertThat(check(connector, backend.address())).isEqualTo(ServingStatus.SERVING);
              // Contains a match, but is not one as a whole: TLS.
              assertThat(failure(connector, backend.dnsAddress()).getStatus().getCode())
                  .isEqualTo(Status.Code.UNAVAILABLE);
            });
  }

  @Test
  void globStarMatchesAcrossSlashesAndColons() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.targets.local.pattern=dns:*host:?*",
            "grpc.connector.targets.local.plaintext=true")
        .run(
            context ->
                assertThat(check(context.getBean(CachingConnector.class), backend.dnsAddress()))
                    .isEqualTo(ServingStatus.SERVING));
  }

  @Test
  void targetNamingAnSslBundleUsesTlsWithItEvenWhenPlaintextIsTheGlobalDefault() {
    // Trust material of the JDK's defaults: enough to tell TLS from plaintext.
    DefaultSslBundleRegistry bundles =
        new DefaultSslBundleRegistry("partner", SslBundle.of(SslStoreBundle.NONE));
    contextRunner
        .withBean(DefaultSslBundleRegistry.class, () -> bundles)
        .withPropertyValues(
            "grpc.connector.channel.plaintext=true",
            "grpc.connector.targets.partner.pattern=127.0.0.1:*",
            "grpc.connector.targets.partner.ssl.bundle=partner")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              assertThat(failure(connector, ipAddress()).getStatus().getCode())
                  .isEqualTo(Status.Code.UNAVAILABLE);
              assertThat(check(connector, backend.address())).isEqualTo(ServingStatus.SERVING);
            });
  }

  @Test
  void missingSslBundleOfATargetStopsStartUpNamingTheProperty() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.targets.partner.pattern=*.partner.example:443",
            "grpc.connector.targets.partner.ssl.bundle=partner")
        .run(
            context ->
                assertThat(context.getStartupFailure())
                    .rootCause()
                    .hasMessageContaining(
                        "grpc.connector.targets.partner.ssl.bundle is set to 'partner' but there"
                            + " is no such SSL bundle"));
  }

  @Test
  void fallbackCredentialsAreAskedOnlyForAddressesWhoseOptionsSetNone() throws Exception {
    Queue<String> asked = new ConcurrentLinkedQueue<>();
    CachingConnectorProperties properties = new CachingConnectorProperties();
    TargetProperties loopback = new TargetProperties();
    loopback.setPattern("127.0.0.1:*");
    loopback.setPlaintext(true);
    properties.getTargets().put("loopback", loopback);
    ConfiguredDialer dialer =
        new ConfiguredDialer(
            properties.getChannel(),
            properties.getTargets(),
            (property, name) -> {
              throw new AssertionError(property);
            },
            address -> {
              asked.add(address);
              return InsecureChannelCredentials.create();
            },
            List.of());
    for (String address : List.of(ipAddress(), backend.address())) {
      ManagedChannel channel = dialer.dial(address);
      try {
        assertThat(LoopbackBackend.check(channel)).isEqualTo(ServingStatus.SERVING);
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
    assertThat(asked).containsExactly(backend.address());
  }

  @Test
  void binderKeepsTheFileOrderOfTargetsInYamlAndProperties() throws IOException {
    String yaml =
        """
        grpc:
          connector:
            targets:
              zulu:
                pattern: "127.0.0.1:*"
              alpha:
                pattern: "*"
              mike:
                pattern: "regex:.*"
        """;
    String properties =
        """
        grpc.connector.targets.zulu.pattern=127.0.0.1:*
        grpc.connector.targets.alpha.pattern=*
        grpc.connector.targets.mike.pattern=regex:.*
        """;
    assertThat(bind(new YamlPropertySourceLoader(), yaml).keySet())
        .containsExactly("zulu", "alpha", "mike");
    assertThat(bind(new PropertiesPropertySourceLoader(), properties).keySet())
        .containsExactly("zulu", "alpha", "mike");
  }

  @Test
  void binderPutsTargetsOfASourceOfHigherPrecedenceFirst() throws IOException {
    StandardEnvironment environment = new StandardEnvironment();
    Map<String, Object> higher = new LinkedHashMap<>();
    higher.put("grpc.connector.targets.zulu.pattern", "*");
    higher.put("grpc.connector.targets.alpha.plaintext", "true");
    environment.getPropertySources().addFirst(new MapPropertySource("higher", higher));
    for (PropertySource<?> source :
        new YamlPropertySourceLoader()
            .load(
                "application.yml",
                new ByteArrayResource(
                    """
                    grpc.connector.targets:
                      alpha:
                        pattern: "127.0.0.1:*"
                      mike:
                        pattern: "*"
                    """
                        .getBytes(StandardCharsets.UTF_8)))) {
      environment.getPropertySources().addLast(source);
    }
    Map<String, TargetProperties> targets =
        Binder.get(environment)
            .bind(CachingConnectorProperties.PREFIX, CachingConnectorProperties.class)
            .get()
            .getTargets();
    // The higher source's targets first; a target in both sources merges its keys.
    assertThat(targets.keySet())
        .startsWith("zulu")
        .containsExactlyInAnyOrder("zulu", "alpha", "mike");
    assertThat(targets.get("alpha").getPattern()).isEqualTo("127.0.0.1:*");
    assertThat(targets.get("alpha").getPlaintext()).isTrue();
  }

  private static Map<String, TargetProperties> bind(PropertySourceLoader loader, String content)
      throws IOException {
    StandardEnvironment environment = new StandardEnvironment();
    for (PropertySource<?> source :
        loader.load(
            "application", new ByteArrayResource(content.getBytes(StandardCharsets.UTF_8)))) {
      environment.getPropertySources().addLast(source);
    }
    Map<String, TargetProperties> targets =
        Binder.get(environment)
            .bind(CachingConnectorProperties.PREFIX, CachingConnectorProperties.class)
            .get()
            .getTargets();
    assertThat(targets).isInstanceOf(LinkedHashMap.class);
    return targets;
  }

  private static ServingStatus check(CachingConnector connector, String address) {
    try (LeasedChannel channel = connector.dial(address)) {
      return LoopbackBackend.check(channel);
    }
  }

  private static StatusRuntimeException failure(CachingConnector connector, String address) {
    try (LeasedChannel channel = connector.dial(address)) {
      Throwable failure = catchThrowable(() -> LoopbackBackend.check(channel));
      assertThat(failure).as("a call to " + address).isInstanceOf(StatusRuntimeException.class);
      StatusRuntimeException refused = (StatusRuntimeException) failure;
      if (refused.getStatus().getCode() == Status.Code.UNAVAILABLE) {
        // Not a refused connection or a name not found: TLS met the plaintext backend.
        assertThat(refused).hasRootCauseInstanceOf(NotSslRecordException.class);
      }
      return refused;
    }
  }
}
