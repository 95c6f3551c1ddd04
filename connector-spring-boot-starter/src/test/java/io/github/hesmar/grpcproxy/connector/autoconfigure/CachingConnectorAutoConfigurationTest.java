package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatExceptionOfType;
import static org.assertj.core.api.Assertions.assertThatIllegalStateException;
import static org.assertj.core.api.Assertions.tuple;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.ConnectorListener;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.observation.ObservationRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.autoconfigure.task.TaskSchedulingAutoConfiguration;
import org.springframework.boot.test.context.FilteredClassLoader;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.scheduling.config.TaskManagementConfigUtils;

class CachingConnectorAutoConfigurationTest {

  private static LoopbackBackend backend;

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(
              AutoConfigurations.of(
                  CachingConnectorAutoConfiguration.class, TaskSchedulingAutoConfiguration.class));

  @BeforeAll
  static void startBackend() {
    backend = LoopbackBackend.start();
  }

  @AfterAll
  static void stopBackend() throws InterruptedException {
    backend.close();
  }

  @Test
  void connectorBeanIsAutoConfiguredWithScheduledExpiryAndLifecycle() {
    contextRunner.run(
        context -> {
          assertThat(context).hasSingleBean(CachingConnector.class);
          assertThat(context).hasBean(CachingConnectorAutoConfiguration.CONNECTOR_BEAN_NAME);
          assertThat(context).hasSingleBean(CachingConnectorExpiry.class);
          assertThat(context).hasSingleBean(CachingConnectorLifecycle.class);
          assertThat(context)
              .hasBean(TaskManagementConfigUtils.SCHEDULED_ANNOTATION_PROCESSOR_BEAN_NAME);
        });
  }

  @Test
  void connectorBacksOffWhenUserProvidesOne() {
    contextRunner
        .withUserConfiguration(UserConnectorConfiguration.class)
        .run(
            context -> {
              assertThat(context).hasSingleBean(CachingConnector.class);
              assertThat(context.getBean(CachingConnector.class))
                  .isSameAs(context.getBean("userConnector"));
            });
  }

  @Test
  void connectorUsesUserDialerBean() {
    contextRunner
        .withUserConfiguration(UserDialerConfiguration.class)
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              try (LeasedChannel channel = connector.dial(backend.address())) {
                assertThat(LoopbackBackend.check(channel)).isEqualTo(ServingStatus.SERVING);
              }
              assertThat(context.getBean(UserDialerConfiguration.class).dialed)
                  .containsExactly(backend.address());
            });
  }

  @Test
  void channelBuilderCustomizersAreAppliedToTheBuiltChannel() {
    contextRunner
        .withUserConfiguration(RecordingCustomizerConfiguration.class)
        .withPropertyValues("grpc.connector.channel.plaintext=true")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              try (LeasedChannel channel = connector.dial(backend.address())) {
                assertThat(LoopbackBackend.check(channel)).isEqualTo(ServingStatus.SERVING);
              }
              RecordingCustomizerConfiguration recorded =
                  context.getBean(RecordingCustomizerConfiguration.class);
              assertThat(recorded.customized).containsExactly(backend.address());
              assertThat(recorded.calls).containsExactly("grpc.health.v1.Health/Check");
            });
  }

  @Test
  void defaultDialerUsesTlsUnlessPlaintextIsConfigured() {
    contextRunner.run(
        context -> {
          CachingConnector connector = context.getBean(CachingConnector.class);
          try (LeasedChannel channel = connector.dial(backend.address())) {
            // The plaintext backend cannot complete a TLS handshake.
            assertThat(
                    org.assertj.core.api.Assertions.catchThrowable(
                        () -> LoopbackBackend.check(channel)))
                .isInstanceOf(io.grpc.StatusRuntimeException.class);
          }
        });
  }

  @Test
  void dialTimeoutDefaultsToThirtySecondsSoADialOutlivingItsCallerIsCached() {
    HeldDialer dialer = new HeldDialer();
    contextRunner
        .withBean(Dialer.class, () -> dialer)
        .run(
            context -> {
              assertThat(context.getBean(CachingConnectorProperties.class).getDialTimeout())
                  .isEqualTo(Duration.ofSeconds(30));
              CachingConnector connector = context.getBean(CachingConnector.class);
              // The caller's own bound passes, not the dial timeout: the dial goes on.
              assertThatExceptionOfType(StatusRuntimeException.class)
                  .isThrownBy(() -> connector.dial(backend.address(), Duration.ofMillis(50)))
                  .satisfies(
                      e -> {
                        assertThat(e.getStatus().getCode())
                            .isEqualTo(Status.Code.DEADLINE_EXCEEDED);
                        assertThat(e.getStatus().getDescription())
                            .contains("the timeout of PT0.05S");
                      });
              dialer.release.countDown();
              try (LeasedChannel channel = connector.dial(backend.address())) {
                assertThat(LoopbackBackend.check(channel)).isEqualTo(ServingStatus.SERVING);
              }
              assertThat(dialer.dials).hasValue(1);
            });
  }

  @Test
  void configuredDialTimeoutAbandonsAHungDial() {
    HeldDialer dialer = new HeldDialer();
    contextRunner
        .withBean(Dialer.class, () -> dialer)
        .withPropertyValues("grpc.connector.dial-timeout=50ms")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              try {
                // No timeout of the caller's own: only the dial timeout ends the wait.
                assertThatExceptionOfType(StatusRuntimeException.class)
                    .isThrownBy(() -> connector.dial(backend.address()))
                    .satisfies(
                        e -> {
                          assertThat(e.getStatus().getCode())
                              .isEqualTo(Status.Code.DEADLINE_EXCEEDED);
                          assertThat(e.getStatus().getDescription())
                              .contains("within the dial timeout of PT0.05S");
                        });
                assertThat(connector.connections()).isEmpty();
              } finally {
                dialer.release.countDown();
              }
            });
  }

  @Test
  void poolPropertiesDefaultToOneHundredCallsPerChannelAndEightChannelsPerAddress() {
    contextRunner
        .withPropertyValues("grpc.connector.channel.plaintext=true")
        .run(
            context -> {
              CachingConnectorProperties.Pool pool =
                  context.getBean(CachingConnectorProperties.class).getPool();
              assertThat(pool.getMaxCallsPerChannel()).isEqualTo(100);
              assertThat(pool.getMaxChannelsPerAddress()).isEqualTo(8);
              CachingConnector connector = context.getBean(CachingConnector.class);
              try (LeasedChannel first = connector.dial(backend.address());
                  LoopbackBackend.Watch watch = LoopbackBackend.watch(first);
                  LeasedChannel second = connector.dial(backend.address())) {
                // One call in flight is far from full: the second dial shares the channel.
                assertThat(connector.connections())
                    .singleElement()
                    .satisfies(
                        info -> {
                          assertThat(info.leases()).isEqualTo(2);
                          assertThat(info.calls()).isEqualTo(1);
                        });
              }
            });
  }

  @Test
  void poolPropertiesReachTheConnectorSoAFullChannelGetsASiblingUpToTheLimit() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.plaintext=true",
            "grpc.connector.expiry.enabled=false",
            "grpc.connector.pool.max-calls-per-channel=1",
            "grpc.connector.pool.max-channels-per-address=2")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              try (LeasedChannel first = connector.dial(backend.address());
                  LoopbackBackend.Watch firstWatch = LoopbackBackend.watch(first);
                  // The first channel is full (one call): this dial opens a second channel.
                  LeasedChannel second = connector.dial(backend.address());
                  LoopbackBackend.Watch secondWatch = LoopbackBackend.watch(second);
                  // Both are full and the address has its two: this dial shares one of them.
                  LeasedChannel third = connector.dial(backend.address())) {
                List<ConnectionInfo> channels = connector.connections();
                assertThat(channels)
                    .extracting(ConnectionInfo::address)
                    .containsExactly(backend.address(), backend.address());
                assertThat(channels).extracting(ConnectionInfo::id).doesNotHaveDuplicates();
                assertThat(channels).extracting(ConnectionInfo::calls).containsExactly(1, 1);
                assertThat(channels.stream().mapToInt(ConnectionInfo::leases).sum()).isEqualTo(3);
                assertThat(LoopbackBackend.check(third)).isEqualTo(ServingStatus.SERVING);
              }
            });
  }

  @Test
  void withoutMaximumChannelsADialClosesNoIdleChannel() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.plaintext=true", "grpc.connector.expiry.enabled=false")
        .run(
            context -> {
              CachingConnectorProperties properties =
                  context.getBean(CachingConnectorProperties.class);
              assertThat(properties.getMaximumChannels()).isNull();
              assertThat(properties.getMaxChannelAge()).isNull();
              CachingConnector connector = context.getBean(CachingConnector.class);
              connector.dial(backend.address()).close();
              connector.dial(backend.dnsAddress()).close();
              assertThat(connector.connections())
                  .extracting(ConnectionInfo::address)
                  .containsExactly(backend.dnsAddress(), backend.address());
            });
  }

  @Test
  void maximumChannelsReachesTheConnectorSoADialClosesAnIdleChannel() {
    Queue<CloseCause> causes = new ConcurrentLinkedQueue<>();
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.plaintext=true",
            "grpc.connector.expiry.enabled=false",
            "grpc.connector.maximum-channels=1")
        .withBean(CachingConnectorBuilderCustomizer.class, () -> recordingCloses(causes))
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              LoopbackBackend.checkAndRelease(connector, backend.address());
              LoopbackBackend.checkAndRelease(connector, backend.dnsAddress());
              assertThat(connector.connections())
                  .extracting(ConnectionInfo::address)
                  .containsExactly(backend.dnsAddress());
              // Reported by the dial thread once the dial's outcome is published.
              await()
                  .atMost(Duration.ofSeconds(10))
                  .untilAsserted(() -> assertThat(causes).containsExactly(CloseCause.EVICTED));
            });
  }

  @Test
  void maxChannelAgeReachesTheConnectorSoAnExpiryPassRetiresALeasedChannel() {
    Queue<CloseCause> causes = new ConcurrentLinkedQueue<>();
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.plaintext=true",
            "grpc.connector.expiry.enabled=false",
            "grpc.connector.max-channel-age=20ms")
        .withBean(CachingConnectorBuilderCustomizer.class, () -> recordingCloses(causes))
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              long oldId;
              try (LeasedChannel old = connector.dial(backend.address())) {
                oldId = connector.connections().get(0).id();
                // Leased, so only its age can detach it.
                await()
                    .atMost(Duration.ofSeconds(10))
                    .until(
                        () -> {
                          connector.expire();
                          return connector.connections().get(0).closing();
                        });
                try (LeasedChannel fresh = connector.dial(backend.address())) {
                  assertThat(LoopbackBackend.check(fresh)).isEqualTo(ServingStatus.SERVING);
                  assertThat(connector.connections())
                      .extracting(ConnectionInfo::id, ConnectionInfo::closing)
                      .contains(tuple(oldId, true))
                      .hasSize(2);
                }
              }
              assertThat(connector.expire()).contains(backend.address());
              assertThat(causes).contains(CloseCause.MAX_AGE);
              assertThat(connector.connections()).noneMatch(info -> info.id() == oldId);
            });
  }

  @Test
  void silentChannelPropertiesDefaultToRetiringAfterThreeFailedCallsAndTenSecondsOfSilence() {
    contextRunner.run(
        context -> {
          CachingConnectorProperties.SilentChannel silentChannel =
              context.getBean(CachingConnectorProperties.class).getSilentChannel();
          assertThat(silentChannel.isRetire()).isTrue();
          assertThat(silentChannel.getFailedCalls()).isEqualTo(3);
          assertThat(silentChannel.getSilence()).isEqualTo(Duration.ofSeconds(10));
        });
  }

  @Test
  void silentChannelPropertiesReachTheConnectorSoTwoUnansweredCallsRetireTheChannel()
      throws InterruptedException {
    Queue<CloseCause> causes = new ConcurrentLinkedQueue<>();
    try (SilentBackend silent = SilentBackend.start()) {
      contextRunner
          .withPropertyValues(
              "grpc.connector.channel.plaintext=true",
              "grpc.connector.expiry.enabled=false",
              "grpc.connector.silent-channel.failed-calls=2",
              "grpc.connector.silent-channel.silence=1s")
          .withBean(CachingConnectorBuilderCustomizer.class, () -> recordingCloses(causes))
          .run(
              context -> {
                CachingConnector connector = context.getBean(CachingConnector.class);
                long silentId;
                try (LeasedChannel lease = connector.dial(silent.address())) {
                  silentId = connector.connections().get(0).id();
                  SilentBackend.connect(lease);
                  SilentBackend.unansweredWatch(lease);
                  SilentBackend.unansweredWatch(lease);
                  // The first failure sent the probe, before the second call started.
                  await()
                      .atMost(Duration.ofSeconds(10))
                      .untilAsserted(
                          () ->
                              assertThat(silent.methods())
                                  .containsExactly(
                                      SilentBackend.WATCH,
                                      SilentBackend.CHECK,
                                      SilentBackend.WATCH));
                  // The probe waits for the configured silence, not the default 10 s.
                  assertThat(silent.checkDeadlines)
                      .singleElement()
                      .satisfies(
                          left -> assertThat(left).isLessThanOrEqualTo(Duration.ofSeconds(1)));
                  // Two failed calls (not the default three) and an unanswered probe: retired.
                  await()
                      .atMost(Duration.ofSeconds(10))
                      .untilAsserted(
                          () ->
                              assertThat(connector.connections())
                                  .singleElement()
                                  .satisfies(
                                      info -> {
                                        assertThat(info.id()).isEqualTo(silentId);
                                        assertThat(info.closing()).isTrue();
                                        assertThat(info.closeCause())
                                            .isEqualTo(CloseCause.UNHEALTHY);
                                      }));
                  try (LeasedChannel fresh = connector.dial(silent.address())) {
                    assertThat(connector.connections())
                        .extracting(ConnectionInfo::id)
                        .hasSize(2)
                        .contains(silentId);
                  }
                }
                // Its lease released and its calls ended, the silent channel closes.
                await()
                    .atMost(Duration.ofSeconds(10))
                    .until(
                        () -> {
                          connector.expire();
                          return connector.connections().stream()
                              .noneMatch(info -> info.id() == silentId);
                        });
                assertThat(causes).contains(CloseCause.UNHEALTHY);
              });
    }
  }

  @Test
  void silentChannelRetireFalseKeepsSilentChannelsAndSendsNoProbe() throws InterruptedException {
    try (SilentBackend silent = SilentBackend.start()) {
      contextRunner
          .withPropertyValues(
              "grpc.connector.channel.plaintext=true",
              "grpc.connector.expiry.enabled=false",
              "grpc.connector.silent-channel.retire=false",
              "grpc.connector.silent-channel.failed-calls=1",
              "grpc.connector.silent-channel.silence=1ms")
          .run(
              context -> {
                CachingConnector connector = context.getBean(CachingConnector.class);
                try (LeasedChannel lease = connector.dial(silent.address())) {
                  SilentBackend.connect(lease);
                  SilentBackend.unansweredWatch(lease);
                  SilentBackend.unansweredWatch(lease);
                  // Until the second call reached the backend.
                  await()
                      .atMost(Duration.ofSeconds(10))
                      .until(() -> silent.methods().lastIndexOf(SilentBackend.WATCH) > 0);
                  // A probe would have reached the backend before the second call (see the test
                  // above).
                  assertThat(silent.methods())
                      .containsExactly(SilentBackend.WATCH, SilentBackend.WATCH);
                  assertThat(connector.connections())
                      .singleElement()
                      .satisfies(info -> assertThat(info.closing()).isFalse());
                }
              });
    }
  }

  private static CachingConnectorBuilderCustomizer recordingCloses(Queue<CloseCause> causes) {
    return builder ->
        builder.listener(
            new ConnectorListener() {
              @Override
              public void onClose(String address, CloseCause cause) {
                causes.add(cause);
              }
            });
  }

  @Test
  void connectorIsSwitchedOffByProperty() {
    contextRunner
        .withPropertyValues("grpc.connector.enabled=false")
        .run(
            context -> {
              assertThat(context).doesNotHaveBean(CachingConnector.class);
              assertThat(context).doesNotHaveBean(CachingConnectorExpiry.class);
              assertThat(context).doesNotHaveBean(CachingConnectorProperties.class);
            });
  }

  @Test
  void connectorWorksWithNeitherMicrometerNorActuatorOnTheClassPath() {
    new ApplicationContextRunner()
        .withClassLoader(
            new FilteredClassLoader(
                MeterRegistry.class,
                ObservationRegistry.class,
                BootLine.METRICS_AUTO_CONFIGURATIONS[0],
                Endpoint.class,
                BootLine.HEALTH_INDICATOR))
        .withConfiguration(
            AutoConfigurations.of(
                CachingConnectorAutoConfiguration.class,
                CachingConnectorMetricsAutoConfiguration.class,
                CachingConnectorEndpointAutoConfiguration.class,
                BootLine.HEALTH_AUTO_CONFIGURATION))
        .withPropertyValues("grpc.connector.channel.plaintext=true")
        .run(
            context -> {
              assertThat(context).hasNotFailed();
              assertThat(context).hasSingleBean(CachingConnector.class);
              assertThat(context).getBeanNames(ChannelBuilderCustomizer.class).isEmpty();
              CachingConnector connector = context.getBean(CachingConnector.class);
              try (LeasedChannel channel = connector.dial(backend.address())) {
                assertThat(LoopbackBackend.check(channel)).isEqualTo(ServingStatus.SERVING);
              }
            });
  }

  @Test
  void scheduledExpiryClosesAnIdleChannelWithinAFewIntervalsAndNeverALeasedOne() {
    contextRunner
        .withPropertyValues(
            "grpc.connector.channel.plaintext=true", "grpc.connector.expiry.interval=20ms")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              connector.dial(backend.address()).close();
              try (LeasedChannel leased = connector.dial(backend.dnsAddress())) {
                await()
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> addresses(connector).equals(List.of(backend.dnsAddress())));
                // The leased channel survived every pass so far; and a leased channel is never
                // counted idle, so no later pass can close it while the lease is held.
                ConnectionInfo info = connector.connections().get(0);
                assertThat(info.leases()).isEqualTo(1);
                assertThat(info.idlePasses()).isZero();
                assertThat(LoopbackBackend.check(leased)).isEqualTo(ServingStatus.SERVING);
              }
              await().atMost(Duration.ofSeconds(10)).until(() -> connector.connectionCount() == 0);
            });
  }

  @Test
  void expirySwitchedOffNeitherSchedulesNorEnablesScheduling() {
    contextRunner
        .withPropertyValues("grpc.connector.expiry.enabled=false")
        .run(
            context -> {
              assertThat(context).hasSingleBean(CachingConnector.class);
              assertThat(context).doesNotHaveBean(CachingConnectorExpiry.class);
              assertThat(context)
                  .doesNotHaveBean(
                      TaskManagementConfigUtils.SCHEDULED_ANNOTATION_PROCESSOR_BEAN_NAME);
            });
  }

  @Test
  void contextCloseShutsEveryChannelDownLeasedOrNot() {
    TrackingDialerConfiguration tracking = new TrackingDialerConfiguration();
    contextRunner
        .withBean(Dialer.class, () -> tracking)
        .withPropertyValues("grpc.connector.shutdown.grace-period=0s")
        .run(
            context -> {
              CachingConnector connector = context.getBean(CachingConnector.class);
              connector.dial(backend.address()).close();
              LeasedChannel stillLeased = connector.dial(backend.dnsAddress());
              assertThat(LoopbackBackend.check(stillLeased)).isEqualTo(ServingStatus.SERVING);
              assertThat(tracking.channels).hasSize(2).noneMatch(ManagedChannel::isShutdown);
              context.close();
              assertThat(tracking.channels).hasSize(2).allMatch(ManagedChannel::isShutdown);
              assertThatIllegalStateException().isThrownBy(() -> connector.dial(backend.address()));
            });
  }

  @Test
  void connectorClosesAfterTheWebServerStoppedServingRequests() {
    assertThat(CachingConnectorLifecycle.PHASE)
        .isLessThan(BootLine.WEB_SERVER_START_STOP_PHASE)
        .isLessThan(BootLine.WEB_SERVER_GRACEFUL_SHUTDOWN_PHASE);
  }

  private static List<String> addresses(CachingConnector connector) {
    return connector.connections().stream().map(ConnectionInfo::address).toList();
  }

  @Configuration(proxyBeanMethods = false)
  static class UserConnectorConfiguration {

    @Bean
    CachingConnector userConnector() {
      return CachingConnector.builder().dialer(Dialer.plaintext()).build();
    }
  }

  @Configuration(proxyBeanMethods = false)
  static class UserDialerConfiguration {

    final Queue<String> dialed = new ConcurrentLinkedQueue<>();

    @Bean
    Dialer userDialer() {
      return address -> {
        dialed.add(address);
        return Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
      };
    }
  }

  /** Builds plaintext channels, each dial held until {@code release} is counted down. */
  static final class HeldDialer implements Dialer {

    final CountDownLatch release = new CountDownLatch(1);
    final AtomicInteger dials = new AtomicInteger();

    @Override
    public ManagedChannel dial(String address) throws InterruptedException {
      dials.incrementAndGet();
      release.await();
      return Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
    }
  }

  static final class TrackingDialerConfiguration implements Dialer {

    final Queue<ManagedChannel> channels = new ConcurrentLinkedQueue<>();

    @Override
    public ManagedChannel dial(String address) {
      ManagedChannel channel =
          Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
      channels.add(channel);
      return channel;
    }
  }

  @Configuration(proxyBeanMethods = false)
  static class RecordingCustomizerConfiguration {

    final Queue<String> customized = new ConcurrentLinkedQueue<>();
    final Queue<String> calls = new ConcurrentLinkedQueue<>();

    @Bean
    ChannelBuilderCustomizer recordingCustomizer() {
      ClientInterceptor interceptor =
          new ClientInterceptor() {
            @Override
            public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
                MethodDescriptor<ReqT, RespT> method, CallOptions callOptions, Channel next) {
              calls.add(method.getFullMethodName());
              return next.newCall(method, callOptions);
            }
          };
      return (address, builder) -> {
        customized.add(address);
        builder.intercept(interceptor);
      };
    }
  }
}
