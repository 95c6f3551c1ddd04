package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.ConnectivityState;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.SpringBootTest.WebEnvironment;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.core.ParameterizedTypeReference;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.ResponseEntity;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.annotation.DirtiesContext.ClassMode;
import org.springframework.web.client.RestClient;

/** The starter in a real web application, its actuator read over HTTP. */
class CachingConnectorActuatorHttpTest {

  private static final ParameterizedTypeReference<Map<String, Object>> JSON =
      new ParameterizedTypeReference<>() {};

  private static LoopbackBackend backend;

  @BeforeAll
  static void startBackend() {
    backend = LoopbackBackend.start();
  }

  @AfterAll
  static void stopBackend() throws InterruptedException {
    backend.close();
  }

  @SpringBootConfiguration
  @EnableAutoConfiguration
  static class Application {}

  static RestClient client(int port) {
    return RestClient.builder()
        .baseUrl("http://localhost:" + port)
        .defaultStatusHandler(HttpStatusCode::isError, (request, response) -> {})
        .build();
  }

  /** The connector descriptors of a read, by bean name. */
  @SuppressWarnings("unchecked")
  static Map<String, Map<String, Object>> connectorsIn(Map<String, Object> body) {
    return (Map<String, Map<String, Object>>) body.get("connectors");
  }

  /** The channels of the auto-configured connector in a read. */
  static List<Map<String, Object>> connectionsIn(Map<String, Object> body) {
    return channelsIn(body, CachingConnectorAutoConfiguration.CONNECTOR_BEAN_NAME);
  }

  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> channelsIn(Map<String, Object> body, String connector) {
    return (List<Map<String, Object>>) connectorsIn(body).get(connector).get("channels");
  }

  static List<Map<String, Object>> withoutAge(List<Map<String, Object>> connections) {
    return connections.stream()
        .map(
            connection -> {
              Map<String, Object> copy = new HashMap<>(connection);
              copy.remove("age");
              return copy;
            })
        .toList();
  }

  /**
   * The endpoint with {@code address} URL-encoded in the query string ({@code dns:///} becomes
   * {@code dns%3A%2F%2F%2F}), as a client sends it; a default Tomcat, with no customization.
   */
  static URI connectionUri(int port, String address) {
    return endpointUri(port, "address=" + URLEncoder.encode(address, StandardCharsets.UTF_8));
  }

  static URI endpointUri(int port, String query) {
    return URI.create("http://localhost:" + port + "/actuator/grpcconnections?" + query);
  }

  @Nested
  @SpringBootTest(
      classes = Application.class,
      webEnvironment = WebEnvironment.RANDOM_PORT,
      properties = {
        "management.endpoints.web.exposure.include=grpcconnections,metrics,health",
        "management.endpoint.health.show-components=always",
        "management.endpoint.health.show-details=always",
        "grpc.connector.channel.plaintext=true"
      })
  class WithDefaultAccess {

    @LocalServerPort int port;

    @Autowired CachingConnector connector;

    @Test
    void endpointListsCachedAddressesSortedAndReadsOneByItsUrlEncodedAddress() {
      try (LeasedChannel dns = connector.dial(backend.dnsAddress());
          LeasedChannel plain = connector.dial(backend.address());
          LoopbackBackend.Watch watch = LoopbackBackend.watch(dns)) {
        LoopbackBackend.check(dns);
        LoopbackBackend.check(plain);

        Map<String, Object> all =
            client(port).get().uri("/actuator/grpcconnections").retrieve().body(JSON);
        assertThat(connectorsIn(all))
            .containsOnlyKeys(CachingConnectorAutoConfiguration.CONNECTOR_BEAN_NAME);
        List<Map<String, Object>> connections = connectionsIn(all);
        assertThat(connections)
            .extracting(connection -> connection.get("address"))
            .containsExactly(backend.dnsAddress(), backend.address());
        assertThat(connections.get(0))
            .containsKey("id")
            .containsEntry("leases", 1)
            .containsEntry("calls", 1)
            .containsEntry("queued", 0)
            .containsEntry("limit", 100)
            .containsEntry("idlePasses", 0)
            .containsEntry("state", "READY")
            .containsEntry("closing", false)
            .doesNotContainKey("closeCause")
            .containsKeys("stateSince", "createdAt", "lastDialedAt", "age");
        assertThat(connections.get(1))
            .containsEntry("leases", 1)
            .containsEntry("calls", 0)
            .containsEntry("queued", 0)
            .containsEntry("limit", 100);

        ResponseEntity<Map<String, Object>> one =
            client(port)
                .get()
                .uri(connectionUri(port, backend.dnsAddress()))
                .retrieve()
                .toEntity(JSON);
        assertThat(one.getStatusCode().value()).isEqualTo(200);
        assertThat(connectionsIn(one.getBody()))
            .singleElement()
            .satisfies(
                connection ->
                    assertThat(connection)
                        .containsEntry("id", connections.get(0).get("id"))
                        .containsEntry("address", backend.dnsAddress())
                        .containsEntry("leases", 1)
                        .containsEntry("calls", 1));
      }
    }

    @Test
    void endpointShowsCallsQueuedBehindTheBackendsStreamLimitAndTheLimitLearnedFromThem()
        throws InterruptedException {
      LoopbackBackend limited = LoopbackBackend.withStreamLimit(1);
      URI uri = connectionUri(port, limited.address());
      try (limited) {
        try (LeasedChannel lease = connector.dial(limited.address());
            LoopbackBackend.Watch first = LoopbackBackend.watch(lease)) {
          await().atMost(Duration.ofSeconds(10)).until(() -> !first.statuses.isEmpty());
          assertThat(connectionsIn(client(port).get().uri(uri).retrieve().body(JSON)))
              .singleElement()
              .satisfies(
                  channel ->
                      assertThat(channel)
                          .containsEntry("calls", 1)
                          .containsEntry("queued", 0)
                          .containsEntry("limit", 100));

          // The connection's one stream is taken: the second call's headers wait in the
          // transport, and the channel counts as full at the one call it carries.
          try (LoopbackBackend.Watch second = LoopbackBackend.watch(lease)) {
            await()
                .atMost(Duration.ofSeconds(10))
                .untilAsserted(
                    () ->
                        assertThat(connectionsIn(client(port).get().uri(uri).retrieve().body(JSON)))
                            .singleElement()
                            .satisfies(
                                channel ->
                                    assertThat(channel)
                                        .containsEntry("calls", 2)
                                        .containsEntry("queued", 1)
                                        .containsEntry("limit", 1)));
            assertThat(second.statuses).isEmpty();
          }
        } finally {
          // The class's tests share the context: leave no channel of this backend behind.
          connector.closeOnRelease(limited.address());
          await()
              .atMost(Duration.ofSeconds(10))
              .until(
                  () -> {
                    connector.expire();
                    return connector.connections().stream()
                        .noneMatch(info -> info.address().equals(limited.address()));
                  });
        }
      }
    }

    @Test
    void endpointShowsEachChannelsAgeAtTheTimeOfTheRead() {
      try (LeasedChannel channel = connector.dial(backend.address())) {
        LoopbackBackend.check(channel);
        Instant before = Instant.now();
        ResponseEntity<Map<String, Object>> one =
            client(port)
                .get()
                .uri(connectionUri(port, backend.address()))
                .retrieve()
                .toEntity(JSON);
        Instant after = Instant.now();

        Map<String, Object> connection = connectionsIn(one.getBody()).get(0);
        Instant createdAt = Instant.parse((String) connection.get("createdAt"));
        Duration age = Duration.parse((String) connection.get("age"));
        assertThat(createdAt).isBeforeOrEqualTo(before);
        // The age is that of the read: created + age falls within the request, to the millisecond.
        assertThat(createdAt.plus(age)).isBetween(before.truncatedTo(ChronoUnit.MILLIS), after);
      }
    }

    @Test
    void endpointAnswers404ForAnAddressThatIsNotCached() {
      ResponseEntity<String> response =
          client(port)
              .get()
              .uri(connectionUri(port, "dns:///not-cached.invalid:443"))
              .retrieve()
              .toEntity(String.class);
      assertThat(response.getStatusCode().value()).isEqualTo(404);
    }

    @Test
    void deleteIsRefusedWithTheDefaultReadOnlyAccess() {
      try (LeasedChannel channel = connector.dial(backend.address())) {
        ResponseEntity<String> response =
            client(port)
                .delete()
                .uri(connectionUri(port, backend.address()))
                .retrieve()
                .toEntity(String.class);
        assertThat(response.getStatusCode().is4xxClientError()).isTrue();
        assertThat(connector.connections()).noneMatch(info -> info.closing());
      }
    }

    @Test
    void channelsGaugeIsReadableOverHttp() {
      try (LeasedChannel channel = connector.dial(backend.address())) {
        Map<String, Object> metric =
            client(port)
                .get()
                .uri("/actuator/metrics/grpc.connector.channels?tag=name:cachingConnector")
                .retrieve()
                .body(JSON);
        assertThat(metric)
            .containsEntry("name", "grpc.connector.channels")
            .containsEntry("baseUnit", "channels")
            .containsEntry("description", "Open channels, cached or closing.");
        assertThat(metric.get("measurements"))
            .isEqualTo(
                List.of(
                    Map.of("statistic", "VALUE", "value", (double) connector.connectionCount())));
        assertThat(connector.connectionCount()).isPositive();
      }
    }

    @Test
    void everyMeterShowsItsBaseUnitAndDescriptionOverHttp() {
      connector.dial(backend.address()).close();
      Map<String, String> baseUnits =
          Map.of(
              "grpc.connector.dials", "dials",
              "grpc.connector.dials.missed", "dials",
              "grpc.connector.channels", "channels",
              "grpc.connector.channels.creation", "seconds",
              "grpc.connector.channels.closed", "channels",
              "grpc.connector.leases.active", "leases",
              "grpc.connector.calls.active", "calls",
              "grpc.connector.calls.queued", "calls",
              "grpc.connector.calls.queue.wait", "seconds",
              "grpc.connector.leases.leaked", "leases");
      Map<String, Object> names = client(port).get().uri("/actuator/metrics").retrieve().body(JSON);
      @SuppressWarnings("unchecked")
      List<String> listed = (List<String>) names.get("names");
      assertThat(listed)
          .filteredOn(name -> name.startsWith("grpc.connector."))
          .containsExactlyInAnyOrderElementsOf(baseUnits.keySet());
      baseUnits.forEach(
          (name, baseUnit) -> {
            Map<String, Object> metric =
                client(port).get().uri("/actuator/metrics/" + name).retrieve().body(JSON);
            assertThat(metric).as(name).containsEntry("baseUnit", baseUnit);
            assertThat((String) metric.get("description")).as(name).isNotBlank();
          });
    }

    @Test
    void healthContributorReportsCountsAndStaysUp() {
      try (LeasedChannel channel = connector.dial(backend.address())) {
        Map<String, Object> health =
            client(port).get().uri("/actuator/health/grpcConnector").retrieve().body(JSON);
        assertThat(health).containsEntry("status", "UP");
        @SuppressWarnings("unchecked")
        Map<String, Object> details = (Map<String, Object>) health.get("details");
        assertThat(details)
            .containsEntry("connections", connector.connectionCount())
            .containsEntry("leases", connector.leaseCount())
            .containsEntry("transientFailures", List.of())
            .containsEntry("downSince", Map.of());
      }
    }

    @Test
    void healthListsAnAddressWhoseChannelsAllFailWithSinceWhenAndStaysUp() throws IOException {
      String address;
      try (ServerSocket closed = new ServerSocket(0)) {
        address = "localhost:" + closed.getLocalPort(); // nothing listens once closed
      }
      try {
        try (LeasedChannel channel = connector.dial(address)) {
          channel.getState(/* requestConnection= */ true);
          await()
              .atMost(Duration.ofSeconds(10))
              .until(() -> channel.getState(false) == ConnectivityState.TRANSIENT_FAILURE);
        }
        Instant since =
            connector.connections().stream()
                .filter(info -> info.address().equals(address))
                .findFirst()
                .orElseThrow()
                .stateSince();
        Map<String, Object> health =
            client(port).get().uri("/actuator/health/grpcConnector").retrieve().body(JSON);
        assertThat(health).containsEntry("status", "UP");
        @SuppressWarnings("unchecked")
        Map<String, Object> details = (Map<String, Object>) health.get("details");
        assertThat(details)
            .containsEntry("transientFailures", List.of(address))
            .containsEntry("downSince", Map.of(address, since.toString()));
      } finally {
        // The class's tests share the context: leave no failing channel behind.
        connector.closeOnRelease(address);
        await()
            .atMost(Duration.ofSeconds(10))
            .until(
                () -> {
                  connector.expire();
                  return connector.connections().stream()
                      .noneMatch(info -> info.address().equals(address));
                });
      }
    }
  }

  @Nested
  @SpringBootTest(
      classes = Application.class,
      webEnvironment = WebEnvironment.RANDOM_PORT,
      properties = {
        "management.endpoints.web.exposure.include=grpcconnections",
        "management.endpoint.grpcconnections.access=unrestricted",
        "grpc.connector.channel.plaintext=true",
        "grpc.connector.expiry.enabled=false",
        "grpc.connector.pool.max-calls-per-channel=1"
      })
  class WithOneCallPerChannel {

    @LocalServerPort int port;

    @Autowired CachingConnector connector;

    @Test
    void endpointListsEveryChannelOfAnAddressWithItsIdAndCallsAndReadsThemByTheAddress() {
      try (LeasedChannel first = connector.dial(backend.address());
          LoopbackBackend.Watch watch = LoopbackBackend.watch(first);
          // The first channel is full (one call in flight): this dial opens a second channel.
          LeasedChannel second = connector.dial(backend.address())) {
        // Both channels connected, so that nothing changes between the two requests.
        await().atMost(Duration.ofSeconds(10)).until(() -> !watch.statuses.isEmpty());
        LoopbackBackend.check(second);

        Map<String, Object> all =
            client(port).get().uri("/actuator/grpcconnections").retrieve().body(JSON);
        List<Map<String, Object>> connections = connectionsIn(all);
        assertThat(connections)
            .extracting(connection -> connection.get("address"))
            .containsExactly(backend.address(), backend.address());
        assertThat(connections)
            .extracting(connection -> connection.get("id"))
            .doesNotHaveDuplicates()
            .allSatisfy(id -> assertThat(id).isInstanceOf(Number.class));
        assertThat(connections)
            .extracting(connection -> connection.get("calls"))
            .containsExactly(1, 0);
        assertThat(connections)
            .allSatisfy(
                connection ->
                    assertThat(connection)
                        .containsEntry("leases", 1)
                        .containsEntry("queued", 0)
                        .containsEntry("limit", 1)
                        .containsEntry("state", "READY")
                        .containsEntry("closing", false));

        ResponseEntity<Map<String, Object>> byAddress =
            client(port)
                .get()
                .uri(connectionUri(port, backend.address()))
                .retrieve()
                .toEntity(JSON);
        assertThat(byAddress.getStatusCode().value()).isEqualTo(200);
        // The same channels; only their ages moved on between the two reads.
        assertThat(withoutAge(connectionsIn(byAddress.getBody())))
            .isEqualTo(withoutAge(connections));
      }
    }

    @Test
    void endpointShowsSinceWhenEachChannelIsInItsStateAndWhyAClosingOneCloses() {
      try (LeasedChannel kept = connector.dial(backend.address());
          LeasedChannel detached = connector.dial(backend.dnsAddress())) {
        LoopbackBackend.check(kept);
        LoopbackBackend.check(detached);
        assertThat(connector.closeOnRelease(backend.dnsAddress())).isTrue();
        Map<Long, ConnectionInfo> infos =
            connector.connections().stream()
                .collect(Collectors.toMap(ConnectionInfo::id, info -> info));

        List<Map<String, Object>> channels =
            connectionsIn(
                client(port).get().uri("/actuator/grpcconnections").retrieve().body(JSON));
        assertThat(channels)
            .extracting(channel -> channel.get("address"))
            .containsExactly(backend.dnsAddress(), backend.address());
        assertThat(channels.get(0))
            .containsEntry("state", "READY")
            .containsEntry("closing", true)
            .containsEntry("closeCause", "RELEASED");
        assertThat(channels.get(1))
            .containsEntry("state", "READY")
            .containsEntry("closing", false)
            .doesNotContainKey("closeCause");
        assertThat(channels)
            .allSatisfy(
                channel -> {
                  ConnectionInfo info = infos.get(((Number) channel.get("id")).longValue());
                  Instant stateSince = Instant.parse((String) channel.get("stateSince"));
                  assertThat(stateSince)
                      .isEqualTo(info.stateSince())
                      .isAfterOrEqualTo(Instant.parse((String) channel.get("createdAt")));
                });
      }
      // The class's tests share the context: leave no closing channel behind.
      await()
          .atMost(Duration.ofSeconds(10))
          .until(
              () -> {
                connector.expire();
                return connector.connections().stream().noneMatch(ConnectionInfo::closing);
              });
    }

    @Test
    void deleteMarksEveryChannelOfTheAddressCloseOnRelease() {
      Queue<String> closed = new ConcurrentLinkedQueue<>();
      try (LeasedChannel first = connector.dial(backend.dnsAddress());
          LoopbackBackend.Watch watch = LoopbackBackend.watch(first);
          LeasedChannel second = connector.dial(backend.dnsAddress())) {
        Map<String, Object> response =
            client(port)
                .delete()
                .uri(connectionUri(port, backend.dnsAddress()))
                .retrieve()
                .body(JSON);
        assertThat(response)
            .containsEntry("address", backend.dnsAddress())
            .containsEntry(
                "connectors",
                Map.of(
                    CachingConnectorAutoConfiguration.CONNECTOR_BEAN_NAME,
                    Map.of("closeOnRelease", true)));

        Map<String, Object> byAddress =
            client(port).get().uri(connectionUri(port, backend.dnsAddress())).retrieve().body(JSON);
        assertThat(connectionsIn(byAddress))
            .hasSize(2)
            .allSatisfy(connection -> assertThat(connection).containsEntry("closing", true));
        // Held by their leases and the call: not closed yet.
        assertThat(connector.expire()).isEmpty();
      }
      // The cancelled call ends asynchronously; then both channels close.
      await()
          .atMost(Duration.ofSeconds(10))
          .until(
              () -> {
                closed.addAll(connector.expire());
                return closed.size() == 2;
              });
      assertThat(closed).containsOnly(backend.dnsAddress());
      ResponseEntity<String> gone =
          client(port)
              .get()
              .uri(connectionUri(port, backend.dnsAddress()))
              .retrieve()
              .toEntity(String.class);
      assertThat(gone.getStatusCode().value()).isEqualTo(404);
    }
  }

  @Nested
  @SpringBootTest(
      classes = Application.class,
      webEnvironment = WebEnvironment.RANDOM_PORT,
      properties = {
        "management.endpoints.web.exposure.include=grpcconnections",
        "management.endpoint.grpcconnections.access=unrestricted",
        "grpc.connector.channel.plaintext=true"
      })
  class WithUnrestrictedAccess {

    @LocalServerPort int port;

    @Autowired CachingConnector connector;

    @Test
    void deleteMarksTheAddressCloseOnRelease() {
      try (LeasedChannel channel = connector.dial(backend.dnsAddress())) {
        Map<String, Object> response =
            client(port)
                .delete()
                .uri(connectionUri(port, backend.dnsAddress()))
                .retrieve()
                .body(JSON);
        assertThat(response)
            .containsEntry("address", backend.dnsAddress())
            .containsEntry(
                "connectors",
                Map.of(
                    CachingConnectorAutoConfiguration.CONNECTOR_BEAN_NAME,
                    Map.of("closeOnRelease", true)));
        assertThat(connector.connections())
            .singleElement()
            .satisfies(info -> assertThat(info.closing()).isTrue());
      }
      assertThat(connector.expire()).containsExactly(backend.dnsAddress());
    }
  }

  @Configuration(proxyBeanMethods = false)
  static class TwoConnectors {

    @Bean
    CachingConnector orders() {
      return CachingConnector.builder().dialer(Dialer.plaintext()).build();
    }

    @Bean
    CachingConnector users() {
      return CachingConnector.builder().dialer(Dialer.plaintext()).build();
    }
  }

  @SpringBootConfiguration
  @EnableAutoConfiguration
  @Import(TwoConnectors.class)
  static class TwoConnectorsApplication {}

  @Nested
  @SpringBootTest(
      classes = TwoConnectorsApplication.class,
      webEnvironment = WebEnvironment.RANDOM_PORT,
      properties = {
        "management.endpoints.web.exposure.include=grpcconnections",
        "management.endpoint.grpcconnections.access=unrestricted",
        // No scheduled pass during a test: the tests run the expiry bean's passes themselves.
        "grpc.connector.expiry.interval=1h"
      })
  @DirtiesContext(classMode = ClassMode.AFTER_EACH_TEST_METHOD)
  class WithTwoConnectorBeans {

    @LocalServerPort int port;

    @Autowired
    @Qualifier("orders") CachingConnector orders;

    @Autowired
    @Qualifier("users") CachingConnector users;

    @Autowired CachingConnectorExpiry expiry;

    @Test
    void endpointListsEveryConnectorByBeanNameWithItsLastExpiryPass() {
      try (LeasedChannel order = orders.dial(backend.dnsAddress())) {
        LoopbackBackend.checkAndRelease(users, backend.address());

        Map<String, Object> before =
            client(port).get().uri("/actuator/grpcconnections").retrieve().body(JSON);
        assertThat(connectorsIn(before)).containsOnlyKeys("orders", "users");
        assertThat(connectorsIn(before).values())
            .allSatisfy(connector -> assertThat(connector.get("lastExpiryPass")).isNull());
        assertThat(channelsIn(before, "orders"))
            .singleElement()
            .satisfies(
                channel ->
                    assertThat(channel)
                        .containsEntry("address", backend.dnsAddress())
                        .containsEntry("leases", 1));
        assertThat(channelsIn(before, "users"))
            .singleElement()
            .satisfies(
                channel ->
                    assertThat(channel)
                        .containsEntry("address", backend.address())
                        .containsEntry("leases", 0));

        Instant started = Instant.now().truncatedTo(ChronoUnit.MILLIS);
        expiry.expire();
        expiry.expire(); // the second pass finds the idle channel unused twice: it closes
        Instant ended = Instant.now();

        Map<String, Object> after =
            client(port).get().uri("/actuator/grpcconnections").retrieve().body(JSON);
        Map<String, Object> usersPass = lastExpiryPassIn(after, "users");
        assertThat(usersPass).containsEntry("closed", List.of(backend.address()));
        assertThat(Instant.parse((String) usersPass.get("at"))).isBetween(started, ended);
        assertThat(channelsIn(after, "users")).isEmpty();
        // The leased channel of the other connector survived both passes.
        assertThat(lastExpiryPassIn(after, "orders")).containsEntry("closed", List.of());
        assertThat(channelsIn(after, "orders")).hasSize(1);
      }
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> lastExpiryPassIn(Map<String, Object> body, String connector) {
      return (Map<String, Object>) connectorsIn(body).get(connector).get("lastExpiryPass");
    }

    @Test
    void readByAddressListsOnlyTheConnectorsThatHaveAChannelForIt() {
      try (LeasedChannel order = orders.dial(backend.dnsAddress());
          LeasedChannel user = users.dial(backend.address())) {
        Map<String, Object> byAddress =
            client(port).get().uri(connectionUri(port, backend.dnsAddress())).retrieve().body(JSON);
        assertThat(connectorsIn(byAddress)).containsOnlyKeys("orders");
        assertThat(channelsIn(byAddress, "orders"))
            .singleElement()
            .satisfies(
                channel -> assertThat(channel).containsEntry("address", backend.dnsAddress()));

        ResponseEntity<String> elsewhere =
            client(port)
                .get()
                .uri(endpointUri(port, "connector=users&address=" + encoded(backend.dnsAddress())))
                .retrieve()
                .toEntity(String.class);
        assertThat(elsewhere.getStatusCode().value()).isEqualTo(404);
      }
    }

    @Test
    void deleteMarksTheAddressOnEveryConnectorOrOnlyOnTheOneNamed() {
      try (LeasedChannel order = orders.dial(backend.dnsAddress());
          LeasedChannel user = users.dial(backend.dnsAddress())) {
        Map<String, Object> onOne =
            client(port)
                .delete()
                .uri(
                    endpointUri(
                        port, "address=" + encoded(backend.dnsAddress()) + "&connector=users"))
                .retrieve()
                .body(JSON);
        assertThat(onOne)
            .containsEntry("address", backend.dnsAddress())
            .containsEntry("connectors", Map.of("users", Map.of("closeOnRelease", true)));
        assertThat(users.connections()).allMatch(info -> info.closing());
        assertThat(orders.connections()).noneMatch(info -> info.closing());

        Map<String, Object> onEvery =
            client(port)
                .delete()
                .uri(connectionUri(port, backend.dnsAddress()))
                .retrieve()
                .body(JSON);
        // The users connector's channel was detached by the first delete: nothing left to mark.
        assertThat(onEvery)
            .containsEntry(
                "connectors",
                Map.of(
                    "orders", Map.of("closeOnRelease", true),
                    "users", Map.of("closeOnRelease", false)));
        assertThat(orders.connections()).allMatch(info -> info.closing());
      }
    }

    @Test
    void anUnknownConnectorNameIsABadRequest() {
      ResponseEntity<String> read =
          client(port)
              .get()
              .uri(endpointUri(port, "connector=payments"))
              .retrieve()
              .toEntity(String.class);
      ResponseEntity<String> delete =
          client(port)
              .delete()
              .uri(endpointUri(port, "address=localhost%3A1&connector=payments"))
              .retrieve()
              .toEntity(String.class);
      assertThat(read.getStatusCode().value()).isEqualTo(400);
      assertThat(delete.getStatusCode().value()).isEqualTo(400);
    }

    @Test
    void deleteOfAnInvalidAddressIsABadRequest() {
      ResponseEntity<String> delete =
          client(port)
              .delete()
              .uri(endpointUri(port, "address=" + encoded("two words")))
              .retrieve()
              .toEntity(String.class);
      assertThat(delete.getStatusCode().value()).isEqualTo(400);
    }
  }

  static String encoded(String value) {
    return URLEncoder.encode(value, StandardCharsets.UTF_8);
  }
}
