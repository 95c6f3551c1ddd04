package io.github.hesmar.grpcproxy.connector;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;

/**
 * A channel created by {@link TrackingDialer}: counts how often it is shut down, and forwards to a
 * real channel when it has one. Without one it is a bare fake, for the model, Lincheck and stress
 * tests: its calls are {@link FakeCall}s that the test ends by hand, it records how many of them
 * were in flight when it was shut down, {@code shutdownNow()} cancels them, and it terminates once
 * shut down with no call in flight or, if it {@code lingers}, only when forced with {@code
 * shutdownNow()}, as a channel with real calls in flight may.
 */
final class TrackedChannel extends ManagedChannel {

  final String address;
  final int serial;
  private final @Nullable ManagedChannel delegate;
  private final boolean lingers;
  final AtomicInteger shutdowns = new AtomicInteger();
  final AtomicInteger shutdownNows = new AtomicInteger();

  /**
   * Calls of {@link #enterIdle()}: a silent first channel with extra channels drops its connection.
   */
  final AtomicInteger enterIdles = new AtomicInteger();

  /** The fake calls started on this channel and not closed yet. */
  final Set<FakeCall<?, ?>> callsInFlight = ConcurrentHashMap.newKeySet();

  /** Fake calls in flight when {@link #shutdown()} was first called; -1 before. */
  final AtomicInteger callsAtShutdown = new AtomicInteger(-1);

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
    shutdown = true; // before counting the calls: see FakeCall.start
    callsAtShutdown.compareAndSet(-1, callsInFlight.size());
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
    for (FakeCall<?, ?> call : callsInFlight) {
      call.close(FakeCall.SHUT_DOWN_NOW);
    }
    return this;
  }

  @Override
  public void enterIdle() {
    enterIdles.incrementAndGet();
    if (delegate != null) {
      delegate.enterIdle();
    }
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
    return lingers ? shutdownNows.get() > 0 : shutdown && callsInFlight.isEmpty();
  }

  /** A fake returns at once: whether it is terminated. */
  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    return delegate == null ? isTerminated() : delegate.awaitTermination(timeout, unit);
  }

  @Override
  public <ReqT, RespT> ClientCall<ReqT, RespT> newCall(
      MethodDescriptor<ReqT, RespT> method, CallOptions options) {
    if (delegate != null) {
      return delegate.newCall(method, options);
    }
    FakeCall<ReqT, RespT> call = new FakeCall<>(this, options.getOption(FakeCall.FAIL_START));
    Consumer<FakeCall<?, ?>> made = options.getOption(FakeCall.MADE);
    if (made != null) {
      made.accept(call);
    }
    return call;
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

  /**
   * Forwards to the real channel; a bare fake never changes state but by its shutdown, which no one
   * needs to hear of (the connector reads the state itself when it lists its channels).
   */
  @Override
  public void notifyWhenStateChanged(ConnectivityState source, Runnable callback) {
    if (delegate != null) {
      delegate.notifyWhenStateChanged(source, callback);
    }
  }

  @Override
  public String toString() {
    return "TrackedChannel{" + address + "#" + serial + ", shutdowns=" + shutdowns + "}";
  }
}
