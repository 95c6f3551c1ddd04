package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import java.util.concurrent.TimeUnit;

/**
 * The least a {@link ManagedChannel} can be: a shutdown flag and an authority. It carries no calls;
 * benchmarks use it wherever the cost of the cache, not of a transport, is measured.
 *
 * <p>Thread-safe.
 */
final class FakeChannel extends ManagedChannel {

  private final String authority;
  private final boolean immortal;
  private volatile boolean shutdown;

  private FakeChannel(String authority, boolean immortal) {
    this.authority = authority;
    this.immortal = immortal;
  }

  /** A channel that shuts down when asked to, as every real channel does. */
  static FakeChannel create(String authority) {
    return new FakeChannel(authority, /* immortal= */ false);
  }

  /**
   * A channel that ignores shutdown, so that one prebuilt instance can be handed out again after
   * the connector closed it (a connector never leases a channel it finds shut down).
   */
  static FakeChannel immortal(String authority) {
    return new FakeChannel(authority, /* immortal= */ true);
  }

  @Override
  public ManagedChannel shutdown() {
    if (!immortal) {
      shutdown = true;
    }
    return this;
  }

  @Override
  public ManagedChannel shutdownNow() {
    return shutdown();
  }

  @Override
  public boolean isShutdown() {
    return shutdown;
  }

  @Override
  public boolean isTerminated() {
    return shutdown;
  }

  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) {
    return shutdown;
  }

  @Override
  public ConnectivityState getState(boolean requestConnection) {
    return shutdown ? ConnectivityState.SHUTDOWN : ConnectivityState.IDLE;
  }

  @Override
  public <RequestT, ResponseT> ClientCall<RequestT, ResponseT> newCall(
      MethodDescriptor<RequestT, ResponseT> method, CallOptions options) {
    throw new UnsupportedOperationException("a FakeChannel carries no calls");
  }

  @Override
  public String authority() {
    return authority;
  }
}
