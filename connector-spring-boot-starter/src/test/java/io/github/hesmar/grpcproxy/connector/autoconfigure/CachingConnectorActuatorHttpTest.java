package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
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
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> connections = (List<Map<String, Object>>) all.get("connections");
        assertThat(connections)
            .extracting(connection -> connection.get("address"))
            .containsExactly(backend.dnsAddress(), backend.address());
        assertThat(connections.get(0))
            .containsEntry("leases", 1)
            .containsEntry("calls", 1)
            .containsEntry("idlePasses", 0)
            .containsEntry("state", "READY")
            .containsEntry("closing", false)
            .containsKeys("createdAt", "lastDialedAt");
        assertThat(connections.get(1)).containsEntry("leases", 1).containsEntry("calls", 0);

        ResponseEntity<Map<String, Object>> one =
            client(port)
                .get()
                .uri(connectionUri(port, backend.dnsAddress()))
                .retrieve()
                .toEntity(JSON);
        assertThat(one.getStatusCode().value()).isEqualTo(200);
        assertThat(one.getBody())
            .containsEntry("address", backend.dnsAddress())
            .containsEntry("leases", 1)
            .containsEntry("calls", 1);
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
    void connectionsGaugeIsReadableOverHttp() {
      try (LeasedChannel channel = connector.dial(backend.address())) {
        Map<String, Object> metric =
            client(port)
                .get()
                .uri("/actuator/metrics/grpc.connector.connections?tag=name:cachingConnector")
                .retrieve()
                .body(JSON);
        assertThat(metric).containsEntry("name", "grpc.connector.connections");
        assertThat(metric.get("measurements"))
            .isEqualTo(
                List.of(
                    Map.of("statistic", "VALUE", "value", (double) connector.connectionCount())));
        assertThat(connector.connectionCount()).isPositive();
      }
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
