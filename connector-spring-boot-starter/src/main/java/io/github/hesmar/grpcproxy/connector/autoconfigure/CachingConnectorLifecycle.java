package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import org.springframework.context.SmartLifecycle;

/**
 * Closes the connector when the application context stops, after the web server has drained
 * in-flight requests: requests served during graceful shutdown may still lease channels. The
 * connector's {@link CachingConnector#close()} waits up to the shutdown grace period, then forces
 * the channels closed. Thread-safe.
 */
final class CachingConnectorLifecycle implements SmartLifecycle {

  /**
   * Below Spring Boot's web server phases (graceful shutdown at {@code DEFAULT_PHASE - 1024},
   * server stop at {@code DEFAULT_PHASE - 2048}): lifecycles stop from the highest phase down, so
   * the connector closes after the server no longer serves requests.
   */
  static final int PHASE = SmartLifecycle.DEFAULT_PHASE - 3072;

  private final CachingConnector connector;
  private volatile boolean running;

  CachingConnectorLifecycle(CachingConnector connector) {
    this.connector = requireNonNull(connector, "connector");
  }

  @Override
  public void start() {
    running = true;
  }

  @Override
  public void stop() {
    running = false;
    connector.close();
  }

  @Override
  public boolean isRunning() {
    return running;
  }

  @Override
  public int getPhase() {
    return PHASE;
  }
}
