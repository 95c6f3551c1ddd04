package io.github.hesmar.grpcproxy.sample;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.HandlerRegistry;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerMethodDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;

/**
 * A transparent gRPC reverse proxy: a {@link HandlerRegistry} that forwards any method, as raw
 * bytes, to the backend named by the request header {@code x-route}, over a channel leased from a
 * {@link CachingConnector}. Use it as a server's fallback registry.
 *
 * <p>Only configured routes are dialed: a call without {@code x-route}, or naming an unknown route,
 * is refused without any dial, so the proxy is not an open proxy. Request headers (minus {@code
 * x-route} and transport headers), response headers, messages, trailers and status pass through
 * unchanged; flow control holds in both directions; the caller's deadline and cancellation reach
 * the backend (the backend call is made in the server call's {@link io.grpc.Context}). The lease is
 * released when the call ends, however it ends.
 */
public final class ReverseProxy extends HandlerRegistry {

  /** The request header that chooses the route. */
  public static final Metadata.Key<String> ROUTE =
      Metadata.Key.of("x-route", Metadata.ASCII_STRING_MARSHALLER);

  /** Headers that belong to one hop, not to the call. */
  private static final List<Metadata.Key<String>> HOP_HEADERS =
      List.of(
          ROUTE,
          Metadata.Key.of("content-type", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("te", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("user-agent", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("grpc-timeout", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("grpc-encoding", Metadata.ASCII_STRING_MARSHALLER),
          Metadata.Key.of("grpc-accept-encoding", Metadata.ASCII_STRING_MARSHALLER));

  private static final MethodDescriptor.Marshaller<byte[]> BYTES = new ByteMarshaller();

  private final CachingConnector connector;
  private final Map<String, String> routes;
  private final Duration dialTimeout;

  /**
   * Creates a proxy.
   *
   * @param connector where backend channels are leased from
   * @param routes route name to gRPC target
   * @param dialTimeout the longest a call waits for its backend's channel to be created
   */
  public ReverseProxy(
      CachingConnector connector, Map<String, String> routes, Duration dialTimeout) {
    this.connector = requireNonNull(connector, "connector");
    this.routes = Map.copyOf(routes);
    this.dialTimeout = requireNonNull(dialTimeout, "dialTimeout");
  }

  /** Returns the routes, sorted by name. */
  public Map<String, String> routes() {
    return new TreeMap<>(routes);
  }

  @Override
  public ServerMethodDefinition<?, ?> lookupMethod(String methodName, @Nullable String authority) {
    MethodDescriptor<byte[], byte[]> method =
        MethodDescriptor.newBuilder(BYTES, BYTES)
            .setFullMethodName(methodName)
            .setType(MethodDescriptor.MethodType.UNKNOWN)
            .build();
    return ServerMethodDefinition.create(method, this::startCall);
  }

  private ServerCall.Listener<byte[]> startCall(
      ServerCall<byte[], byte[]> serverCall, Metadata headers) {
    String route = headers.get(ROUTE);
    if (route == null) {
      return refuse(
          serverCall,
          Status.INVALID_ARGUMENT.withDescription(
              "Missing request header x-route; known routes: " + routes().keySet()));
    }
    String target = routes.get(route);
    if (target == null) {
      return refuse(
          serverCall,
          Status.NOT_FOUND.withDescription(
              "Unknown route '" + route + "' in x-route; known routes: " + routes().keySet()));
    }
    LeasedChannel lease;
    try {
      lease = connector.dial(target, dialTimeout);
    } catch (StatusRuntimeException e) {
      return refuse(serverCall, e.getStatus());
    } catch (IllegalStateException e) {
      return refuse(serverCall, Status.UNAVAILABLE.withDescription("Proxy is shutting down"));
    }
    for (Metadata.Key<String> key : HOP_HEADERS) {
      headers.discardAll(key);
    }
    try {
      ClientCall<byte[], byte[]> clientCall =
          lease.newCall(serverCall.getMethodDescriptor(), CallOptions.DEFAULT);
      Relay relay = new Relay(serverCall, clientCall, lease);
      relay.start(headers);
      return relay.fromClient;
    } catch (RuntimeException e) {
      lease.close();
      return refuse(serverCall, Status.INTERNAL.withDescription("Proxy failed").withCause(e));
    }
  }

  private static ServerCall.Listener<byte[]> refuse(
      ServerCall<byte[], byte[]> call, Status status) {
    call.close(status, new Metadata());
    return new ServerCall.Listener<>() {};
  }

  /**
   * Relays one call between the client's server call and the backend's client call.
   *
   * <p>Flow control: the relay asks for one message at a time from each side, and asks for the next
   * only once the other side is ready to take it, so neither side's messages pile up in the proxy.
   * Both listeners' callbacks run under the relay's lock: the server call and the client call are
   * not thread-safe, and their callbacks arrive on different threads.
   */
  private static final class Relay {

    private final ServerCall<byte[], byte[]> serverCall;
    private final ClientCall<byte[], byte[]> clientCall;
    private final LeasedChannel lease;
    private boolean closed; // guarded by this
    private boolean owesClientRequest; // guarded by this: a request(1) to the client side
    private boolean owesBackendRequest; // guarded by this: a request(1) to the backend side

    final ServerCall.Listener<byte[]> fromClient =
        new ServerCall.Listener<>() {
          @Override
          public void onMessage(byte[] message) {
            synchronized (Relay.this) {
              if (closed) {
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
            synchronized (Relay.this) {
              if (!closed) {
                clientCall.halfClose();
              }
            }
          }

          @Override
          public void onCancel() {
            synchronized (Relay.this) {
              if (!closed) {
                clientCall.cancel("The proxy's client cancelled the call", null);
              }
            }
          }

          @Override
          public void onReady() {
            synchronized (Relay.this) {
              if (owesBackendRequest && !closed && serverCall.isReady()) {
                owesBackendRequest = false;
                clientCall.request(1);
              }
            }
          }
        };

    final ClientCall.Listener<byte[]> fromBackend =
        new ClientCall.Listener<>() {
          @Override
          public void onHeaders(Metadata headers) {
            synchronized (Relay.this) {
              if (!closed) {
                serverCall.sendHeaders(headers);
              }
            }
          }

          @Override
          public void onMessage(byte[] message) {
            synchronized (Relay.this) {
              if (closed) {
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
            synchronized (Relay.this) {
              closed = true;
              try {
                serverCall.close(status, trailers);
              } catch (IllegalStateException alreadyClosed) {
                // The client cancelled: the server call is gone already.
              } finally {
                lease.close();
              }
            }
          }

          @Override
          public void onReady() {
            synchronized (Relay.this) {
              if (owesClientRequest && !closed && clientCall.isReady()) {
                owesClientRequest = false;
                serverCall.request(1);
              }
            }
          }
        };

    Relay(
        ServerCall<byte[], byte[]> serverCall,
        ClientCall<byte[], byte[]> clientCall,
        LeasedChannel lease) {
      this.serverCall = serverCall;
      this.clientCall = clientCall;
      this.lease = lease;
    }

    synchronized void start(Metadata headers) {
      clientCall.start(fromBackend, headers);
      serverCall.request(1);
      clientCall.request(1);
    }
  }

  /** Passes messages through as bytes. */
  private static final class ByteMarshaller implements MethodDescriptor.Marshaller<byte[]> {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
