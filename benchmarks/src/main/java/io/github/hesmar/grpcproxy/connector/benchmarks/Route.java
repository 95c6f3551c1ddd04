package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.grpc.ClientCall;
import io.grpc.MethodDescriptor;
import io.grpc.stub.StreamObserver;

/**
 * A way of getting a channel to the backend for each call: the arms of {@link
 * StreamLimitBenchmark}, {@link SharedChannelRoute} and {@link ConnectorRoute}.
 */
interface Route extends AutoCloseable {

  /** {@code ClientCalls::asyncUnaryCall} or {@code ClientCalls::asyncServerStreamingCall}. */
  @FunctionalInterface
  interface Invoker {
    void invoke(ClientCall<byte[], byte[]> call, byte[] request, StreamObserver<byte[]> observer);
  }

  /** Opens a route to a backend's target; a case opens one for its own backend. */
  @FunctionalInterface
  interface Factory {
    Route open(String target);
  }

  /** Starts a call of {@code method} with {@link StreamLimitBackend#REQUEST}. */
  void call(
      MethodDescriptor<byte[], byte[]> method, Invoker invoker, StreamObserver<byte[]> observer);

  /** The channels now, each with its calls in flight ({@code inFlight}: the caller's count). */
  String channels(int inFlight);

  /** The channels now, each with its queued calls and its limit; n/a without a connector. */
  String limits();

  /** The calls queued now as the connector counts them; -1 without a connector. */
  int connectorQueued();

  /** The calls queued now as this program's tracer counts them. */
  long tracerQueued();

  @Override
  void close();
}
