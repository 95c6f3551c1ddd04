package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.ClientInterceptors;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleResponse;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The proxy with real gRPC clients over loopback: two demo backends, a proxy server on a random
 * port forwarding through a {@link CachingConnector}, and a client channel to the proxy.
 */
class ReverseProxyTest {

  DemoBackend alpha;
  DemoBackend beta;
  CachingConnector connector;
  final AtomicInteger connects = new AtomicInteger();
  Server proxyServer;
  ManagedChannel client;

  @BeforeEach
  void setUp() throws Exception {
    alpha = DemoBackend.start("alpha", 0);
    beta = DemoBackend.start("beta", 0);
    connector =
        CachingConnector.builder()
            .dialer(Dialer.plaintext())
            .shutdownGracePeriod(Duration.ofSeconds(5))
            .onConnect(address -> connects.incrementAndGet())
            .build();
    ReverseProxy proxy =
        new ReverseProxy(
            connector,
            Map.of("alpha", alpha.target(), "beta", beta.target(), "down", closedPort()),
            Duration.ofSeconds(10));
    proxyServer = serve(proxy);
    client = channelTo(proxyServer);
  }

  /** Starts a plaintext server on a free port that forwards every call through {@code proxy}. */
  static Server serve(ReverseProxy proxy) throws java.io.IOException {
    return proxy
        .registerWith(Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()))
        .build()
        .start();
  }

  static ManagedChannel channelTo(Server server) {
    return Grpc.newChannelBuilderForAddress(
            "127.0.0.1", server.getPort(), InsecureChannelCredentials.create())
        .build();
  }

  @AfterEach
  void tearDown() throws Exception {
    client.shutdownNow();
    proxyServer.shutdownNow();
    connector.close();
    alpha.close();
    beta.close();
  }

  Metadata headers(String route) {
    Metadata headers = new Metadata();
    headers.put(ReverseProxy.ROUTE, route);
    return headers;
  }

  /** A stub whose calls carry {@code x-route: route} and record the response headers. */
  SimpleServiceGrpc.SimpleServiceBlockingStub blocking(
      String route, AtomicReference<Metadata> responseHeaders, AtomicReference<Metadata> trailers) {
    return SimpleServiceGrpc.newBlockingStub(client)
        .withInterceptors(
            MetadataUtils.newAttachHeadersInterceptor(headers(route)),
            MetadataUtils.newCaptureMetadataInterceptor(responseHeaders, trailers))
        .withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  SimpleServiceGrpc.SimpleServiceStub async(String route, Metadata extra) {
    Metadata headers = headers(route);
    headers.merge(extra);
    return SimpleServiceGrpc.newStub(
            ClientInterceptors.intercept(
                client, MetadataUtils.newAttachHeadersInterceptor(headers)))
        .withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  static SimpleRequest request(String message) {
    return SimpleRequest.newBuilder().setRequestMessage(message).build();
  }

  @ParameterizedTest(name = "route {0}")
  @ValueSource(strings = {"alpha", "beta"})
  void unaryCallReachesTheRoutedBackend(String route) {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();

    SimpleResponse response = blocking(route, headers, trailers).unaryRpc(request("hello"));

    assertThat(response.getResponseMessage()).isEqualTo(route + ": hello");
    assertThat(headers.get().get(DemoBackend.BACKEND)).isEqualTo(route);
    assertThat(trailers.get().get(DemoBackend.SERVED_BY)).isEqualTo(route);
  }

  @ParameterizedTest(name = "route {0}")
  @ValueSource(strings = {"alpha", "beta"})
  void serverStreamingCallSendsAsManyResponsesAsXCountSays(String route) {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    Metadata count = new Metadata();
    count.put(DemoBackend.COUNT, "5");
    Iterator<SimpleResponse> responses =
        blocking(route, headers, new AtomicReference<>())
            .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(count))
            .serverStreamingRpc(request("tick"));

    List<String> messages = new ArrayList<>();
    responses.forEachRemaining(r -> messages.add(r.getResponseMessage()));

    assertThat(messages)
        .containsExactly(
            route + ": tick #1",
            route + ": tick #2",
            route + ": tick #3",
            route + ": tick #4",
            route + ": tick #5");
    assertThat(headers.get().get(DemoBackend.BACKEND)).isEqualTo(route);
  }

  @ParameterizedTest(name = "route {0}")
  @ValueSource(strings = {"alpha", "beta"})
  void clientStreamingCallIsAnsweredOnceAtTheEnd(String route) throws Exception {
    Recorder recorder = new Recorder();
    StreamObserver<SimpleRequest> requests =
        async(route, new Metadata()).clientStreamingRpc(recorder);
    for (int i = 0; i < 7; i++) {
      requests.onNext(request("m" + i));
    }
    requests.onCompleted();

    assertThat(recorder.done.get(10, TimeUnit.SECONDS)).isEqualTo(Status.OK);
    assertThat(recorder.messages).containsExactly(route + ": received 7");
  }

  @ParameterizedTest(name = "route {0}")
  @ValueSource(strings = {"alpha", "beta"})
  void bidiStreamingCallAnswersEachRequest(String route) throws Exception {
    Recorder recorder = new Recorder();
    StreamObserver<SimpleRequest> requests =
        async(route, new Metadata())
            .withInterceptors(
                MetadataUtils.newCaptureMetadataInterceptor(recorder.headers, recorder.trailers))
            .bidiStreamingRpc(recorder);
    requests.onNext(request("one"));
    requests.onNext(request("two"));
    requests.onCompleted();

    assertThat(recorder.done.get(10, TimeUnit.SECONDS)).isEqualTo(Status.OK);
    assertThat(recorder.messages).containsExactly(route + ": one", route + ": two");
    assertThat(recorder.headers.get().get(DemoBackend.BACKEND)).isEqualTo(route);
    assertThat(recorder.trailers.get().get(DemoBackend.SERVED_BY)).isEqualTo(route);
  }

  @Test
  void requestHeadersAreForwardedAndResponseHeadersComeBack() {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    Metadata echo = new Metadata();
    echo.put(DemoBackend.ECHO, "ping-42");

    blocking("alpha", headers, new AtomicReference<>())
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(echo))
        .unaryRpc(request("x"));

    assertThat(headers.get().get(DemoBackend.ECHO)).isEqualTo("ping-42");
  }

  @Test
  void backendFailureSurfacesWithItsStatusAndTrailers() {
    AtomicReference<Metadata> trailers = new AtomicReference<>();

    assertThatThrownBy(
            () ->
                blocking("beta", new AtomicReference<>(), trailers)
                    .unaryRpc(request("fail:PERMISSION_DENIED")))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
              assertThat(e.getStatus().getDescription()).isEqualTo("beta failed as asked");
              assertThat(e.getTrailers().get(DemoBackend.ERROR_DETAIL))
                  .isEqualTo("failed on request by beta");
            });
  }

  @ParameterizedTest(name = "x-route: {0}")
  @ValueSource(strings = {"", "gamma", "127.0.0.1:1"})
  void unknownRouteIsRefusedWithoutAnyDial(String route) {
    assertThatThrownBy(
            () ->
                blocking(route, new AtomicReference<>(), new AtomicReference<>())
                    .unaryRpc(request("x")))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND);
              assertThat(e.getStatus().getDescription())
                  .isEqualTo("Unknown route '" + route + "' in x-route")
                  .doesNotContain("alpha", "beta");
            });
    assertThat(connects).hasValue(0);
    assertThat(connector.connectionCount()).isZero();
  }

  @Test
  void longUnknownRouteIsEchoedCutShort() {
    String route = "r".repeat(2700);

    assertThatThrownBy(
            () ->
                blocking(route, new AtomicReference<>(), new AtomicReference<>())
                    .unaryRpc(request("x")))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              // Not RESOURCE_EXHAUSTED on the error's own metadata, as when the route came back
              // whole.
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND);
              assertThat(e.getStatus().getDescription())
                  .isEqualTo(
                      "Unknown route '"
                          + "r".repeat(Routes.MAX_ROUTE_ECHO)
                          + "... (2700 characters)' in x-route");
            });
  }

  @Test
  void backendTransportFailureIsReportedByRouteOnly() {
    assertThatThrownBy(
            () ->
                blocking("down", new AtomicReference<>(), new AtomicReference<>())
                    .unaryRpc(request("x")))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              // The connection was refused: no Netty pipeline names, no address, reach the caller.
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
              assertThat(e.getStatus().getDescription()).isEqualTo("backend down unavailable");
            });
    // The relay closes the server call, then releases its lease: the caller may hear first.
    await().until(() -> connector.leaseCount() == 0);
  }

  @Test
  void backendThatCannotBeDialedIsReportedByRouteOnly() throws Exception {
    try (CachingConnector failing =
        CachingConnector.builder()
            .dialer(
                address -> {
                  throw new IllegalStateException("no channel for " + address);
                })
            .build()) {
      Server server =
          serve(new ReverseProxy(failing, Map.of("alpha", alpha.target()), Duration.ofSeconds(10)));
      ManagedChannel channel = channelTo(server);
      try {
        assertThatThrownBy(
                () ->
                    SimpleServiceGrpc.newBlockingStub(channel)
                        .withInterceptors(
                            MetadataUtils.newAttachHeadersInterceptor(headers("alpha")))
                        .withDeadlineAfter(10, TimeUnit.SECONDS)
                        .unaryRpc(request("x")))
            .isInstanceOfSatisfying(
                StatusRuntimeException.class,
                e -> {
                  assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                  assertThat(e.getStatus().getDescription()).isEqualTo("backend alpha unavailable");
                });
      } finally {
        channel.shutdownNow();
        server.shutdownNow();
      }
    }
  }

  /**
   * A backend that answers headers as soon as a call starts, so the proxy relays them while the
   * client may still be sending an oversized request: the window between grpc-java queueing its
   * RESOURCE_EXHAUSTED trailers and telling the proxy (onCancel) is hit, which only the call's
   * guard (the stream tracer) closes.
   */
  @Test
  void oversizedRequestWhileTheBackendAnswersHeadersFailsAlone() throws Exception {
    int limit = 64 * 1024;
    Server eager =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .fallbackHandlerRegistry(
                new io.grpc.HandlerRegistry() {
                  @Override
                  public io.grpc.ServerMethodDefinition<?, ?> lookupMethod(
                      String method, @org.jspecify.annotations.Nullable String authority) {
                    return SimpleServiceGrpc.getBidiStreamingRpcMethod()
                            .getFullMethodName()
                            .equals(method)
                        ? io.grpc.ServerMethodDefinition.create(
                            SimpleServiceGrpc.getBidiStreamingRpcMethod(),
                            (call, headers) -> {
                              call.sendHeaders(new Metadata());
                              call.request(1);
                              return new io.grpc.ServerCall.Listener<>() {};
                            })
                        : null;
                  }
                })
            .build()
            .start();
    ReverseProxy proxy =
        new ReverseProxy(
            connector, Map.of("eager", "127.0.0.1:" + eager.getPort()), Duration.ofSeconds(10));
    Server limited =
        proxy
            .registerWith(
                io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder.forPort(0)
                    .maxInboundMessageSize(limit))
            .build()
            .start();
    ManagedChannel channel = channelTo(limited);
    try {
      SimpleServiceGrpc.SimpleServiceStub stub =
          SimpleServiceGrpc.newStub(
                  ClientInterceptors.intercept(
                      channel, MetadataUtils.newAttachHeadersInterceptor(headers("eager"))))
              .withDeadlineAfter(30, TimeUnit.SECONDS);
      Recorder survivor = new Recorder();
      StreamObserver<SimpleRequest> open = stub.bidiStreamingRpc(survivor);
      open.onNext(request("small"));
      for (int i = 0; i < 200; i++) {
        Recorder recorder = new Recorder();
        stub.bidiStreamingRpc(recorder).onNext(request("x".repeat(limit + 1024)));
        Status status = recorder.done.get(10, TimeUnit.SECONDS);
        // Headers relayed before the message was refused leave grpc-java no way to send a status
        // (a second header block): it resets the stream (CANCELLED), as a grpc-java server that
        // answers headers first does. Never UNAVAILABLE: the connection must survive.
        assertThat(status.getCode())
            .as("try %d: %s", i, status)
            .isIn(Status.Code.RESOURCE_EXHAUSTED, Status.Code.CANCELLED);
        assertThat(survivor.done).as("the other stream, after try %d", i).isNotDone();
      }
      // The connection survived: the first stream is still open.
      assertThat(survivor.done).isNotDone();
      open.onCompleted();
    } finally {
      channel.shutdownNow();
      limited.shutdownNow();
      eager.shutdownNow();
    }
  }

  @Test
  @org.junit.jupiter.api.extension.ExtendWith(
      org.springframework.boot.test.system.OutputCaptureExtension.class)
  void failuresOfOneBackendAreLoggedOnceAnInterval(
      org.springframework.boot.test.system.CapturedOutput output) throws Exception {
    // A route name of its own: the throttle is per route, and other tests fail route "down".
    String route = "down-" + System.nanoTime();
    Server server =
        serve(new ReverseProxy(connector, Map.of(route, closedPort()), Duration.ofSeconds(10)));
    ManagedChannel channel = channelTo(server);
    try {
      for (int i = 0; i < 3; i++) {
        assertThatThrownBy(
                () ->
                    SimpleServiceGrpc.newBlockingStub(channel)
                        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers(route)))
                        .withDeadlineAfter(10, TimeUnit.SECONDS)
                        .unaryRpc(request("x")))
            .isInstanceOfSatisfying(
                StatusRuntimeException.class,
                e ->
                    assertThat(e.getStatus().getDescription())
                        .isEqualTo("backend " + route + " unavailable"));
      }
      // Three failures well within the interval: one line, for the first.
      assertThat(output.getAll().lines().filter(l -> l.contains("route " + route + " (")))
          .hasSize(1)
          .allSatisfy(l -> assertThat(l).contains("WARN", "Connection refused"));
    } finally {
      channel.shutdownNow();
      server.shutdownNow();
    }
  }

  /** An address where nothing listens (a port bound, then released). */
  static String closedPort() throws java.io.IOException {
    try (java.net.ServerSocket socket =
        new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return "127.0.0.1:" + socket.getLocalPort();
    }
  }

  @Test
  void missingRouteIsRefusedWithoutAnyDial() {
    assertThatThrownBy(
            () ->
                SimpleServiceGrpc.newBlockingStub(client)
                    .withDeadlineAfter(10, TimeUnit.SECONDS)
                    .unaryRpc(request("x")))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription())
                  .isEqualTo("Missing request header x-route");
            });
    assertThat(connects).hasValue(0);
  }

  @Test
  void longServerStreamArrivesWholeAndSlowReaderHoldsTheBackendBack() throws Exception {
    int total = 20_000;
    Metadata count = new Metadata();
    count.put(DemoBackend.COUNT, String.valueOf(total));
    String payload = "x".repeat(1000);
    AtomicReference<ClientCallStreamObserver<SimpleRequest>> call = new AtomicReference<>();
    AtomicInteger received = new AtomicInteger();
    CompletableFuture<Status> done = new CompletableFuture<>();
    async("alpha", count)
        .serverStreamingRpc(
            request(payload),
            new ClientResponseObserver<SimpleRequest, SimpleResponse>() {
              @Override
              public void beforeStart(ClientCallStreamObserver<SimpleRequest> requestStream) {
                requestStream.disableAutoRequestWithInitial(1);
                call.set(requestStream);
              }

              @Override
              public void onNext(SimpleResponse response) {
                if (response.getResponseMessage().endsWith("#" + received.incrementAndGet())) {
                  return;
                }
                done.completeExceptionally(new AssertionError("out of order: " + received));
              }

              @Override
              public void onError(Throwable t) {
                done.complete(Status.fromThrowable(t));
              }

              @Override
              public void onCompleted() {
                done.complete(Status.OK);
              }
            });

    // The client took one message: backpressure must reach the backend through the proxy, which
    // then stays held back. Two HTTP/2 hops with 1 MiB windows hold about 2,000 of these 1 KB
    // messages; without backpressure the proxy would take all 20 MB from the backend at once.
    await().until(() -> received.get() == 1 && alpha.flowControlStalls() > 0);
    await()
        .during(Duration.ofSeconds(1))
        .atMost(Duration.ofSeconds(5))
        .until(() -> alpha.streamedResponses() < total / 4);

    call.get().request(total);
    assertThat(done.get(60, TimeUnit.SECONDS)).isEqualTo(Status.OK);
    assertThat(received).hasValue(total);
  }

  @Test
  void clientCancellationReachesTheBackend() throws Exception {
    Recorder recorder = new Recorder();
    io.grpc.Context.CancellableContext context = io.grpc.Context.current().withCancellation();
    StreamObserver<SimpleRequest> requests =
        context.call(() -> async("beta", new Metadata()).bidiStreamingRpc(recorder));
    requests.onNext(request("first"));
    await().until(() -> recorder.messages.size() == 1);

    context.cancel(new RuntimeException("client gave up"));

    await().until(() -> beta.cancelledCalls() == 1);
    assertThat(recorder.done.get(10, TimeUnit.SECONDS).getCode()).isEqualTo(Status.Code.CANCELLED);
    await().until(() -> connector.leaseCount() == 0);
  }

  @Test
  void deadlineReachesTheBackend() {
    blocking("alpha", new AtomicReference<>(), new AtomicReference<>())
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .unaryRpc(request("x"));

    assertThat(alpha.lastDeadline()).isNotNull();
    assertThat(alpha.lastDeadline().timeRemaining(TimeUnit.SECONDS)).isBetween(1L, 30L);
  }

  @Test
  void manyConcurrentCallsAllSucceedAndLeaveNoLease() throws Exception {
    ExecutorService callers = Executors.newFixedThreadPool(16);
    try {
      List<Future<String>> results = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        String route = i % 2 == 0 ? "alpha" : "beta";
        String message = "call " + i;
        results.add(
            callers.submit(
                () ->
                    blocking(route, new AtomicReference<>(), new AtomicReference<>())
                        .unaryRpc(request(message))
                        .getResponseMessage()));
      }
      for (int i = 0; i < results.size(); i++) {
        assertThat(results.get(i).get(30, TimeUnit.SECONDS))
            .isEqualTo((i % 2 == 0 ? "alpha" : "beta") + ": call " + i);
      }
    } finally {
      callers.shutdownNow();
    }
    await().until(() -> connector.leaseCount() == 0);
    assertThat(connector.connectionCount()).isEqualTo(2);
  }

  @Test
  void idleBackendIsExpiredAndTheNextCallDialsItAgain() {
    blocking("alpha", new AtomicReference<>(), new AtomicReference<>()).unaryRpc(request("x"));
    await().until(() -> connector.leaseCount() == 0);

    connector.expire();
    assertThat(connector.expire()).containsExactly(alpha.target());
    assertThat(connector.connectionCount()).isZero();

    assertThat(
            blocking("alpha", new AtomicReference<>(), new AtomicReference<>())
                .unaryRpc(request("again"))
                .getResponseMessage())
        .isEqualTo("alpha: again");
    assertThat(connector.connectionCount()).isEqualTo(1);
  }

  @Test
  void serverReflectionIsForwardedSoToolsLikeGrpcurlWork() throws Exception {
    List<String> services = new CopyOnWriteArrayList<>();
    CompletableFuture<Status> done = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> requests =
        ServerReflectionGrpc.newStub(
                ClientInterceptors.intercept(
                    client, MetadataUtils.newAttachHeadersInterceptor(headers("beta"))))
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .serverReflectionInfo(
                new StreamObserver<>() {
                  @Override
                  public void onNext(ServerReflectionResponse response) {
                    response
                        .getListServicesResponse()
                        .getServiceList()
                        .forEach(service -> services.add(service.getName()));
                  }

                  @Override
                  public void onError(Throwable t) {
                    done.complete(Status.fromThrowable(t));
                  }

                  @Override
                  public void onCompleted() {
                    done.complete(Status.OK);
                  }
                });
    requests.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    requests.onCompleted();

    assertThat(done.get(10, TimeUnit.SECONDS)).isEqualTo(Status.OK);
    assertThat(services).contains("grpc.testing.SimpleService", "grpc.health.v1.Health");
  }

  @Test
  @SuppressWarnings("deprecation") // v1alpha, which older tools such as grpcurl 1.8 speak
  void serverReflectionV1AlphaIsForwardedToo() throws Exception {
    List<String> services = new CopyOnWriteArrayList<>();
    CompletableFuture<Status> done = new CompletableFuture<>();
    StreamObserver<io.grpc.reflection.v1alpha.ServerReflectionRequest> requests =
        io.grpc.reflection.v1alpha.ServerReflectionGrpc.newStub(
                ClientInterceptors.intercept(
                    client, MetadataUtils.newAttachHeadersInterceptor(headers("alpha"))))
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .serverReflectionInfo(
                new StreamObserver<>() {
                  @Override
                  public void onNext(io.grpc.reflection.v1alpha.ServerReflectionResponse response) {
                    response
                        .getListServicesResponse()
                        .getServiceList()
                        .forEach(service -> services.add(service.getName()));
                  }

                  @Override
                  public void onError(Throwable t) {
                    done.complete(Status.fromThrowable(t));
                  }

                  @Override
                  public void onCompleted() {
                    done.complete(Status.OK);
                  }
                });
    requests.onNext(
        io.grpc.reflection.v1alpha.ServerReflectionRequest.newBuilder()
            .setListServices("")
            .build());
    requests.onCompleted();

    assertThat(done.get(10, TimeUnit.SECONDS)).isEqualTo(Status.OK);
    assertThat(services)
        .contains(
            "grpc.testing.SimpleService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection");
  }

  /** Records a streaming call's headers, messages and end. */
  static final class Recorder implements ClientResponseObserver<SimpleRequest, SimpleResponse> {
    final List<String> messages = new CopyOnWriteArrayList<>();
    final CompletableFuture<Status> done = new CompletableFuture<>();
    final AtomicReference<Metadata> headers = new AtomicReference<>();
    final AtomicReference<Metadata> trailers = new AtomicReference<>();

    @Override
    public void beforeStart(ClientCallStreamObserver<SimpleRequest> requestStream) {}

    @Override
    public void onNext(SimpleResponse response) {
      messages.add(response.getResponseMessage());
    }

    @Override
    public void onError(Throwable t) {
      done.complete(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
      done.complete(Status.OK);
    }
  }
}
