package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.grpc.InsecureServerCredentials;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The loopback backend of {@link StreamLimitBenchmark}: 100 (or --backend-limit) streams per
 * connection, {@code Delayed} and {@code Hold}, and a count of their calls running at once.
 */
final class StreamLimitBackend implements AutoCloseable {

  /** How long the backend takes to answer a unary call, unless the third number says. */
  static final long DEFAULT_DELAY_MILLIS = 20;

  private static final String SERVICE = "bench.StreamLimit";

  /** What every call sends; the backend sends it back. */
  static final byte[] REQUEST = new byte[16];

  static final MethodDescriptor<byte[], byte[]> DELAYED =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "Delayed"))
          .setRequestMarshaller(BytesMarshaller.INSTANCE)
          .setResponseMarshaller(BytesMarshaller.INSTANCE)
          .build();

  static final MethodDescriptor<byte[], byte[]> HOLD =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.SERVER_STREAMING)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "Hold"))
          .setRequestMarshaller(BytesMarshaller.INSTANCE)
          .setResponseMarshaller(BytesMarshaller.INSTANCE)
          .build();

  /** How long {@code Delayed} takes to answer. */
  private final long delayMillis;

  private final ScheduledExecutorService scheduler;
  private final Server server;

  /** The {@code Hold} streams running: started, not yet ended or cancelled. */
  private final Set<ServerCallStreamObserver<byte[]>> held = ConcurrentHashMap.newKeySet();

  /** Calls running: {@code Delayed} calls not yet answered, {@code Hold} streams held. */
  private final AtomicInteger running = new AtomicInteger();

  /** The most calls running at once, since the start or {@link #resetMaxRunning()}. */
  private final AtomicInteger maxRunning = new AtomicInteger();

  private volatile boolean ending;

  private StreamLimitBackend(long delayMillis, int maxStreams) throws IOException {
    this.delayMillis = delayMillis;
    scheduler =
        Executors.newScheduledThreadPool(
            1,
            task -> {
              Thread thread = new Thread(task, "backend-delay");
              thread.setDaemon(true);
              return thread;
            });
    ServerServiceDefinition service =
        ServerServiceDefinition.builder(SERVICE)
            .addMethod(DELAYED, ServerCalls.asyncUnaryCall(this::delayed))
            .addMethod(HOLD, ServerCalls.asyncServerStreamingCall(this::hold))
            .build();
    server =
        NettyServerBuilder.forPort(0, InsecureServerCredentials.create())
            .maxConcurrentCallsPerConnection(maxStreams)
            // The handlers never block: they run on the event loops, so the backend costs the
            // least CPU it can, which the client sharing the cores gets.
            .directExecutor()
            .addService(service)
            .build()
            .start();
  }

  static StreamLimitBackend start(long delayMillis, int maxStreams) throws IOException {
    return new StreamLimitBackend(delayMillis, maxStreams);
  }

  String target() {
    return "localhost:" + server.getPort();
  }

  int running() {
    return running.get();
  }

  int maxRunning() {
    return maxRunning.get();
  }

  /** Starts counting the most calls running at once from the calls running now. */
  void resetMaxRunning() {
    maxRunning.set(running.get());
  }

  @SuppressWarnings("FutureReturnValueIgnored") // the task completes the call; nothing to await
  private void delayed(byte[] request, StreamObserver<byte[]> observer) {
    maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
    scheduler.schedule(
        () -> {
          running.decrementAndGet();
          observer.onNext(request);
          observer.onCompleted();
        },
        delayMillis,
        TimeUnit.MILLISECONDS);
  }

  private void hold(byte[] request, StreamObserver<byte[]> observer) {
    ServerCallStreamObserver<byte[]> stream = (ServerCallStreamObserver<byte[]>) observer;
    stream.setOnCancelHandler(() -> forget(stream));
    stream.onNext(request);
    held.add(stream);
    maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
    if (ending) { // read after the add: endStreams() either sees this stream or it sees ending
      end(stream);
    }
  }

  /** Ends every held stream, and from now on every stream once it has sent its message. */
  void endStreams() {
    ending = true;
    for (ServerCallStreamObserver<byte[]> stream : held) {
      end(stream);
    }
  }

  private void end(ServerCallStreamObserver<byte[]> stream) {
    if (forget(stream)) {
      stream.onCompleted();
    }
  }

  private boolean forget(ServerCallStreamObserver<byte[]> stream) {
    if (held.remove(stream)) {
      running.decrementAndGet();
      return true;
    }
    return false;
  }

  @Override
  public void close() {
    scheduler.shutdownNow();
    try {
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
