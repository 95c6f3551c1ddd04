package io.github.hesmar.grpcproxy.sample;

import io.grpc.Status;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;

/**
 * The configured routes: the backend target each route name leads to, and what a caller is told
 * when its call names no route or an unknown one.
 *
 * <p>Only configured routes are dialed, so the proxy is not an open proxy. The refusals name the
 * problem without telling a caller more than it sent: the caller's route is repeated up to {@value
 * #MAX_ROUTE_ECHO} characters, and the configured routes are not listed.
 *
 * <p>Immutable, so every call may read it on any thread.
 */
final class Routes {

  /** The longest piece of a caller's route name an error description repeats. */
  static final int MAX_ROUTE_ECHO = 64;

  private final Map<String, String> targets;

  /** Routes from route name to gRPC target. */
  Routes(Map<String, String> targets) {
    this.targets = Map.copyOf(targets);
  }

  /** The target of {@code route}, or null if it is not configured. */
  @Nullable String target(String route) {
    return targets.get(route);
  }

  /** Returns the routes, sorted by name. */
  SortedMap<String, String> sorted() {
    return new TreeMap<>(targets);
  }

  /** The status of a call without the route header. */
  static Status missing() {
    return Status.INVALID_ARGUMENT.withDescription("Missing request header x-route");
  }

  /** The status of a call whose route is not configured. */
  static Status unknown(String route) {
    return Status.NOT_FOUND.withDescription("Unknown route '" + echo(route) + "' in x-route");
  }

  /** A caller's route, cut to {@value #MAX_ROUTE_ECHO} characters. */
  static String echo(String route) {
    return route.length() <= MAX_ROUTE_ECHO
        ? route
        : route.substring(0, MAX_ROUTE_ECHO) + "... (" + route.length() + " characters)";
  }
}
