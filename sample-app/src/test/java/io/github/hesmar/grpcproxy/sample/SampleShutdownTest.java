package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.SmartLifecycle;

/** Closing the sample while a proxied call is in flight: the gRPC and web servers drain at once. */
class SampleShutdownTest {

  @Test
  void webServerDrainsWhileAProxiedCallIsStillInFlightAndTheCallEndsOk() throws Exception {
    ConfigurableApplicationContext context =
        new SpringApplicationBuilder(SampleApplication.class)
            .run(
                "--sample.proxy.port=0",
                "--server.port=0",
                "--management.server.port=0",
                // Long enough that only the call's own end lets the proxy's server stop.
                "--sample.proxy.shutdown-grace-period=60s",
                "--spring.lifecycle.timeout-per-shutdown-phase=90s");
    int httpPort = context.getEnvironment().getRequiredProperty("local.server.port", Integer.class);
    SmartLifecycle webShutdown = context.getBean("webServerGracefulShutdown", SmartLifecycle.class);
    SmartLifecycle webStartStop = context.getBean("webServerStartStop", SmartLifecycle.class);
    CachingConnector connector = context.getBean(CachingConnector.class);
    ManagedChannel client =
        Grpc.newChannelBuilderForAddress(
                "127.0.0.1",
                context.getBean(ProxyServer.class).port(),
                InsecureChannelCredentials.create())
            .build();
    BidiResponses responses = new BidiResponses();
    CompletableFuture<Void> closed = null;
    StreamObserver<SimpleRequest> requests = null;
    try {
      Metadata headers = new Metadata();
      headers.put(ReverseProxy.ROUTE, "alpha");
      requests =
          SimpleServiceGrpc.newStub(client)
              .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
              .bidiStreamingRpc(responses);
      requests.onNext(request("before"));
      assertThat(responses.next()).isEqualTo("alpha: before");
      assertThat(canConnect(httpPort)).isTrue();

      closed = CompletableFuture.runAsync(context::close);

      // The web server's graceful shutdown has begun (it no longer accepts connections) while the
      // proxied call is still in flight: the two drain in parallel.
      await()
          .atMost(10, TimeUnit.SECONDS)
          .until(() -> !webShutdown.isRunning() && !canConnect(httpPort));
      requests.onNext(request("during"));
      assertThat(responses.next()).isEqualTo("alpha: during");
      assertThat(responses.end).isNotDone();
      assertThat(closed).isNotDone();
      // The phases below the proxy's wait for its calls: the web server is not stopped yet, and
      // the connector has not begun to close the call's channel.
      assertThat(webStartStop.isRunning()).isTrue();
      assertThat(connector.connections()).isNotEmpty().noneMatch(ConnectionInfo::closing);

      requests.onCompleted();
      requests = null;
      await().atMost(10, TimeUnit.SECONDS).until(responses.end::isDone);
      assertThat(responses.end).isCompletedWithValue(Status.Code.OK);
      await().atMost(30, TimeUnit.SECONDS).until(closed::isDone);
      assertThat(closed).isCompleted();
      assertThat(context.isActive()).isFalse();
    } finally {
      if (requests != null) {
        requests.onCompleted(); // lets a blocked shutdown end, so a failure never hangs the build
      }
      if (closed == null) {
        context.close();
      } else {
        closed.get(90, TimeUnit.SECONDS);
      }
      client.shutdownNow();
    }
  }

  private static SimpleRequest request(String message) {
    return SimpleRequest.newBuilder().setRequestMessage(message).build();
  }

  private static boolean canConnect(int port) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 1000);
      return true;
    } catch (IOException refused) {
      return false;
    }
  }
}
