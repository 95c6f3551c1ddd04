package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

/** A real gRPC server (Netty, plaintext) on a loopback port, serving the health service. */
final class LoopbackBackend implements AutoCloseable {

  private final Server server;

  private LoopbackBackend(Server server) {
    this.server = server;
  }

  static LoopbackBackend start() {
    return start(Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()));
  }

  /**
   * Starts a backend whose connections carry at most {@code maxConcurrentStreams} calls at once
   * (HTTP/2 MAX_CONCURRENT_STREAMS): a client's further calls on a connection queue in its
   * transport until one of them ends.
   */
  static LoopbackBackend withStreamLimit(int maxConcurrentStreams) {
    return start(
        NettyServerBuilder.forPort(0, InsecureServerCredentials.create())
            .maxConcurrentCallsPerConnection(maxConcurrentStreams));
  }

  private static LoopbackBackend start(ServerBuilder<?> builder) {
    try {
      return new LoopbackBackend(
          builder.addService(new HealthStatusManager().getHealthService()).build().start());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The server's port on loopback. */
  int port() {
    return server.getPort();
  }

  /** A target address of this server, for example {@code localhost:54321}. */
  String address() {
    return "localhost:" + port();
  }

  /**
   * The same server as a {@code dns:///} target, whose address contains {@code :} and {@code /}.
   */
  String dnsAddress() {
    return "dns:///" + address();
  }

  /** Makes a real health check call over {@code channel}. */
  static HealthCheckResponse.ServingStatus check(Channel channel) {
    return HealthGrpc.newBlockingStub(channel)
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance())
        .getStatus();
  }

  /**
   * Dials {@code address}, makes a health check over the lease, releases it, and waits until the
   * check's call has ended, so that the channel is idle.
   */
  static void checkAndRelease(CachingConnector connector, String address) {
    try (LeasedChannel lease = connector.dial(address)) {
      assertThat(check(lease)).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> connector.callCount() == 0);
  }

  /**
   * Starts a health {@code Watch} over {@code channel}: a real server-streaming call that stays
   * open until the returned watch is closed, which cancels it.
   */
  static Watch watch(Channel channel) {
    return watch(HealthGrpc.newStub(channel));
  }

  /**
   * Starts a health {@code Watch} over {@code channel} that waits for the channel to be ready: a
   * call that stays in flight, even on a channel that cannot connect, until the returned watch is
   * closed, which cancels it.
   */
  static Watch watchWaitingForReady(Channel channel) {
    return watch(HealthGrpc.newStub(channel).withWaitForReady());
  }

  private static Watch watch(HealthGrpc.HealthStub stub) {
    Watch watch = new Watch(Context.current().withCancellation());
    watch.context.run(() -> stub.watch(HealthCheckRequest.getDefaultInstance(), watch));
    return watch;
  }

  /** A health {@code Watch} call; {@link #close()} cancels it. */
  static final class Watch implements StreamObserver<HealthCheckResponse>, AutoCloseable {

    private final Context.CancellableContext context;

    /** The statuses the server sent, in order. */
    final Queue<HealthCheckResponse.ServingStatus> statuses = new ConcurrentLinkedQueue<>();

    private Watch(Context.CancellableContext context) {
      this.context = context;
    }

    @Override
    public void onNext(HealthCheckResponse response) {
      statuses.add(response.getStatus());
    }

    @Override
    public void onError(Throwable t) {}

    @Override
    public void onCompleted() {}

    @Override
    public void close() {
      context.cancel(null);
    }
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow();
    server.awaitTermination(5, TimeUnit.SECONDS);
  }
}
