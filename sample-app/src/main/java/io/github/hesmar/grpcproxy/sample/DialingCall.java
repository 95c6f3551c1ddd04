package io.github.hesmar.grpcproxy.sample;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A call whose backend channel is being dialed ({@link CachingConnector#dialAsync}): the server
 * call's listener until the relay starts, then a pass-through to the relay's. No thread waits for
 * the dial: the relay is started by the thread that completes it.
 *
 * <p>Threads: before the relay starts, the server call has not been asked for a message, so only
 * its half-close (a call without messages), cancellation and readiness can arrive: a half-close is
 * replayed to the relay, a cancellation ends the call ({@code guard.ended}) and cancels the dial's
 * future (the connector then holds nothing for it). The relay is started, and {@link #next} set,
 * under the guard, which every callback here takes: a callback waits for the relay to be in place,
 * so none is lost.
 */
final class DialingCall extends ServerCall.Listener<byte[]> {

  /** The proxy's log: its lines keep the proxy's logger name. */
  private static final Logger logger = LoggerFactory.getLogger(ReverseProxy.class);

  private final CachingConnector connector;
  private final Duration dialTimeout;
  private final CallGuard guard;
  private final ServerCall<byte[], byte[]> serverCall;
  private final Metadata headers;
  private final String route;
  private final String target;
  private ServerCall.@Nullable Listener<byte[]> next; // guarded by guard
  private boolean halfClosed; // guarded by guard: a half-close that came before the relay
  private @Nullable CompletableFuture<LeasedChannel> dial; // guarded by guard

  DialingCall(
      CachingConnector connector,
      Duration dialTimeout,
      CallGuard guard,
      ServerCall<byte[], byte[]> serverCall,
      Metadata headers,
      String route,
      String target) {
    this.connector = connector;
    this.dialTimeout = dialTimeout;
    this.guard = guard;
    this.serverCall = serverCall;
    this.headers = headers;
    this.route = route;
    this.target = target;
  }

  /**
   * Starts the dial, in the current context, which is the server call's: its deadline bounds the
   * wait, with the dial timeout. Never blocks.
   */
  void startDial() {
    CompletableFuture<LeasedChannel> future = connector.dialAsync(target, dialTimeout);
    synchronized (guard) {
      dial = future;
    }
    // The relay makes the backend call in the server call's context (its deadline and
    // cancellation reach the backend), on whichever thread completes the dial.
    Context context = Context.current();
    future.whenComplete((lease, failure) -> context.run(() -> dialed(lease, failure)));
  }

  /**
   * The dial's outcome, on the thread that completed it (or this one, if it was complete). The
   * relay is started and {@link #next} set in one block under the guard, so a callback that the
   * relay's first {@code request(1)} triggers on another thread finds the relay in place.
   */
  private void dialed(@Nullable LeasedChannel lease, @Nullable Throwable failure) {
    if (lease == null) {
      Throwable cause = failure instanceof CompletionException ? failure.getCause() : failure;
      if (cause instanceof CancellationException) {
        return; // cancelled by onCancel: the call has ended
      } else if (cause instanceof StatusRuntimeException e) {
        end(BackendFailures.backendUnavailable(e.getStatus(), route, target));
      } else if (cause instanceof IllegalStateException) {
        end(Status.UNAVAILABLE.withDescription("Proxy is shutting down"));
      } else {
        logger.warn("Dialing route {} ({}) failed", route, target, cause);
        end(Status.INTERNAL.withDescription("Proxy failed"));
      }
      return;
    }
    synchronized (guard) {
      if (guard.ended) {
        lease.close(); // Cancelled while dialing.
        next = CallGuard.NOTHING;
        return;
      }
      ServerCall.Listener<byte[]> relay =
          Relay.open(guard, serverCall, headers, lease, route, target);
      next = relay;
      if (halfClosed) {
        relay.onHalfClose();
      }
    }
  }

  private void end(Status status) {
    synchronized (guard) {
      next = guard.refuse(serverCall, status);
    }
  }

  @Override
  public void onMessage(byte[] message) {
    synchronized (guard) {
      if (next != null) {
        next.onMessage(message);
      }
    }
  }

  @Override
  public void onHalfClose() {
    synchronized (guard) {
      if (next != null) {
        next.onHalfClose();
      } else {
        halfClosed = true;
      }
    }
  }

  @Override
  public void onCancel() {
    synchronized (guard) {
      guard.ended = true; // A lease delivered after this is released.
      if (next != null) {
        next.onCancel();
      } else if (dial != null) {
        dial.cancel(false); // nothing left waiting in the connector
      }
    }
  }

  @Override
  public void onReady() {
    synchronized (guard) {
      if (next != null) {
        next.onReady();
      }
    }
  }
}
