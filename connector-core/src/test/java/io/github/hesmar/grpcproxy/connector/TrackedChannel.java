package io.github.hesmar.grpcproxy.connector;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;

/**
 * A channel created by {@link TrackingDialer}: counts how often it is shut down, and forwards to a
 * real channel when it has one (without one it is a bare fake, for Lincheck and the stress test,
 * which terminates when shut down or, if it {@code lingers}, only when forced with {@code
 * shutdownNow()}, as a channel with calls in flight does).
 */
final class TrackedChannel extends ManagedChannel {

  final String address;
  final int serial;
  private final @Nullable ManagedChannel delegate;
  private final boolean lingers;
  final AtomicInteger shutdowns = new AtomicInteger();
  final AtomicInteger shutdownNows = new AtomicInteger();
  private volatile boolean shutdown;

  TrackedChannel(String address, int serial, @Nullable ManagedChannel delegate, boolean lingers) {
    this.address = address;
    this.serial = serial;
    this.delegate = delegate;
    this.lingers = lingers;
  }

  @Override
  public ManagedChannel shutdown() {
    shutdowns.incrementAndGet();
    shutdown = true;
    if (delegate != null) {
      delegate.shutdown();
    }
    return this;
  }

  @Override
  public ManagedChannel shutdownNow() {
    shutdownNows.incrementAndGet();
    shutdown = true;
    if (delegate != null) {
      delegate.shutdownNow();
    }
    return this;
  }

  @Override
  public boolean isShutdown() {
    return shutdown;
  }

  @Override
  public boolean isTerminated() {
    if (delegate != null) {
      return delegate.isTerminated();
    }
    return lingers ? shutdownNows.get() > 0 : shutdown;
  }

  /** A fake returns at once: whether it is terminated. */
  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    return delegate == null ? isTerminated() : delegate.awaitTermination(timeout, unit);
  }

  @Override
  public <ReqT, RespT> ClientCall<ReqT, RespT> newCall(
      MethodDescriptor<ReqT, RespT> method, CallOptions options) {
    if (delegate == null) {
      throw new UnsupportedOperationException("a fake channel carries no calls");
    }
    return delegate.newCall(method, options);
  }

  @Override
  public String authority() {
    return delegate == null ? address : delegate.authority();
  }

  @Override
  public ConnectivityState getState(boolean requestConnection) {
    if (delegate == null) {
      return shutdown ? ConnectivityState.SHUTDOWN : ConnectivityState.IDLE;
    }
    return delegate.getState(requestConnection);
  }

  @Override
  public String toString() {
    return "TrackedChannel{" + address + "#" + serial + ", shutdowns=" + shutdowns + "}";
  }
}
