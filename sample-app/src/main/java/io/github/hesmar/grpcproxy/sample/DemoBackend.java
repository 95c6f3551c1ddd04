package io.github.hesmar.grpcproxy.sample;

import io.grpc.BindableService;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Deadline;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleResponse;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;

/**
 * A demo gRPC backend on loopback: the health service, server reflection (v1, and v1alpha for tools
 * that speak only that, such as grpcurl before 1.9), and {@code grpc.testing.SimpleService} with
 * all four call kinds. Every response carries the header {@code x-backend: <name>} and the trailer
 * {@code x-served-by: <name>}; the header {@code x-echo} is echoed back. {@code ServerStreamingRpc}
 * sends as many responses as the request header {@code x-count} says (default 3), respecting flow
 * control; a {@code UnaryRpc} request message {@code fail:<CODE>} fails the call with that status
 * code, and a request message {@code size:<bytes>} asks for a response message of that many bytes
 * (at most 64 MiB).
 */
public final class DemoBackend implements AutoCloseable {

  static final Metadata.Key<String> BACKEND =
      Metadata.Key.of("x-backend", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> SERVED_BY =
      Metadata.Key.of("x-served-by", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> ECHO =
      Metadata.Key.of("x-echo", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> COUNT =
      Metadata.Key.of("x-count", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> ERROR_DETAIL =
      Metadata.Key.of("x-error-detail", Metadata.ASCII_STRING_MARSHALLER);
  private static final Context.Key<Integer> RESPONSES = Context.key("x-count");

  /** The largest response a {@code size:<bytes>} request gets: 64 MiB. */
  static final int MAX_RESPONSE_SIZE = 64 * 1024 * 1024;

  private final String name;
  private final Server server;
  private final AtomicInteger cancelledCalls = new AtomicInteger();
  private final AtomicInteger calls = new AtomicInteger();
  private final AtomicInteger streamed = new AtomicInteger();
  private final AtomicInteger stalls = new AtomicInteger();
  private final AtomicReference<@Nullable Deadline> lastDeadline = new AtomicReference<>();

  private DemoBackend(String name, int port) {
    this.name = name;
    HealthStatusManager health = new HealthStatusManager();
    this.server =
        NettyServerBuilder.forAddress(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), port),
                InsecureServerCredentials.create())
            .addService(health.getHealthService())
            .addService(ProtoReflectionServiceV1.newInstance())
            .addService(reflectionV1Alpha())
            .addService(ServerInterceptors.intercept(new SimpleService(), new Headers()))
            .build();
  }

  // grpc-java deprecates v1alpha in favour of v1, served too; v1alpha is what older tools speak.
  @SuppressWarnings("deprecation")
  private static BindableService reflectionV1Alpha() {
    return ProtoReflectionService.newInstance();
  }

  /**
   * Starts a backend on the loopback interface.
   *
   * @param name the name it puts in {@code x-backend}
   * @param port the port, 0 for any free one
   * @return the started backend
   * @throws IOException if the port cannot be bound
   */
  public static DemoBackend start(String name, int port) throws IOException {
    DemoBackend backend = new DemoBackend(name, port);
    backend.server.start();
    return backend;
  }

  /**
   * Runs one demo backend in its own JVM until it is stopped (SIGTERM or Ctrl-C), for load tests
   * that keep the backend out of the proxy's process. Prints {@code DemoBackend <name> listening on
   * <target>} once it serves, and the number of SimpleService calls it received when it stops. From
   * the sample's jar:
   *
   * <pre>
   * java -cp sample-app/target/sample-app-0.1.0-SNAPSHOT.jar \
   *     -Dloader.main=io.github.hesmar.grpcproxy.sample.DemoBackend \
   *     org.springframework.boot.loader.launch.PropertiesLauncher [port] [name]
   * </pre>
   *
   * @param args the port (default 0: any free one) and the name (default {@code bench})
   * @throws IOException if the port cannot be bound
   * @throws InterruptedException if interrupted while serving
   */
  public static void main(String[] args) throws IOException, InterruptedException {
    int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
    String name = args.length > 1 ? args[1] : "bench";
    DemoBackend backend = start(name, port);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    backend.close();
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                  System.out.println(
                      "DemoBackend " + name + " stopped after " + backend.calls() + " calls");
                }));
    System.out.println("DemoBackend " + name + " listening on " + backend.target());
    backend.server.awaitTermination();
  }

  /** Returns the backend's name. */
  public String name() {
    return name;
  }

  /** Returns a gRPC target for this backend, such as {@code 127.0.0.1:41234}. */
  public String target() {
    return InetAddress.getLoopbackAddress().getHostAddress() + ":" + server.getPort();
  }

  /** Returns how many calls this backend saw cancelled. */
  public int cancelledCalls() {
    return cancelledCalls.get();
  }

  /** Returns how many SimpleService calls this backend received. */
  public int calls() {
    return calls.get();
  }

  /** Returns how many ServerStreamingRpc responses this backend has sent. */
  public int streamedResponses() {
    return streamed.get();
  }

  /** Returns how often a ServerStreamingRpc stream had to wait for its reader (flow control). */
  public int flowControlStalls() {
    return stalls.get();
  }

  /** Returns the deadline of the last SimpleService call, if it had one. */
  public @Nullable Deadline lastDeadline() {
    return lastDeadline.get();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdown();
    if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
      server.shutdownNow();
    }
  }

  @Override
  public String toString() {
    return "DemoBackend{" + name + " at " + target() + "}";
  }

  /** Adds the backend's headers and trailers, and records deadlines and cancellations. */
  private final class Headers implements ServerInterceptor {
    @Override
    public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
        ServerCall<ReqT, RespT> call,
        Metadata requestHeaders,
        ServerCallHandler<ReqT, RespT> next) {
      calls.incrementAndGet();
      lastDeadline.set(Context.current().getDeadline());
      String echo = requestHeaders.get(ECHO);
      int responses = parseCount(requestHeaders.get(COUNT));
      ServerCall<ReqT, RespT> tagged =
          new SimpleForwardingServerCall<>(call) {
            @Override
            public void sendHeaders(Metadata headers) {
              headers.put(BACKEND, name);
              if (echo != null) {
                headers.put(ECHO, echo);
              }
              super.sendHeaders(headers);
            }

            @Override
            public void close(Status status, Metadata trailers) {
              trailers.put(SERVED_BY, name);
              super.close(status, trailers);
            }
          };
      Context context = Context.current().withValue(RESPONSES, responses);
      ServerCall.Listener<ReqT> listener =
          Contexts.interceptCall(context, tagged, requestHeaders, next);
      return new SimpleForwardingServerCallListener<>(listener) {
        @Override
        public void onCancel() {
          cancelledCalls.incrementAndGet();
          super.onCancel();
        }
      };
    }

    private int parseCount(@Nullable String count) {
      if (count == null) {
        return 3;
      }
      try {
        return Math.max(0, Integer.parseInt(count.trim()));
      } catch (NumberFormatException e) {
        return 3;
      }
    }
  }

  private final class SimpleService extends SimpleServiceGrpc.SimpleServiceImplBase {

    private SimpleResponse reply(String message) {
      return SimpleResponse.newBuilder().setResponseMessage(name + ": " + message).build();
    }

    @Override
    public void unaryRpc(SimpleRequest request, StreamObserver<SimpleResponse> responses) {
      String message = request.getRequestMessage();
      if (message.startsWith("fail:")) {
        Status.Code code;
        try {
          code = Status.Code.valueOf(message.substring("fail:".length()));
        } catch (IllegalArgumentException e) {
          code = Status.Code.UNKNOWN;
        }
        Metadata trailers = new Metadata();
        trailers.put(ERROR_DETAIL, "failed on request by " + name);
        responses.onError(
            code.toStatus()
                .withDescription(name + " failed as asked")
                .asRuntimeException(trailers));
        return;
      }
      if (message.startsWith("size:")) {
        int size;
        try {
          size = Integer.parseInt(message.substring("size:".length()).trim());
        } catch (NumberFormatException e) {
          size = -1;
        }
        if (size < 0 || size > MAX_RESPONSE_SIZE) {
          responses.onError(
              Status.INVALID_ARGUMENT
                  .withDescription("size:<bytes> wants a number from 0 to " + MAX_RESPONSE_SIZE)
                  .asException());
          return;
        }
        responses.onNext(SimpleResponse.newBuilder().setResponseMessage("x".repeat(size)).build());
        responses.onCompleted();
        return;
      }
      responses.onNext(reply(message));
      responses.onCompleted();
    }

    @Override
    public void serverStreamingRpc(SimpleRequest request, StreamObserver<SimpleResponse> observer) {
      ServerCallStreamObserver<SimpleResponse> responses =
          (ServerCallStreamObserver<SimpleResponse>) observer;
      int total = RESPONSES.get();
      int[] sent = {0};
      boolean[] done = {false};
      // Sends only while the transport is ready, so a slow reader slows this stream down. The
      // handlers run one at a time on the call's executor.
      Runnable drain =
          () -> {
            while (!done[0] && responses.isReady() && !responses.isCancelled() && sent[0] < total) {
              sent[0]++;
              streamed.incrementAndGet();
              responses.onNext(reply(request.getRequestMessage() + " #" + sent[0]));
            }
            if (!done[0] && sent[0] < total && !responses.isReady()) {
              stalls.incrementAndGet();
            }
            if (!done[0] && sent[0] == total && !responses.isCancelled()) {
              done[0] = true;
              responses.onCompleted();
            }
          };
      responses.setOnCancelHandler(() -> {});
      responses.setOnReadyHandler(drain);
      drain.run();
    }

    @Override
    public StreamObserver<SimpleRequest> clientStreamingRpc(
        StreamObserver<SimpleResponse> responses) {
      return new StreamObserver<>() {
        int received;

        @Override
        public void onNext(SimpleRequest request) {
          received++;
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          responses.onNext(reply("received " + received));
          responses.onCompleted();
        }
      };
    }

    @Override
    public StreamObserver<SimpleRequest> bidiStreamingRpc(
        StreamObserver<SimpleResponse> responses) {
      return new StreamObserver<>() {
        @Override
        public void onNext(SimpleRequest request) {
          responses.onNext(reply(request.getRequestMessage()));
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          responses.onCompleted();
        }
      };
    }
  }
}
