package io.github.hesmar.grpcproxy.connector;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * A lease on a channel cached by a {@link CachingConnector}: a {@link ManagedChannel} view of the
 * cached channel that, instead of shutting the channel down, gives the lease back.
 *
 * <p>{@link #close()}, {@link #shutdown()} and {@link #shutdownNow()} all release the lease, as
 * {@link CachingConnector#release(String, ManagedChannel)} does; a lease is released at most once,
 * and later releases are no-ops. Use it in try-with-resources:
 *
 * <pre>{@code
 * try (LeasedChannel channel = connector.dial("dns:///backend.example:443")) {
 *   HealthGrpc.newBlockingStub(channel).check(request);
 * }
 * }</pre>
 *
 * <p>A released lease refuses new calls with {@link IllegalStateException}; calls started before
 * the release run to completion. {@link #isShutdown()} and {@link #isTerminated()} tell whether the
 * lease was released, not the state of the cached channel, which {@link #getState(boolean)}
 * reports.
 *
 * <p>Thread-safe: a lease may be used and released from any thread.
 */
public final class LeasedChannel extends ManagedChannel implements AutoCloseable {

  private static final VarHandle RELEASED;

  static {
    try {
      RELEASED =
          MethodHandles.lookup().findVarHandle(LeasedChannel.class, "released", boolean.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private final CachingConnector connector;
  final CachingConnector.Entry entry;

  /** Where this lease is counted: a cell of the entry, or {@link CachingConnector#BASE}. */
  final int slot;

  private final ManagedChannel channel;
  final CachingConnector.@Nullable LeakWatch leakWatch;

  @SuppressWarnings("unused") // written through RELEASED
  private volatile boolean released;

  LeasedChannel(
      CachingConnector connector,
      CachingConnector.Entry entry,
      int slot,
      CachingConnector.@Nullable LeakWatch leakWatch) {
    this.connector = connector;
    this.entry = entry;
    this.slot = slot;
    this.channel = entry.channel();
    this.leakWatch = leakWatch;
  }

  /**
   * Returns the address this lease was dialed for.
   *
   * @return the address given to {@link CachingConnector#dial(String)}
   */
  public String address() {
    return entry.address;
  }

  boolean belongsTo(CachingConnector connector) {
    return this.connector == connector;
  }

  /** Marks this lease released; returns whether this call did it (false if already released). */
  boolean markReleased() {
    return RELEASED.compareAndSet(this, false, true);
  }

  /**
   * Releases the lease, as {@link CachingConnector#release(String, ManagedChannel)} does. The
   * cached channel stays open for other leases.
   */
  @Override
  public void close() {
    connector.release(this);
  }

  /**
   * Releases the lease; the cached channel is not shut down.
   *
   * @return this
   */
  @Override
  public LeasedChannel shutdown() {
    connector.release(this);
    return this;
  }

  /**
   * Releases the lease, as {@link #shutdown()} does: calls already started are not cancelled, since
   * the cached channel is shared.
   *
   * @return this
   */
  @Override
  public LeasedChannel shutdownNow() {
    connector.release(this);
    return this;
  }

  /** Returns whether this lease was released. */
  @Override
  public boolean isShutdown() {
    return released;
  }

  /** Returns whether this lease was released; a lease has nothing to wait for once released. */
  @Override
  public boolean isTerminated() {
    return released;
  }

  /** Returns at once whether this lease was released: there is nothing to wait for. */
  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) {
    return released;
  }

  /**
   * Starts a call on the cached channel.
   *
   * @throws IllegalStateException if this lease was released
   */
  @Override
  public <RequestT, ResponseT> ClientCall<RequestT, ResponseT> newCall(
      MethodDescriptor<RequestT, ResponseT> methodDescriptor, CallOptions callOptions) {
    if (released) {
      throw new IllegalStateException(
          "The lease on "
              + entry.address
              + " was released; dial the CachingConnector again for a new lease");
    }
    return channel.newCall(methodDescriptor, callOptions);
  }

  @Override
  public String authority() {
    return channel.authority();
  }

  /** Returns the state of the cached channel. */
  @Override
  public ConnectivityState getState(boolean requestConnection) {
    return channel.getState(requestConnection);
  }

  @Override
  public void notifyWhenStateChanged(ConnectivityState source, Runnable callback) {
    channel.notifyWhenStateChanged(source, callback);
  }

  @Override
  public void resetConnectBackoff() {
    channel.resetConnectBackoff();
  }

  @Override
  public void enterIdle() {
    channel.enterIdle();
  }

  @Override
  public String toString() {
    return "LeasedChannel{address=" + entry.address + ", released=" + released + "}";
  }
}
