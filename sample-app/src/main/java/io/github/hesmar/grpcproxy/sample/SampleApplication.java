package io.github.hesmar.grpcproxy.sample;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;

/**
 * A gRPC reverse proxy built on the {@code CachingConnector} starter: calls to {@code
 * sample.proxy.port} (9090) are forwarded to the backend named by their {@code x-route} header,
 * over channels leased from the injected connector. By default it also starts two demo backends,
 * {@code alpha} and {@code beta}, on loopback, and serves the actuator on {@code server.port}.
 */
@SpringBootApplication
@EnableConfigurationProperties(SampleProperties.class)
public class SampleApplication {

  /**
   * Starts the sample.
   *
   * @param args Spring Boot arguments, such as {@code --sample.proxy.port=9191}
   */
  public static void main(String[] args) {
    SpringApplication.run(SampleApplication.class, args);
  }
}
