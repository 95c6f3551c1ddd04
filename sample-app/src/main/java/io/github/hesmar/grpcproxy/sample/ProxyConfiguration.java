package io.github.hesmar.grpcproxy.sample;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** Wires the demo backends, the route table and the proxy server. */
@Configuration(proxyBeanMethods = false)
class ProxyConfiguration {

  static final String EMBEDDED = "embedded:";

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
  ProxyServer proxyServer(ReverseProxy proxy, SampleProperties properties) {
    return new ProxyServer(proxy, properties.getProxy());
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
