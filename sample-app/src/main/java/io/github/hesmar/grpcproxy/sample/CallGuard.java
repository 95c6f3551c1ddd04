package io.github.hesmar.grpcproxy.sample;

import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;

/**
 * The lock of one proxied call, and the flag that tells the proxy the transport has ended the
 * server call, set on the transport's thread before grpc-java queues anything of its own for that
 * stream.
 *
 * <p>Why: when the transport ends a call itself (a request over the maximum message size, a
 * client's RST_STREAM, the server's deadline), grpc-java reports it to the call's listener as
 * {@code onCancel} later, on the call's executor. For a message over the limit it first queues
 * trailers ({@code RESOURCE_EXHAUSTED}, end of stream) while the client may still be sending. A
 * response header or trailer written by the application after those trailers, on the same stream,
 * makes Netty throw ({@code Stream N in unexpected state HALF_CLOSED_LOCAL}), which grpc-java
 * treats as a connection error: every other call on the client's connection dies. A proxy relays
 * its backend's headers and status from another thread, so "after the trailers but before onCancel"
 * is a real window, and closing the server call with the backend's status after {@code onCancel}
 * (it cancelled the backend, which then reports CANCELLED) always hits it.
 *
 * <p>How: one guard per call, set in the call's {@link Context} by this tracer. {@link
 * #streamClosed} runs on the transport thread, inside grpc-java's report of the end, before the
 * trailers are queued. Every write the proxy makes to the server call (headers, messages, close)
 * happens under the guard's lock after checking {@link #ended}; {@link #streamClosed} takes the
 * same lock. So a write either happens before the end is reported, and is queued before grpc-java's
 * trailers (Netty then resets the stream instead of sending a second header block), or sees {@code
 * ended} and is skipped. The lock is the call's only lock: the relay's own state is guarded by it
 * too.
 */
final class CallGuard extends ServerStreamTracer {

  static final ServerStreamTracer.Factory FACTORY =
      new ServerStreamTracer.Factory() {
        @Override
        public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
          return new CallGuard();
        }
      };

  /** The listener of a call that has ended or been refused: it ignores every callback. */
  static final ServerCall.Listener<byte[]> NOTHING = new ServerCall.Listener<>() {};

  private static final Context.Key<CallGuard> KEY = Context.key("reverse-proxy-call-guard");

  boolean ended; // guarded by this

  /**
   * The current call's guard; a guard nobody ends if the server lacks the tracer (then only
   * onCancel ends the call, which leaves the window described above open).
   */
  static CallGuard current() {
    CallGuard guard = KEY.get();
    return guard != null ? guard : new CallGuard();
  }

  synchronized boolean ended() {
    return ended;
  }

  /** Closes {@code call} with {@code status} unless it has ended; returns {@link #NOTHING}. */
  ServerCall.Listener<byte[]> refuse(ServerCall<byte[], byte[]> call, Status status) {
    synchronized (this) {
      if (!ended) {
        call.close(status, new Metadata());
      }
    }
    return NOTHING;
  }

  @Override
  public Context filterContext(Context context) {
    return context.withValue(KEY, this);
  }

  @Override
  public void streamClosed(Status status) {
    if (!status.isOk()) {
      synchronized (this) {
        ended = true;
      }
    }
  }
}
