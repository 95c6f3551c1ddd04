package io.github.hesmar.grpcproxy.sample;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.HandlerRegistry;
import io.grpc.Metadata;
import io.grpc.ServerBuilder;
import io.grpc.ServerCall;
import io.grpc.ServerMethodDefinition;
import java.time.Duration;
import java.util.Map;
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
 *
 * <p>Errors name the problem without telling a caller more than it sent: a missing or unknown route
 * (the route echoed up to {@value Routes#MAX_ROUTE_ECHO} characters, the configured routes not
 * listed), or {@code UNAVAILABLE: backend <route> unavailable} when the backend's channel cannot be
 * dialed or its transport fails (the cause is logged, not sent). Statuses the backend itself sends
 * pass through unchanged.
 *
 * <p>Install it with {@link #registerWith(ServerBuilder)}, which also adds the stream tracer the
 * proxy needs to stop writing to a call the transport has ended (see {@link CallGuard}).
 *
 * <p>Threads: the proxy never blocks the thread that calls it, so a server (and backend channels)
 * with a direct executor may run it on their transport threads, which saves a hand-off to a thread
 * pool for every callback. A call whose channel is cached starts on the calling thread ({@link
 * CachingConnector#tryDial}); one whose channel is being dialed starts on the thread that completes
 * the dial ({@link CachingConnector#dialAsync}): no thread waits for a dial.
 */
public final class ReverseProxy extends HandlerRegistry {

  /** The request header that chooses the route. */
  public static final Metadata.Key<String> ROUTE =
      Metadata.Key.of("x-route", Metadata.ASCII_STRING_MARSHALLER);

  private final CachingConnector connector;
  private final Routes routes;
  private final Duration dialTimeout;
  private final MethodLookup methods;

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
    this.routes = new Routes(routes);
    this.dialTimeout = requireNonNull(dialTimeout, "dialTimeout");
    this.methods = new MethodLookup(this::startCall);
  }

  /**
   * Makes {@code server} forward every method it does not serve itself through this proxy, and adds
   * the stream tracer the proxy's calls rely on.
   *
   * @param server the builder of the proxy's gRPC server
   * @return {@code server}
   */
  public ServerBuilder<?> registerWith(ServerBuilder<?> server) {
    return server.fallbackHandlerRegistry(this).addStreamTracerFactory(CallGuard.FACTORY);
  }

  /** Returns the routes, sorted by name. */
  public Map<String, String> routes() {
    return routes.sorted();
  }

  @Override
  public ServerMethodDefinition<?, ?> lookupMethod(String methodName, @Nullable String authority) {
    return methods.lookup(methodName);
  }

  private ServerCall.Listener<byte[]> startCall(
      ServerCall<byte[], byte[]> serverCall, Metadata headers) {
    CallGuard guard = CallGuard.current();
    String route = headers.get(ROUTE);
    if (route == null) {
      return guard.refuse(serverCall, Routes.missing());
    }
    String target = routes.target(route);
    if (target == null) {
      return guard.refuse(serverCall, Routes.unknown(route));
    }
    if (guard.ended()) {
      // The transport ended the call already (e.g. an oversized first message).
      return CallGuard.NOTHING;
    }
    LeasedChannel lease = connector.tryDial(target);
    if (lease != null) {
      return Relay.open(guard, serverCall, headers, lease, route, target);
    }
    // A miss, a dial in flight or full channels: the connector completes the dial's future; no
    // thread waits for it.
    DialingCall dialing =
        new DialingCall(connector, dialTimeout, guard, serverCall, headers, route, target);
    dialing.startDial();
    return dialing;
  }
}
