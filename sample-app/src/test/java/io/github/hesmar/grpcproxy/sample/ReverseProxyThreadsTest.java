package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.ClientInterceptors;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleResponse;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The proxy on a server with a direct executor, as the sample runs it: calls run on the transport
 * threads, and a dial that takes long (here: route {@code slow}, whose dialer waits for a latch)
 * must neither hold up other calls on the same client connection nor lose what the call does
 * meanwhile.
 */
class ReverseProxyThreadsTest {

  DemoBackend fast;
  DemoBackend slow;
  final CountDownLatch slowDialMayFinish = new CountDownLatch(1);
  final CountDownLatch slowDialStarted = new CountDownLatch(1);
  CachingConnector connector;
  Server proxyServer;
  ManagedChannel client;

  @BeforeEach
  void setUp() throws Exception {
    fast = DemoBackend.start("fast", 0);
    slow = DemoBackend.start("slow", 0);
    Dialer plaintext = Dialer.plaintext();
    String slowTarget = slow.target();
    connector =
        CachingConnector.builder()
            .dialer(
                address -> {
                  if (address.equals(slowTarget)) {
                    slowDialStarted.countDown();
                    slowDialMayFinish.await();
                  }
                  return plaintext.dial(address);
                })
            .shutdownGracePeriod(Duration.ofSeconds(5))
            .build();
    ReverseProxy proxy =
        new ReverseProxy(
            connector, Map.of("fast", fast.target(), "slow", slowTarget), Duration.ofSeconds(30));
    proxyServer =
        proxy
            .registerWith(
                Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
                    .directExecutor())
            .build()
            .start();
    client = ReverseProxyTest.channelTo(proxyServer);
  }

  @AfterEach
  void tearDown() throws Exception {
    slowDialMayFinish.countDown();
    client.shutdownNow();
    proxyServer.shutdownNow();
    connector.close();
    fast.close();
    slow.close();
  }

  SimpleServiceGrpc.SimpleServiceStub async(String route) {
    Metadata headers = new Metadata();
    headers.put(ReverseProxy.ROUTE, route);
    return SimpleServiceGrpc.newStub(
            ClientInterceptors.intercept(
                client, MetadataUtils.newAttachHeadersInterceptor(headers)))
        .withDeadlineAfter(20, TimeUnit.SECONDS);
  }

  static SimpleRequest request(String message) {
    return SimpleRequest.newBuilder().setRequestMessage(message).build();
  }

  /** Collects a call's only response, or its failure. */
  static final class Response implements StreamObserver<SimpleResponse> {
    final CompletableFuture<String> message = new CompletableFuture<>();

    @Override
    public void onNext(SimpleResponse response) {
      message.complete(response.getResponseMessage());
    }

    @Override
    public void onError(Throwable t) {
      message.completeExceptionally(t);
    }

    @Override
    public void onCompleted() {
      message.complete("(no message)");
    }
  }

  @Test
  void callsOnTheSameConnectionGoOnWhileAChannelIsDialed() throws Exception {
    Response slowResponse = new Response();
    async("slow").unaryRpc(request("first"), slowResponse);
    assertThat(slowDialStarted.await(20, TimeUnit.SECONDS)).isTrue();

    // Same client connection, so the same transport thread of the proxy's server.
    for (int i = 0; i < 3; i++) {
      Response fastResponse = new Response();
      async("fast").unaryRpc(request("meanwhile " + i), fastResponse);
      assertThat(fastResponse.message.get(20, TimeUnit.SECONDS)).isEqualTo("fast: meanwhile " + i);
    }
    assertThat(slowResponse.message).isNotDone();

    slowDialMayFinish.countDown();
    assertThat(slowResponse.message.get(20, TimeUnit.SECONDS)).isEqualTo("slow: first");
    await().atMost(Duration.ofSeconds(10)).until(() -> connector.leaseCount() == 0);
  }

  @Test
  void callWithoutMessagesHalfClosedWhileItsChannelIsDialedIsRelayed() throws Exception {
    Response response = new Response();
    StreamObserver<SimpleRequest> requests = async("slow").clientStreamingRpc(response);
    requests.onCompleted(); // no message: the half-close reaches the proxy before the relay
    assertThat(slowDialStarted.await(20, TimeUnit.SECONDS)).isTrue();

    slowDialMayFinish.countDown();
    assertThat(response.message.get(20, TimeUnit.SECONDS)).isEqualTo("slow: received 0");
  }

  @Test
  void callCancelledWhileItsChannelIsDialedNeverReachesTheBackendAndReleasesItsLease()
      throws Exception {
    Response response = new Response();
    Context.CancellableContext context = Context.current().withCancellation();
    context.run(() -> async("slow").unaryRpc(request("cancelled"), response));
    assertThat(slowDialStarted.await(20, TimeUnit.SECONDS)).isTrue();
    context.cancel(null);
    assertThat(response.message)
        .failsWithin(Duration.ofSeconds(20))
        .withThrowableOfType(Exception.class)
        .havingCause()
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED));

    slowDialMayFinish.countDown();
    // The channel gets cached (a dial outlives its waiters), the cancelled call gets no lease.
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> connector.connectionCount() == 1 && connector.leaseCount() == 0);
    Response next = new Response();
    async("slow").unaryRpc(request("next"), next);
    assertThat(next.message.get(20, TimeUnit.SECONDS)).isEqualTo("slow: next");
    assertThat(slow.calls()).isEqualTo(1);
  }
}
