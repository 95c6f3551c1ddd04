package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.SpringBootTest.WebEnvironment;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.annotation.Import;
import org.springframework.core.ParameterizedTypeReference;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.ResponseEntity;
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
  @Import(BootLine.EncodedSlashesPassThrough.class)
  static class Application {}

  static RestClient client(int port) {
    return RestClient.builder()
        .baseUrl("http://localhost:" + port)
        .defaultStatusHandler(HttpStatusCode::isError, (request, response) -> {})
        .build();
  }

  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> connectionsIn(Map<String, Object> body) {
    return (List<Map<String, Object>>) body.get("connections");
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

  static URI connectionUri(int port, String address) {
    return URI.create(
        "http://localhost:"
            + port
            + "/actuator/grpcconnections/"
            + URLEncoder.encode(address, StandardCharsets.UTF_8));
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
        List<Map<String, Object>> connections = connectionsIn(all);
        assertThat(connections)
            .extracting(connection -> connection.get("address"))
            .containsExactly(backend.dnsAddress(), backend.address());
        assertThat(connections.get(0))
            .containsKey("id")
            .containsEntry("leases", 1)
            .containsEntry("calls", 1)
            .containsEntry("idlePasses", 0)
            .containsEntry("state", "READY")
            .containsEntry("closing", false)
            .containsKeys("createdAt", "lastDialedAt", "age");
        assertThat(connections.get(1)).containsEntry("leases", 1).containsEntry("calls", 0);

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
            .containsEntry("transientFailures", List.of());
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
            .containsEntry("closeOnRelease", true);

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
            .containsEntry("closeOnRelease", true);
        assertThat(connector.connections())
            .singleElement()
            .satisfies(info -> assertThat(info.closing()).isTrue());
      }
      assertThat(connector.expire()).containsExactly(backend.dnsAddress());
    }
  }
}
