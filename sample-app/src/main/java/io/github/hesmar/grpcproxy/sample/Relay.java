package io.github.hesmar.grpcproxy.sample;

import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.Status;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Relays one call between the client's server call and the backend's client call.
 *
 * <p>Flow control: the relay asks for one message at a time from each side, and asks for the next
 * only once the other side is ready to take it, so neither side's messages pile up in the proxy.
 *
 * <p>Locking: every callback of both listeners runs under the call's {@link CallGuard}: the server
 * call and the client call are not thread-safe, their callbacks arrive on different threads, and
 * the guard is what the transport takes to end the server call. Order of ending: once the server
 * call has ended ({@code guard.ended}: cancelled by the client or ended by the transport), nothing
 * more is written to it; the backend call is cancelled and its end only releases the lease. Once
 * the backend call has ended ({@code backendClosed}), its status closes the server call, once.
 */
final class Relay {

  /** The proxy's log: its lines keep the proxy's logger name. */
  private static final Logger logger = LoggerFactory.getLogger(ReverseProxy.class);

  /** Headers that belong to one hop, not to the call. */
  private static final List<Metadata.Key<String>> HOP_HEADERS =
      List.of(
          ReverseProxy.ROUTE,
          Metadata.Key.of("content-type", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("te", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("user-agent", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("grpc-timeout", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("grpc-encoding", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("grpc-accept-encoding", Metadata.ASCII_STRING_MARSHALLER));

  /** Starts relaying the call over {@code lease}; releases the lease if that fails. */
  static ServerCall.Listener<byte[]> open(
      CallGuard guard,
      ServerCall<byte[], byte[]> serverCall,
      Metadata headers,
      LeasedChannel lease,
      String route,
      String target) {
    for (Metadata.Key<String> key : HOP_HEADERS) {
      headers.discardAll(key);
    }
    try {
      ClientCall<byte[], byte[]> clientCall =
          lease.newCall(serverCall.getMethodDescriptor(), CallOptions.DEFAULT);
      Relay relay = new Relay(guard, serverCall, clientCall, lease, route, target);
      relay.start(headers);
      return relay.fromClient;
    } catch (RuntimeException e) {
      lease.close();
      logger.warn("Proxying a call to route {} ({}) failed", route, target, e);
      return guard.refuse(serverCall, Status.INTERNAL.withDescription("Proxy failed"));
    }
  }

  private final CallGuard guard;
  private final ServerCall<byte[], byte[]> serverCall;
  private final ClientCall<byte[], byte[]> clientCall;
  private final LeasedChannel lease;
  private final String route;
  private final String target;
  private boolean backendClosed; // guarded by guard
  private boolean owesClientRequest; // guarded by guard: a request(1) to the client side
  private boolean owesBackendRequest; // guarded by guard: a request(1) to the backend side

  private final ServerCall.Listener<byte[]> fromClient =
      new ServerCall.Listener<>() {
        @Override
        public void onMessage(byte[] message) {
          synchronized (guard) {
            if (backendClosed) {
              return;
            }
            clientCall.sendMessage(message);
            if (clientCall.isReady()) {
              serverCall.request(1);
            } else {
              owesClientRequest = true;
            }
          }
        }

        @Override
        public void onHalfClose() {
          synchronized (guard) {
            if (!backendClosed) {
              clientCall.halfClose();
            }
          }
        }

        @Override
        public void onCancel() {
          synchronized (guard) {
            guard.ended = true; // Already set by the tracer, unless it is not installed.
            if (!backendClosed) {
              clientCall.cancel("The proxy's client cancelled the call", null);
            }
          }
        }

        @Override
        public void onReady() {
          synchronized (guard) {
            if (owesBackendRequest && !backendClosed && !guard.ended && serverCall.isReady()) {
              owesBackendRequest = false;
              clientCall.request(1);
            }
          }
        }
      };

  private final ClientCall.Listener<byte[]> fromBackend =
      new ClientCall.Listener<>() {
        @Override
        public void onHeaders(Metadata headers) {
          synchronized (guard) {
            if (!guard.ended) {
              serverCall.sendHeaders(headers);
            }
          }
        }

        @Override
        public void onMessage(byte[] message) {
          synchronized (guard) {
            if (backendClosed || guard.ended) {
              return;
            }
            serverCall.sendMessage(message);
            if (serverCall.isReady()) {
              clientCall.request(1);
            } else {
              owesBackendRequest = true;
            }
          }
        }

        @Override
        public void onClose(Status status, Metadata trailers) {
          synchronized (guard) {
            backendClosed = true;
            try {
              if (!guard.ended) {
                serverCall.close(BackendFailures.relayed(status, route, target), trailers);
              }
            } finally {
              lease.close();
            }
          }
        }

        @Override
        public void onReady() {
          synchronized (guard) {
            if (owesClientRequest && !backendClosed && !guard.ended && clientCall.isReady()) {
              owesClientRequest = false;
              serverCall.request(1);
            }
          }
        }
      };

  private Relay(
      CallGuard guard,
      ServerCall<byte[], byte[]> serverCall,
      ClientCall<byte[], byte[]> clientCall,
      LeasedChannel lease,
      String route,
      String target) {
    this.guard = guard;
    this.serverCall = serverCall;
    this.clientCall = clientCall;
    this.lease = lease;
    this.route = route;
    this.target = target;
  }

  private void start(Metadata headers) {
    synchronized (guard) {
      clientCall.start(fromBackend, headers);
      serverCall.request(1);
      clientCall.request(1);
    }
  }
}
