package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatExceptionOfType;
import static org.assertj.core.api.Assertions.assertThatIllegalStateException;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.github.hesmar.grpcproxy.connector.actuate.CachingConnectorEndpoint;
import io.github.hesmar.grpcproxy.connector.actuate.CachingConnectorEndpoint.ConnectorsDescriptor;
import io.github.hesmar.grpcproxy.connector.actuate.ExpiryPass;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.actuate.endpoint.InvalidEndpointRequestException;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.autoconfigure.task.TaskSchedulingAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * An application that defines several {@code CachingConnector} beans of its own: the starter's
 * connector backs off, and its expiry, closing and endpoint cover every one of them.
 */
class SeveralConnectorBeansTest {

  private static LoopbackBackend backend;

  private final ApplicationContextRunner contextRunner =
      new ApplicationContextRunner()
          .withConfiguration(
              AutoConfigurations.of(
                  CachingConnectorAutoConfiguration.class,
                  CachingConnectorEndpointAutoConfiguration.class,
                  TaskSchedulingAutoConfiguration.class))
          .withUserConfiguration(TwoConnectors.class)
          .withPropertyValues(
              "management.endpoints.web.exposure.include=grpcconnections",
              // No scheduled pass during a test: the tests run the expiry bean's passes.
              "grpc.connector.expiry.interval=1h");

  @BeforeAll
  static void startBackend() {
    backend = LoopbackBackend.start();
  }

  @AfterAll
  static void stopBackend() throws InterruptedException {
    backend.close();
  }

  @Test
  void contextStartsWithTwoConnectorBeansAndTheEndpointListsBothByNameAndNoOther() {
    contextRunner.run(
        context -> {
          assertThat(context).hasNotFailed();
          assertThat(context)
              .doesNotHaveBean(CachingConnectorAutoConfiguration.CONNECTOR_BEAN_NAME);
          assertThat(context).hasSingleBean(CachingConnectorExpiry.class);
          assertThat(context).hasSingleBean(CachingConnectorLifecycle.class);
          ConnectorsDescriptor listed =
              context.getBean(CachingConnectorEndpoint.class).connections(null, null);
          assertThat(listed).isNotNull();
          assertThat(listed.connectors()).containsOnlyKeys("orders", "users");
          assertThatExceptionOfType(InvalidEndpointRequestException.class)
              .isThrownBy(
                  () ->
                      context.getBean(CachingConnectorEndpoint.class).connections(null, "payments"))
              .withMessageContaining("'payments'")
              .withMessageContaining("[orders, users]");
        });
  }

  @Test
  void scheduledExpiryPassesCloseTheIdleChannelsOfEveryConnectorBean() {
    contextRunner.run(
        context -> {
          CachingConnector orders = context.getBean("orders", CachingConnector.class);
          CachingConnector users = context.getBean("users", CachingConnector.class);
          LoopbackBackend.checkAndRelease(orders, backend.address());
          LoopbackBackend.checkAndRelease(users, backend.dnsAddress());
          CachingConnectorExpiry expiry = context.getBean(CachingConnectorExpiry.class);

          expiry.expire();
          expiry.expire();

          assertThat(orders.connectionCount()).isZero();
          assertThat(users.connectionCount()).isZero();
          assertThat(expiry.lastPass("orders")).isNotNull();
          assertThat(expiry.lastPass("orders").closed()).containsExactly(backend.address());
          assertThat(expiry.lastPass("users").closed()).containsExactly(backend.dnsAddress());
        });
  }

  @Test
  void contextCloseClosesEveryConnectorBeanLeasedChannelsIncluded() {
    contextRunner
        .withPropertyValues("grpc.connector.shutdown.grace-period=0s")
        .run(
            context -> {
              TwoConnectors beans = context.getBean(TwoConnectors.class);
              CachingConnector orders = context.getBean("orders", CachingConnector.class);
              CachingConnector users = context.getBean("users", CachingConnector.class);
              LeasedChannel ordersLease = orders.dial(backend.address());
              LeasedChannel usersLease = users.dial(backend.dnsAddress());
              assertThat(LoopbackBackend.check(ordersLease)).isNotNull();
              assertThat(LoopbackBackend.check(usersLease)).isNotNull();
              assertThat(beans.channels).hasSize(2).noneMatch(ManagedChannel::isShutdown);

              context.close();

              assertThat(beans.channels).hasSize(2).allMatch(ManagedChannel::isShutdown);
              assertThatIllegalStateException().isThrownBy(() -> orders.dial(backend.address()));
              assertThatIllegalStateException().isThrownBy(() -> users.dial(backend.address()));
            });
  }

  @Test
  void expiryRecordsEachConnectorsLastPassOnItsClock() {
    Instant now = Instant.parse("2026-01-05T10:15:30Z");
    try (CachingConnector orders = CachingConnector.builder().dialer(Dialer.plaintext()).build();
        CachingConnector users = CachingConnector.builder().dialer(Dialer.plaintext()).build()) {
      CachingConnectorExpiry expiry =
          new CachingConnectorExpiry(
              Map.of("orders", orders, "users", users), Clock.fixed(now, ZoneOffset.UTC));
      assertThat(expiry.lastPass("orders")).isNull();

      LoopbackBackend.checkAndRelease(users, backend.address());
      expiry.expire();
      expiry.expire();

      assertThat(expiry.lastPass("orders")).isEqualTo(new ExpiryPass(now, List.of()));
      assertThat(expiry.lastPass("users"))
          .isEqualTo(new ExpiryPass(now, List.of(backend.address())));
      assertThat(expiry.lastPass("payments")).isNull();
    }
  }

  /**
   * Two connectors whose channels are tracked. Spring's inferred destroy method ({@code close()})
   * is switched off, so only the starter's lifecycle can close them.
   */
  @Configuration(proxyBeanMethods = false)
  static class TwoConnectors {

    final Queue<ManagedChannel> channels = new ConcurrentLinkedQueue<>();

    @Bean(destroyMethod = "")
    CachingConnector orders() {
      return CachingConnector.builder().dialer(this::dial).build();
    }

    @Bean(destroyMethod = "")
    CachingConnector users() {
      return CachingConnector.builder().dialer(this::dial).build();
    }

    private ManagedChannel dial(String address) {
      ManagedChannel channel =
          Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
      channels.add(channel);
      return channel;
    }
  }
}
