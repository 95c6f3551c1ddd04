package io.github.hesmar.grpcproxy.sample;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A call whose backend channel is being dialed on the {@link DialExecutor}: the server call's
 * listener until the relay starts, then a pass-through to the relay's.
 *
 * <p>Threads: before the relay starts, the server call has not been asked for a message, so only
 * its half-close (a call without messages), cancellation and readiness can arrive: a half-close is
 * replayed to the relay, a cancellation ends the call ({@code guard.ended}), which the dial sees.
 * The relay is started, and {@link #next} set, under the guard, which every callback here takes: a
 * callback waits for the relay to be in place, so none is lost.
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
   * Starts the dial on the {@link DialExecutor}, in the current context, which is the server
   * call's: its deadline and cancellation bound the wait.
   *
   * @throws RejectedExecutionException if too many calls wait for dials already
   */
  void startDial() {
    DialExecutor.INSTANCE.execute(Context.current().wrap(this::dial));
  }

  /**
   * Runs on the dial executor, in the server call's context. The wait for the dial happens outside
   * the guard; the relay is then started and {@link #next} set in one block under it, so a callback
   * that the relay's first {@code request(1)} triggers on another thread finds the relay in place.
   */
  private void dial() {
    LeasedChannel lease;
    try {
      lease = connector.dial(target, dialTimeout);
    } catch (StatusRuntimeException e) {
      end(BackendFailures.backendUnavailable(e.getStatus(), route, target));
      return;
    } catch (IllegalStateException e) {
      end(Status.UNAVAILABLE.withDescription("Proxy is shutting down"));
      return;
    } catch (RuntimeException e) {
      logger.warn("Dialing route {} ({}) failed", route, target, e);
      end(Status.INTERNAL.withDescription("Proxy failed"));
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
      guard.ended = true; // The dial, if still running, releases its lease.
      if (next != null) {
        next.onCancel();
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

  /**
   * The threads that wait for dials, so that the server's transport threads never do: at most
   * {@value #THREADS} daemon threads, ended after a minute idle (the pool needs no shutdown), and
   * at most {@value #WAITING} calls queued for one; past that a call is refused with UNAVAILABLE
   * rather than a thread or a queue entry being added per waiting call (a cold start under load, a
   * hung dialer). A queued call whose channel got cached meanwhile is leased at once.
   */
  private static final class DialExecutor {
    static final int THREADS = 64;
    static final int WAITING = 10_000;
    static final Executor INSTANCE = create();

    private static Executor create() {
      ThreadPoolExecutor pool =
          new ThreadPoolExecutor(
              THREADS,
              THREADS,
              60,
              TimeUnit.SECONDS,
              new LinkedBlockingQueue<>(WAITING),
              runnable -> {
                Thread thread = new Thread(runnable, "reverse-proxy-dial");
                thread.setDaemon(true);
                return thread;
              });
      pool.allowCoreThreadTimeOut(true);
      return pool;
    }
  }
}
