package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * The least a {@link ManagedChannel} can be: a shutdown flag and an authority. Its calls go
 * nowhere: a {@link HeldCall} is in flight from its start until {@link HeldCall#end()}. Benchmarks
 * use it wherever the cost of the cache, not of a transport, is measured.
 *
 * <p>Thread-safe.
 */
final class FakeChannel extends ManagedChannel {

  private final String authority;
  private final boolean immortal;
  private volatile boolean shutdown;
  private volatile @Nullable HeldCall<?, ?> lastCall;

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
    HeldCall<RequestT, ResponseT> call = new HeldCall<>();
    lastCall = call;
    return call;
  }

  /** The call made last on this channel. */
  HeldCall<?, ?> lastCall() {
    HeldCall<?, ?> call = lastCall;
    if (call == null) {
      throw new IllegalStateException("no call was made on " + authority);
    }
    return call;
  }

  /** A call that stays in flight until {@link #end()} closes its listener. Not thread-safe. */
  static final class HeldCall<RequestT, ResponseT> extends ClientCall<RequestT, ResponseT> {

    private @Nullable Listener<ResponseT> listener;

    @Override
    public void start(Listener<ResponseT> responseListener, Metadata headers) {
      this.listener = responseListener;
    }

    /** Ends the call: its listener is closed with OK. */
    void end() {
      Listener<ResponseT> started = listener;
      if (started != null) {
        listener = null;
        started.onClose(Status.OK, new Metadata());
      }
    }

    @Override
    public void request(int numMessages) {}

    @Override
    public void cancel(@Nullable String message, @Nullable Throwable cause) {}

    @Override
    public void halfClose() {}

    @Override
    public void sendMessage(RequestT message) {}
  }

  @Override
  public String authority() {
    return authority;
  }
}
