package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The proxy's server as Spring stops it, {@code stop(callback)}, with a call held in flight through
 * a real proxy to a real demo backend on loopback.
 */
class ProxyServerTest {

  DemoBackend alpha;
  CachingConnector connector;
  ProxyServer server;
  ManagedChannel client;
  StreamObserver<SimpleRequest> requests;
  final BidiResponses responses = new BidiResponses();
  final CompletableFuture<Void> stopped = new CompletableFuture<>();

  void start(Duration gracePeriod) throws Exception {
    alpha = DemoBackend.start("alpha", 0);
    connector = CachingConnector.builder().dialer(Dialer.plaintext()).build();
    SampleProperties.Proxy properties = new SampleProperties.Proxy();
    properties.setPort(0);
    properties.setShutdownGracePeriod(gracePeriod);
    server =
        new ProxyServer(
            new ReverseProxy(connector, Map.of("alpha", alpha.target()), Duration.ofSeconds(10)),
            properties);
    server.start();
    client =
        Grpc.newChannelBuilderForAddress(
                "127.0.0.1", server.port(), InsecureChannelCredentials.create())
            .build();
    requests = stub().bidiStreamingRpc(responses);
    requests.onNext(request("before"));
    assertThat(responses.next()).isEqualTo("alpha: before");
  }

  @AfterEach
  void tearDown() throws Exception {
    if (client != null) {
      client.shutdownNow();
    }
    if (server != null && server.isRunning()) {
      server.stop();
    }
    if (connector != null) {
      connector.close();
    }
    if (alpha != null) {
      alpha.close();
    }
  }

  @Test
  void stopReturnsAtOnceAndCallsBackWhenTheCallInFlightHasEnded() throws Exception {
    start(Duration.ofSeconds(30));

    server.stop(() -> stopped.complete(null));

    // stop(callback) has returned with the call still in flight: it neither waited for the call
    // nor called back early; the call goes on.
    assertThat(stopped).isNotDone();
    assertThat(server.isRunning()).isFalse();
    requests.onNext(request("during"));
    assertThat(responses.next()).isEqualTo("alpha: during");
    assertThat(stopped).isNotDone();

    requests.onCompleted();

    await().atMost(10, TimeUnit.SECONDS).until(stopped::isDone);
    assertThat(responses.end.get(10, TimeUnit.SECONDS)).isEqualTo(Status.Code.OK);
  }

  @Test
  void callsStillInFlightWhenTheGracePeriodRunsOutAreCancelledAndStopCallsBack() throws Exception {
    start(Duration.ofMillis(200));

    server.stop(() -> stopped.complete(null));

    // The test never ends its call: only the grace period's end lets the server stop.
    await().atMost(10, TimeUnit.SECONDS).until(stopped::isDone);
    assertThat(responses.end.get(10, TimeUnit.SECONDS)).isNotEqualTo(Status.Code.OK);
  }

  private SimpleServiceGrpc.SimpleServiceStub stub() {
    Metadata headers = new Metadata();
    headers.put(ReverseProxy.ROUTE, "alpha");
    return SimpleServiceGrpc.newStub(client)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
  }

  private static SimpleRequest request(String message) {
    return SimpleRequest.newBuilder().setRequestMessage(message).build();
  }
}
