package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.grpc.CallOptions;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.TimeUnit;

/** One channel, built once, shared by all calls: arm (a) of {@link StreamLimitBenchmark}. */
final class SharedChannelRoute implements Route {

  private final ManagedChannel channel;
  private final QueueCounter queue = new QueueCounter();
  private final CallOptions options = CallOptions.DEFAULT.withStreamTracerFactory(queue);

  SharedChannelRoute(String target) {
    channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
  }

  @Override
  public void call(
      MethodDescriptor<byte[], byte[]> method, Invoker invoker, StreamObserver<byte[]> observer) {
    invoker.invoke(channel.newCall(method, options), StreamLimitBackend.REQUEST, observer);
  }

  @Override
  public String channels(int inFlight) {
    return "1: " + inFlight;
  }

  @Override
  public String limits() {
    return "n/a";
  }

  @Override
  public int connectorQueued() {
    return -1;
  }

  @Override
  public long tracerQueued() {
    return queue.queued();
  }

  @Override
  public void close() {
    try {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
