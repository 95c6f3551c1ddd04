package io.github.hesmar.grpcproxy.sample;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.autoconfigure.ChannelBuilderCustomizer;
import java.io.IOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;

/** Wires the demo backends, the route table, the proxy server and its startup summary. */
@Configuration(proxyBeanMethods = false)
class ProxyConfiguration {

  static final String EMBEDDED = "embedded:";

  private static final String PHASE_TIMEOUT = "spring.lifecycle.timeout-per-shutdown-phase";
  private static final Log logger = LogFactory.getLog(ProxyConfiguration.class);

  @Bean(destroyMethod = "close")
  DemoBackends demoBackends(SampleProperties properties) throws IOException, InterruptedException {
    return properties.getBackends().isEmbedded()
        ? DemoBackends.startAlphaAndBeta()
        : DemoBackends.none();
  }

  @Bean
  ReverseProxy reverseProxy(
      CachingConnector connector, SampleProperties properties, DemoBackends backends) {
    return new ReverseProxy(
        connector,
        resolve(properties.getRoutes(), backends),
        properties.getProxy().getDialTimeout());
  }

  @Bean
  ProxyServer proxyServer(
      ReverseProxy proxy, SampleProperties properties, Environment environment) {
    Duration grace = properties.getProxy().getShutdownGracePeriod();
    Duration phaseTimeout =
        environment.getProperty(PHASE_TIMEOUT, Duration.class, Duration.ofSeconds(30));
    if (grace.compareTo(phaseTimeout) >= 0) {
      // Spring stops the next phases, the connector's among them, when the phase times out.
      logger.warn(
          "sample.proxy.shutdown-grace-period ("
              + grace
              + ") is not below "
              + PHASE_TIMEOUT
              + " ("
              + phaseTimeout
              + "): on shutdown the connector may close backend channels under calls still in"
              + " flight; raise "
              + PHASE_TIMEOUT);
    }
    return new ProxyServer(proxy, properties.getProxy());
  }

  /**
   * Applies {@code sample.proxy.max-message-size} to the backend channels too, so a response is
   * held to the same limit as a request; it overrides {@code
   * grpc.connector.channel.max-inbound-message-size} for the proxy's channels.
   */
  @Bean
  ChannelBuilderCustomizer proxyMaxMessageSize(SampleProperties properties) {
    int maxMessageSize = maxMessageSize(properties.getProxy());
    return (address, builder) -> builder.maxInboundMessageSize(maxMessageSize);
  }

  /**
   * Runs the backend channels' callbacks on their transport threads instead of handing each to a
   * thread pool: the proxy's callbacks only hand data to the other side of the call and never
   * block, so a hop per callback would buy nothing (the health probe's blocking stub waits on its
   * own executor).
   */
  @Bean
  ChannelBuilderCustomizer proxyDirectExecutor() {
    return (address, builder) -> builder.directExecutor();
  }

  /** Returns {@code sample.proxy.max-message-size} in bytes, or fails naming the bad value. */
  static int maxMessageSize(SampleProperties.Proxy proxy) {
    long bytes = proxy.getMaxMessageSize().toBytes();
    if (bytes <= 0 || bytes > Integer.MAX_VALUE) {
      throw new IllegalStateException(
          "sample.proxy.max-message-size="
              + proxy.getMaxMessageSize()
              + " must be at least 1B and at most "
              + Integer.MAX_VALUE
              + "B");
    }
    return (int) bytes;
  }

  @Bean
  StartupSummary startupSummary(ProxyServer server, ReverseProxy proxy, DemoBackends backends) {
    return new StartupSummary(server, proxy, backends);
  }

  /** Replaces {@code embedded:<name>} targets with the address of that demo backend. */
  static Map<String, String> resolve(Map<String, String> routes, DemoBackends backends) {
    Map<String, String> resolved = new LinkedHashMap<>();
    routes.forEach(
        (route, target) -> {
          if (target.startsWith(EMBEDDED)) {
            String name = target.substring(EMBEDDED.length());
            DemoBackend backend = backends.get(name);
            if (backend == null) {
              throw new IllegalStateException(
                  "sample.routes."
                      + route
                      + "="
                      + target
                      + " names no running demo backend;"
                      + " set sample.backends.embedded=true or give a real gRPC target");
            }
            target = backend.target();
          }
          resolved.put(route, target);
        });
    return resolved;
  }
}
