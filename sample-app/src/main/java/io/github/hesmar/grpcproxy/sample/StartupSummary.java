package io.github.hesmar.grpcproxy.sample;

import static java.util.stream.Collectors.joining;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.ApplicationListener;
import org.springframework.core.env.Environment;

/**
 * Logs, once the application is ready, one block that tells a first-time user what runs where: the
 * address the gRPC proxy is bound to, the routes and their targets, the demo backends, and three
 * commands to try with the real hosts and ports (a probe, the connector's actuator endpoint, one
 * gRPC call through the proxy). Logged at INFO under this class's name.
 */
final class StartupSummary implements ApplicationListener<ApplicationReadyEvent> {

  private static final Log logger = LogFactory.getLog(StartupSummary.class);

  private final ProxyServer server;
  private final ReverseProxy proxy;
  private final DemoBackends backends;

  StartupSummary(ProxyServer server, ReverseProxy proxy, DemoBackends backends) {
    this.server = server;
    this.proxy = proxy;
    this.backends = backends;
  }

  @Override
  public void onApplicationEvent(ApplicationReadyEvent event) {
    if (logger.isInfoEnabled()) {
      logger.info(summary(event.getApplicationContext().getEnvironment()));
    }
  }

  /** Returns the block, for an application whose servers have started. */
  String summary(Environment environment) {
    InetSocketAddress grpc = server.address();
    Map<String, String> routes = proxy.routes();
    List<DemoBackend> demos = backends.list();
    StringBuilder block = new StringBuilder("The gRPC reverse proxy is ready.\n");
    block
        .append("  gRPC proxy:    ")
        .append(hostPort(grpc.getAddress(), grpc.getPort()))
        .append(" (the request header x-route chooses the route)\n");
    block
        .append("  routes:        ")
        .append(
            routes.isEmpty()
                ? "none; add one with --sample.routes.<name>=<target>"
                : routes.entrySet().stream()
                    .map(route -> route.getKey() + " -> " + route.getValue())
                    .collect(joining(", ")))
        .append('\n');
    if (!demos.isEmpty()) {
      block
          .append("  demo backends: ")
          .append(demos.stream().map(b -> b.name() + " at " + b.target()).collect(joining(", ")))
          .append('\n');
    }
    // No web server (a test's mock environment, or spring.main.web-application-type=none): no curl.
    @Nullable String http = webBase(environment, "server.address", "local.server.port");
    @Nullable String management =
        environment.containsProperty("local.management.port")
            ? webBase(environment, "management.server.address", "local.management.port")
            : http;
    String actuator =
        environment.getProperty("management.server.base-path", "")
            + environment.getProperty("management.endpoints.web.base-path", "/actuator");
    @Nullable String route = routes.isEmpty() ? null : routes.keySet().iterator().next();
    block.append(
        route == null
            ? "  Try:"
            : "  Try (the gRPC call needs python3 with grpcio: pip install grpcio, or python3-grpcio):");
    if (http != null && route != null) {
      block.append("\n    curl -s ").append(http).append("/probe/").append(route);
    }
    if (management != null) {
      block.append("\n    curl -s ").append(management).append(actuator).append("/grpcconnections");
    }
    if (route != null) {
      // SimpleRequest{requestMessage: "hi"} as bytes; the answer's message follows its 2-byte tag.
      block
          .append("\n    python3 -c \"import grpc; call = grpc.insecure_channel('")
          .append(hostPort(reachable(grpc.getAddress()), grpc.getPort()))
          .append("').unary_unary('/grpc.testing.SimpleService/UnaryRpc');")
          .append(" print(call(b'\\n\\x02hi', metadata=[('x-route', '")
          .append(route)
          .append("')])[2:].decode())\"");
    }
    return block.toString();
  }

  /**
   * Returns {@code http://host:port} of a web server, with a host a local client can reach, or null
   * without that server.
   */
  private static @Nullable String webBase(
      Environment environment, String addressKey, String portKey) {
    if (!environment.containsProperty(portKey)) {
      return null;
    }
    @Nullable String address = environment.getProperty(addressKey);
    if (address == null && !addressKey.equals("server.address")) {
      address = environment.getProperty("server.address");
    }
    String host = "127.0.0.1";
    if (address != null && !address.isBlank()) {
      host = address.contains(":") && !address.startsWith("[") ? "[" + address + "]" : address;
      if (host.equals("0.0.0.0") || host.equals("[::]") || host.equals("[0:0:0:0:0:0:0:0]")) {
        host = "127.0.0.1";
      }
    }
    return "http://" + host + ":" + environment.getRequiredProperty(portKey, Integer.class);
  }

  /** Returns loopback for a wildcard address (bound to every interface), else the address. */
  private static InetAddress reachable(InetAddress bound) {
    return bound.isAnyLocalAddress() ? InetAddress.getLoopbackAddress() : bound;
  }

  private static String hostPort(InetAddress address, int port) {
    String host = address.getHostAddress();
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
  }
}
