package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatExceptionOfType;

import io.grpc.ClientInterceptors;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleResponse;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;

/**
 * Messages over {@code sample.proxy.max-message-size}, in either direction, through the whole
 * sample (real Netty server and channels): the oversized call fails with RESOURCE_EXHAUSTED every
 * time, and a stream running on the same client connection keeps flowing.
 */
@SpringBootTest(properties = {"sample.proxy.port=0", "sample.proxy.max-message-size=1MB"})
class OversizeMessageTest {

  static final int LIMIT = 1024 * 1024;
  static final int TRIES = 200;

  @Autowired ProxyServer proxyServer;

  ManagedChannel client;
  Metadata alpha;

  @BeforeEach
  void connect() {
    // The client itself accepts big responses: only the proxy's limit is under test.
    client =
        Grpc.newChannelBuilderForAddress(
                "127.0.0.1", proxyServer.port(), InsecureChannelCredentials.create())
            .maxInboundMessageSize(16 * LIMIT)
            .build();
    alpha = new Metadata();
    alpha.put(ReverseProxy.ROUTE, "alpha");
  }

  @AfterEach
  void disconnect() {
    client.shutdownNow();
  }

  @Test
  void oversizedRequestsFailAloneAndTheConnectionKeepsFlowing() throws Exception {
    try (Stream stream = new Stream()) {
      for (int i = 0; i < TRIES; i++) {
        String big = "x".repeat(LIMIT + 64 * 1024);
        int attempt = i;
        assertThatExceptionOfType(StatusRuntimeException.class)
            .as("oversized request %d of %d", attempt + 1, TRIES)
            .isThrownBy(() -> unary(big))
            .satisfies(
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED));
        assertThat(stream.roundTrip("ping " + i)).isEqualTo("alpha: ping " + i);
      }
      assertThat(stream.finish()).isEqualTo(Status.Code.OK);
    }
  }

  @Test
  void oversizedResponsesFailAloneAndTheConnectionKeepsFlowing() throws Exception {
    try (Stream stream = new Stream()) {
      for (int i = 0; i < TRIES; i++) {
        int attempt = i;
        assertThatExceptionOfType(StatusRuntimeException.class)
            .as("oversized response %d of %d", attempt + 1, TRIES)
            .isThrownBy(() -> unary("size:" + (LIMIT + 64 * 1024)))
            .satisfies(
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED));
        assertThat(stream.roundTrip("ping " + i)).isEqualTo("alpha: ping " + i);
      }
      assertThat(stream.finish()).isEqualTo(Status.Code.OK);
    }
  }

  @Test
  void messagesUnderTheLimitPassBothWays() {
    String almost = "x".repeat(LIMIT - 1024);

    assertThat(unary(almost)).hasSize(almost.length() + "alpha: ".length());
    assertThat(unary("size:" + (LIMIT - 1024))).hasSize(LIMIT - 1024);
  }

  String unary(String message) {
    return SimpleServiceGrpc.newBlockingStub(client)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(alpha))
        .withDeadlineAfter(20, TimeUnit.SECONDS)
        .unaryRpc(SimpleRequest.newBuilder().setRequestMessage(message).build())
        .getResponseMessage();
  }

  /** A bidi stream through the proxy on the same client connection, one message at a time. */
  final class Stream implements AutoCloseable, StreamObserver<SimpleResponse> {
    final BlockingQueue<String> responses = new LinkedBlockingQueue<>();
    final CompletableFuture<Status.Code> done = new CompletableFuture<>();
    final StreamObserver<SimpleRequest> requests;

    Stream() {
      requests =
          SimpleServiceGrpc.newStub(
                  ClientInterceptors.intercept(
                      client, MetadataUtils.newAttachHeadersInterceptor(alpha)))
              .withDeadlineAfter(5, TimeUnit.MINUTES)
              .bidiStreamingRpc(this);
    }

    String roundTrip(String message) throws Exception {
      requests.onNext(SimpleRequest.newBuilder().setRequestMessage(message).build());
      String response = responses.poll(20, TimeUnit.SECONDS);
      assertThat(response)
          .as("response to '%s' (stream ended: %s)", message, done.getNow(null))
          .isNotNull();
      return response;
    }

    Status.Code finish() throws Exception {
      requests.onCompleted();
      return done.get(20, TimeUnit.SECONDS);
    }

    @Override
    public void onNext(SimpleResponse value) {
      responses.add(value.getResponseMessage());
    }

    @Override
    public void onError(Throwable t) {
      done.complete(Status.fromThrowable(t).getCode());
    }

    @Override
    public void onCompleted() {
      done.complete(Status.Code.OK);
    }

    @Override
    public void close() {
      if (!done.isDone()) {
        requests.onError(Status.CANCELLED.asRuntimeException());
      }
    }
  }
}
