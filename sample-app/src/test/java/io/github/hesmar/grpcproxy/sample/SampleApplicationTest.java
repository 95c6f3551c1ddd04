package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatExceptionOfType;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.netty.handler.ssl.NotSslRecordException;
import io.grpc.stub.MetadataUtils;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.SpringBootTest.WebEnvironment;
import org.springframework.boot.test.web.server.LocalManagementPort;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.core.ParameterizedTypeReference;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.ResponseEntity;
import org.springframework.web.client.RestClient;

/**
 * The whole sample application on random ports: the embedded demo backends, the proxy, the probe
 * and the actuator, over real gRPC and real HTTP.
 */
class SampleApplicationTest {

  /** This machine's addresses other than loopback (none on a host without a network). */
  static List<String> nonLoopbackAddresses() {
    try {
      return java.util.Collections.list(java.net.NetworkInterface.getNetworkInterfaces()).stream()
          .flatMap(i -> java.util.Collections.list(i.getInetAddresses()).stream())
          .filter(a -> !a.isLoopbackAddress() && !a.isLinkLocalAddress())
          .map(java.net.InetAddress::getHostAddress)
          .toList();
    } catch (java.net.SocketException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static void connectTo(String address, int port) throws java.io.IOException {
    try (java.net.Socket socket = new java.net.Socket()) {
      socket.connect(new java.net.InetSocketAddress(address, port), 2000);
    }
  }

  abstract static class RunningSample {

    @LocalServerPort int httpPort;
    @LocalManagementPort int managementPort;
    @Autowired ProxyServer proxyServer;
    @Autowired CachingConnector connector;
    @Autowired DemoBackends backends;
    @Autowired org.springframework.core.env.Environment environment;
    ManagedChannel client;
    RestClient http;
    RestClient actuator;

    @BeforeEach
    void connect() {
      client =
          Grpc.newChannelBuilderForAddress(
                  "127.0.0.1", proxyServer.port(), InsecureChannelCredentials.create())
              .build();
      http = restClient(httpPort);
      actuator = restClient(managementPort);
    }

    @AfterEach
    void disconnect() {
      client.shutdownNow();
    }

    /** One unary call through the proxy; returns the backend's answer and its x-backend header. */
    String call(String route, String message) {
      Metadata headers = new Metadata();
      headers.put(ReverseProxy.ROUTE, route);
      AtomicReference<Metadata> responseHeaders = new AtomicReference<>();
      String answer =
          SimpleServiceGrpc.newBlockingStub(client)
              .withInterceptors(
                  MetadataUtils.newAttachHeadersInterceptor(headers),
                  MetadataUtils.newCaptureMetadataInterceptor(
                      responseHeaders, new AtomicReference<>()))
              .withDeadlineAfter(10, TimeUnit.SECONDS)
              .unaryRpc(SimpleRequest.newBuilder().setRequestMessage(message).build())
              .getResponseMessage();
      return answer + " [x-backend: " + responseHeaders.get().get(DemoBackend.BACKEND) + "]";
    }

    static RestClient restClient(int port) {
      return RestClient.builder()
          .baseUrl("http://127.0.0.1:" + port)
          .defaultStatusHandler(HttpStatusCode::isError, (request, response) -> {})
          .build();
    }

    ResponseEntity<Map<String, Object>> get(String path) {
      return get(http, path);
    }

    ResponseEntity<Map<String, Object>> actuator(String path) {
      return get(actuator, path);
    }

    static ResponseEntity<Map<String, Object>> get(RestClient client, String path) {
      return client.get().uri(path).retrieve().toEntity(new ParameterizedTypeReference<>() {});
    }
  }

  @Nested
  @SpringBootTest(
      webEnvironment = WebEnvironment.RANDOM_PORT,
      properties = {"sample.proxy.port=0", "management.server.port=0"})
  class WithDefaultSettings extends RunningSample {

    @Test
    void callsWithXRouteReachTheirBackends() {
      assertThat(call("alpha", "hi")).isEqualTo("alpha: hi [x-backend: alpha]");
      assertThat(call("beta", "hi")).isEqualTo("beta: hi [x-backend: beta]");
    }

    @Test
    void addressesOtherThanTheDemoBackendsAreDialedOverTls() {
      // 127.0.0.1:<port> is plaintext through the demo-backends target; the same backend by
      // another address is matched by no target, so TLS, which the demo backend cannot speak.
      String sameBackendByName = backends.get("alpha").target().replace("127.0.0.1", "localhost");
      try (LeasedChannel channel = connector.dial(sameBackendByName)) {
        assertThatExceptionOfType(StatusRuntimeException.class)
            .isThrownBy(
                () ->
                    SimpleServiceGrpc.newBlockingStub(channel)
                        .withDeadlineAfter(10, TimeUnit.SECONDS)
                        .unaryRpc(SimpleRequest.getDefaultInstance()))
            .satisfies(
                e -> {
                  assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                  // Not a refused connection: TLS met the plaintext backend.
                  assertThat(e).hasRootCauseInstanceOf(NotSslRecordException.class);
                });
      }
    }

    @Test
    void everythingListensOnLoopbackAndTheActuatorOnlyOnItsOwnPort() {
      assertThat(proxyServer.address().getAddress().isLoopbackAddress()).isTrue();
      assertThat(environment.getProperty("server.address")).isEqualTo("127.0.0.1");
      assertThat(environment.getProperty("management.server.address")).isEqualTo("127.0.0.1");
      assertThat(managementPort).isNotEqualTo(httpPort);
      // Not on the probe's port, whatever server.address opens it to.
      assertThat(get("/actuator/health").getStatusCode().value()).isEqualTo(404);
      assertThat(get("/actuator/grpcconnections").getStatusCode().value()).isEqualTo(404);
      assertThat(actuator("/actuator/health").getBody()).containsKey("components");
      for (String address : nonLoopbackAddresses()) {
        for (int port : new int[] {proxyServer.port(), httpPort, managementPort}) {
          assertThatExceptionOfType(java.io.IOException.class)
              .as("%s:%d", address, port)
              .isThrownBy(() -> connectTo(address, port));
        }
      }
    }

    @Test
    void probeChecksTheRoutesBackendThroughTheConnector() {
      ResponseEntity<Map<String, Object>> probe = get("/probe/alpha");

      assertThat(probe.getStatusCode().value()).isEqualTo(200);
      assertThat(probe.getBody())
          .containsEntry("route", "alpha")
          .containsEntry("target", backends.get("alpha").target())
          .containsEntry("status", "SERVING");
    }

    @Test
    void probeOfAnUnknownRouteAnswers404WithTheControllersJson() {
      ResponseEntity<Map<String, Object>> probe = get("/probe/gamma");

      assertThat(probe.getStatusCode().value()).isEqualTo(404);
      assertThat(probe.getBody())
          .containsEntry("route", "gamma")
          .containsEntry("target", null)
          .containsEntry("status", "UNKNOWN_ROUTE");
    }

    @Test
    void probeEchoesAtMost64CharactersOfAnUnknownRoute() {
      String route = "r".repeat(1000);

      ResponseEntity<Map<String, Object>> probe = get("/probe/" + route);

      assertThat(probe.getStatusCode().value()).isEqualTo(404);
      assertThat(probe.getBody()).containsEntry("route", "r".repeat(64) + "... (1000 characters)");
    }

    @Test
    @SuppressWarnings("unchecked")
    void actuatorShowsTheCachedBackendsWithNoLeaseAfterCallsEnd() {
      call("alpha", "x");
      call("beta", "x");
      String alpha = backends.get("alpha").target();
      String beta = backends.get("beta").target();
      // The relay closes the server call, then releases its lease: the caller may hear first.
      await().until(() -> connector.leaseCount() == 0);

      ResponseEntity<Map<String, Object>> connections = actuator("/actuator/grpcconnections");

      assertThat(connections.getStatusCode().value()).isEqualTo(200);
      Map<String, Map<String, Object>> connectors =
          (Map<String, Map<String, Object>>) connections.getBody().get("connectors");
      assertThat(connectors).containsOnlyKeys("cachingConnector");
      List<Map<String, Object>> listed =
          (List<Map<String, Object>>) connectors.get("cachingConnector").get("channels");
      assertThat(listed).extracting(c -> c.get("address")).contains(alpha, beta);
      assertThat(listed).allSatisfy(c -> assertThat(c.get("leases")).isEqualTo(0));
      assertThat(connector.leaseCount()).isZero();
    }

    @Test
    @SuppressWarnings("unchecked")
    void metricsShowTheOpenChannels() {
      call("alpha", "x");

      ResponseEntity<Map<String, Object>> metric =
          actuator("/actuator/metrics/grpc.connector.channels");

      assertThat(metric.getStatusCode().value()).isEqualTo(200);
      List<Map<String, Object>> measurements =
          (List<Map<String, Object>>) metric.getBody().get("measurements");
      assertThat(((Number) measurements.get(0).get("value")).doubleValue())
          .isGreaterThanOrEqualTo(1);
      assertThat(actuator("/actuator/health").getBody()).containsEntry("status", "UP");
    }
  }

  @Nested
  @SpringBootTest(
      webEnvironment = WebEnvironment.RANDOM_PORT,
      properties = {
        "sample.proxy.port=0",
        "management.server.port=0",
        "grpc.connector.expiry.interval=50ms"
      })
  class WithShortExpiryInterval extends RunningSample {

    @Autowired io.micrometer.core.instrument.MeterRegistry registry;

    @Test
    void idleBackendIsExpiredAndTheNextCallDialsItAgain() {
      String beta = backends.get("beta").target();
      double created = channelsCreated();
      assertThat(call("beta", "first")).isEqualTo("beta: first [x-backend: beta]");
      assertThat(channelsCreated()).isEqualTo(created + 1);

      await()
          .atMost(10, TimeUnit.SECONDS)
          .until(() -> connector.connections().stream().noneMatch(c -> c.address().equals(beta)));

      // A new channel, not the expired one: counted rather than looked up in the cache, which a
      // 50 ms interval may empty again before the lookup.
      assertThat(call("beta", "again")).isEqualTo("beta: again [x-backend: beta]");
      assertThat(channelsCreated()).isEqualTo(created + 2);
    }

    double channelsCreated() {
      return registry.get("grpc.connector.dials.missed").counter().count();
    }
  }
}
