package io.github.hesmar.grpcproxy.connector;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
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
 * <p>Calls hold the channel: a call made by {@link #newCall} is counted from its {@code start()}
 * until its listener's {@code onClose} (or until {@code start()} throws), and while a call runs,
 * expiry and {@link CachingConnector#closeOnRelease(String)} leave its channel open, even after the
 * lease was released. So an asynchronous call started inside try-with-resources runs to its end;
 * only {@link CachingConnector#close()} cancels it, after its shutdown grace period.
 *
 * <p>A released lease refuses new calls with {@link IllegalStateException}, and so do the methods
 * that would act on the shared channel for all its users ({@link #enterIdle()}, {@link
 * #resetConnectBackoff()}, {@link #getState(boolean) getState(true)}). {@link #isShutdown()} tells
 * whether the lease was released, {@link #isTerminated()} whether it was released and its calls
 * ended, which {@link #awaitTermination} waits for; none of them tells the state of the cached
 * channel, which {@link #getState(boolean) getState(false)} reports.
 *
 * <p>Thread-safe: a lease may be used and released from any thread.
 */
public final class LeasedChannel extends ManagedChannel implements AutoCloseable {

  /*
   * The lease word: RELEASED, and the calls started on this lease and not yet ended. One word, so
   * that each change knows whether this lease covers the call it starts or ends: a held lease
   * counts once in its channel's load, for its leasing and for one call; every other call in
   * flight counts as uncovered (Entry.addUncovered). A call starting on a held lease with no call
   * is covered (no change); a call ending on a held lease with one call was covered (no change);
   * any other start or end adds or takes one uncovered call; releasing a lease with calls makes one
   * of them uncovered, before the lease stops counting. docs/design.md, "Load counted at the pick".
   */
  private static final VarHandle WORD;

  private static final int RELEASED = 1 << 31;

  static {
    try {
      WORD = MethodHandles.lookup().findVarHandle(LeasedChannel.class, "word", int.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private final CachingConnector connector;
  final Entry entry;

  /** Where this lease is counted: a cell of the entry, or {@link Entry#BASE}. */
  final int slot;

  private final ManagedChannel channel;
  final LeakDetector.@Nullable Watch leakWatch;

  /** {@link #RELEASED}, plus the calls started on this lease and not yet ended. */
  @SuppressWarnings("unused") // changed through WORD
  private volatile int word;

  /**
   * Set once a thread waits in {@link #awaitTermination}: then ends notify this lease's monitor.
   */
  private volatile boolean awaited;

  LeasedChannel(
      CachingConnector connector, Entry entry, int slot, LeakDetector.@Nullable Watch leakWatch) {
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

  /**
   * Marks this lease released; returns whether this call did it (false if already released). The
   * caller then gives the lease back to its channel.
   */
  boolean markReleased() {
    int before = (int) WORD.getAndBitwiseOr(this, RELEASED);
    if ((before & RELEASED) != 0) {
      return false;
    }
    if (before != 0) {
      entry.addUncovered(1); // one of its calls was covered by the lease
    }
    signalIfAwaited();
    return true;
  }

  private boolean released() {
    return (word & RELEASED) != 0;
  }

  /**
   * Releases the lease, as {@link CachingConnector#release(String, ManagedChannel)} does. The
   * cached channel stays open for other leases, and for the calls this lease started.
   */
  @Override
  public void close() {
    connector.release(this);
  }

  /**
   * Releases the lease; the cached channel is not shut down, and calls already started go on.
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
    return released();
  }

  /** Returns whether this lease was released and every call it started has ended. */
  @Override
  public boolean isTerminated() {
    return word == RELEASED;
  }

  /**
   * Waits until this lease is released and every call it started has ended, or the timeout passes.
   *
   * @return whether the lease was released and its calls ended
   * @throws InterruptedException if interrupted while waiting
   */
  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    if (isTerminated() || timeout <= 0) {
      return isTerminated();
    }
    long deadline = Nanos.deadlineAfter(System.nanoTime(), unit.toNanos(timeout));
    synchronized (this) {
      awaited = true; // before the check below: an end after it sees this and notifies
      while (!isTerminated()) {
        long remaining = deadline == Long.MAX_VALUE ? Long.MAX_VALUE : deadline - System.nanoTime();
        if (remaining <= 0) {
          return false;
        }
        TimeUnit.NANOSECONDS.timedWait(this, remaining);
      }
      return true;
    }
  }

  private void signalIfAwaited() {
    if (awaited) {
      synchronized (this) {
        notifyAll();
      }
    }
  }

  /**
   * Makes a call on the cached channel that holds the channel from its {@code start()} until its
   * listener's {@code onClose}. The call carries the connector's stream tracer, after the tracers
   * in {@code callOptions}, which tells the connector when its headers wait in the transport
   * ({@link ConnectionInfo#queued()}) and whether the connection is silent. A call made while the
   * channel is in TRANSIENT_FAILURE makes it try to connect now (at most once a second).
   *
   * @throws IllegalStateException if this lease was released
   */
  @Override
  public <RequestT, ResponseT> ClientCall<RequestT, ResponseT> newCall(
      MethodDescriptor<RequestT, ResponseT> methodDescriptor, CallOptions callOptions) {
    checkHeld("newCall");
    entry.health.callStarting();
    CallOptions traced = callOptions.withStreamTracerFactory(entry.streams);
    return new CountedCall<>(this, channel.newCall(methodDescriptor, traced));
  }

  /** Counts a call starting on this lease; returns whether its channel counted it. */
  boolean callStarted() {
    if ((int) WORD.getAndAdd(this, 1) != 0) {
      entry.addUncovered(1); // not the one call a held lease covers
    }
    return entry.startCall();
  }

  /** Ends a call counted by {@link #callStarted()}. */
  void callEnded(boolean countedByChannel) {
    if (countedByChannel) {
      entry.endCall();
    }
    int before = (int) WORD.getAndAdd(this, -1);
    if (before != 1) {
      entry.addUncovered(-1); // not the one call a held lease covered
    }
    if (before == (RELEASED | 1)) {
      signalIfAwaited();
    }
  }

  private void checkHeld(String method) {
    if (released()) {
      throw new IllegalStateException(
          method
              + " on a released lease: the lease on "
              + entry.address
              + " was released; dial the CachingConnector again for a new lease");
    }
  }

  @Override
  public String authority() {
    return channel.authority();
  }

  /**
   * Returns the state of the cached channel.
   *
   * @throws IllegalStateException if {@code requestConnection} is true and this lease was released
   */
  @Override
  public ConnectivityState getState(boolean requestConnection) {
    if (requestConnection) {
      checkHeld("getState(true)");
    }
    return channel.getState(requestConnection);
  }

  @Override
  public void notifyWhenStateChanged(ConnectivityState source, Runnable callback) {
    channel.notifyWhenStateChanged(source, callback);
  }

  /**
   * Resets the connect backoff of the cached channel, for all its users.
   *
   * @throws IllegalStateException if this lease was released
   */
  @Override
  public void resetConnectBackoff() {
    checkHeld("resetConnectBackoff");
    channel.resetConnectBackoff();
  }

  /**
   * Moves the cached channel to idle, for all its users.
   *
   * @throws IllegalStateException if this lease was released
   */
  @Override
  public void enterIdle() {
    checkHeld("enterIdle");
    channel.enterIdle();
  }

  @Override
  public String toString() {
    return "LeasedChannel{address=" + entry.address + ", released=" + released() + "}";
  }

  /**
   * A call counted on its lease and channel from {@code start()} until its listener's {@code
   * onClose}, or until {@code start()} throws; ended exactly once.
   */
  private static final class CountedCall<RequestT, ResponseT>
      extends ForwardingClientCall.SimpleForwardingClientCall<RequestT, ResponseT> {

    private final LeasedChannel lease;

    /** Set if the call was refused at its start: it then never reaches the channel's call. */
    private volatile boolean refused;

    CountedCall(LeasedChannel lease, ClientCall<RequestT, ResponseT> call) {
      super(call);
      this.lease = lease;
    }

    @Override
    protected ClientCall<RequestT, ResponseT> delegate() {
      return refused ? RefusedCall.instance() : super.delegate();
    }

    @Override
    public void start(Listener<ResponseT> responseListener, Metadata headers) {
      if (refused) {
        throw new IllegalStateException("call was already started");
      }
      boolean counted = lease.callStarted();
      EndingListener<ResponseT> listener = new EndingListener<>(lease, counted, responseListener);
      if (!counted) {
        // The channel is closed (CLOSED set, its shutdown() may still be to come): the call must
        // not start on it uncounted. It fails at once, as a call on a shut-down channel does.
        refused = true;
        listener.onClose(
            Status.UNAVAILABLE.withDescription(
                "The channel for " + lease.address() + " was closed by the CachingConnector"),
            new Metadata());
        return;
      }
      try {
        super.start(listener, headers);
      } catch (RuntimeException | Error e) {
        listener.end();
        throw e;
      }
    }
  }

  /** The call a refused {@link CountedCall} forwards to after its start: it does nothing. */
  private static final class RefusedCall extends ClientCall<Object, Object> {

    private static final RefusedCall INSTANCE = new RefusedCall();

    @SuppressWarnings("unchecked") // it never touches a message
    static <RequestT, ResponseT> ClientCall<RequestT, ResponseT> instance() {
      return (ClientCall<RequestT, ResponseT>) (ClientCall<?, ?>) INSTANCE;
    }

    @Override
    public void start(Listener<Object> responseListener, Metadata headers) {
      throw new IllegalStateException("already started");
    }

    @Override
    public void request(int numMessages) {}

    @Override
    public void cancel(@Nullable String message, @Nullable Throwable cause) {}

    @Override
    public void halfClose() {}

    @Override
    public void sendMessage(Object message) {}
  }

  /** Ends its call's count when the call closes; at most once. */
  private static final class EndingListener<ResponseT>
      extends ForwardingClientCallListener.SimpleForwardingClientCallListener<ResponseT> {

    private static final VarHandle ENDED;

    static {
      try {
        ENDED = MethodHandles.lookup().findVarHandle(EndingListener.class, "ended", boolean.class);
      } catch (ReflectiveOperationException e) {
        throw new ExceptionInInitializerError(e);
      }
    }

    private final LeasedChannel lease;
    private final boolean countedByChannel;

    @SuppressWarnings("unused") // written through ENDED
    private volatile boolean ended;

    EndingListener(
        LeasedChannel lease, boolean countedByChannel, ClientCall.Listener<ResponseT> delegate) {
      super(delegate);
      this.lease = lease;
      this.countedByChannel = countedByChannel;
    }

    void end() {
      if (ENDED.compareAndSet(this, false, true)) {
        lease.callEnded(countedByChannel);
      }
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      end(); // first: the listener's onClose sees the call counted as ended
      if (countedByChannel) {
        lease.entry.health.callClosed(status); // before the caller hears, as the count
      }
      super.onClose(status, trailers);
    }
  }
}
