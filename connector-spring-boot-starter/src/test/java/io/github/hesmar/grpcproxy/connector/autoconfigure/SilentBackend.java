package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.awaitility.Awaitility.await;

import io.grpc.Channel;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

/**
 * A real gRPC server (Netty, plaintext) on a loopback port that takes every call and never answers
 * it: no headers, no message, no trailers. Its connections are READY and silent, as behind a
 * dropped NAT entry or a frozen backend. It serves {@code grpc.health.v1.Health}: the connector's
 * probe calls {@code Check}, the tests call {@code Watch}. It records the method of each call in
 * the order the calls' streams arrived on the transport, and the deadline each {@code Check} came
 * with.
 */
final class SilentBackend implements AutoCloseable {

  static final String CHECK = "grpc.health.v1.Health/Check";
  static final String WATCH = "grpc.health.v1.Health/Watch";

  /** The methods of the calls received, in the order their streams arrived. */
  final Queue<String> methods = new ConcurrentLinkedQueue<>();

  /** The time each {@code Check} had left when it reached its handler. */
  final Queue<Duration> checkDeadlines = new ConcurrentLinkedQueue<>();

  private final Server server;

  private SilentBackend() {
    ServerStreamTracer.Factory recorder =
        new ServerStreamTracer.Factory() {
          @Override
          public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
            // Called on the transport's thread as each stream arrives: in the order sent.
            methods.add(fullMethodName);
            return new ServerStreamTracer() {};
          }
        };
    HealthGrpc.HealthImplBase silent =
        new HealthGrpc.HealthImplBase() {
          @Override
          public void check(
              HealthCheckRequest request, StreamObserver<HealthCheckResponse> responses) {
            Deadline deadline = Context.current().getDeadline();
            if (deadline != null) {
              checkDeadlines.add(Duration.ofNanos(deadline.timeRemaining(TimeUnit.NANOSECONDS)));
            }
          }

          @Override
          public void watch(
              HealthCheckRequest request, StreamObserver<HealthCheckResponse> responses) {}
        };
    try {
      this.server =
          NettyServerBuilder.forPort(0, InsecureServerCredentials.create())
              .addStreamTracerFactory(recorder)
              .addService(silent)
              .build()
              .start();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static SilentBackend start() {
    return new SilentBackend();
  }

  /** A target address of this server, for example {@code localhost:54321}. */
  String address() {
    return "localhost:" + server.getPort();
  }

  /** The methods of the calls received so far, in order. */
  List<String> methods() {
    return List.copyOf(methods);
  }

  /**
   * Connects {@code channel} and waits until it is READY, so that the calls made on it next reach
   * the backend rather than fail while the channel connects.
   */
  static void connect(ManagedChannel channel) {
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> channel.getState(/* requestConnection= */ true) == ConnectivityState.READY);
  }

  /**
   * Makes a {@code Watch} call over {@code channel} with a deadline of 100 ms, which it runs into:
   * a failed call, as the connector counts them.
   */
  static void unansweredWatch(Channel channel) {
    Iterator<HealthCheckResponse> responses =
        HealthGrpc.newBlockingStub(channel)
            .withDeadlineAfter(100, TimeUnit.MILLISECONDS)
            .watch(HealthCheckRequest.getDefaultInstance());
    Throwable failure = catchThrowable(responses::hasNext);
    assertThat(failure).isInstanceOf(StatusRuntimeException.class);
    assertThat(((StatusRuntimeException) failure).getStatus().getCode())
        .isEqualTo(Status.Code.DEADLINE_EXCEEDED);
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow();
    server.awaitTermination(5, TimeUnit.SECONDS);
  }
}
