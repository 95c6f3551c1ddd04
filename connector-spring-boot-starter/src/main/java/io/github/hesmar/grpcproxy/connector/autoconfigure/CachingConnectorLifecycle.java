package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import java.util.Collections;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.springframework.context.SmartLifecycle;

/**
 * Closes every {@code CachingConnector} bean of the context, the auto-configured one or the
 * application's own, when the context stops, after the web server has drained in-flight requests:
 * requests served during graceful shutdown may still lease channels. Each connector's {@link
 * CachingConnector#close()} waits up to its shutdown grace period, then forces its channels closed;
 * connectors close one after the other in bean name order (so the stop takes at most the sum of
 * their grace periods), and one whose close throws is logged and does not stop the others. Spring's
 * own destroy callback closes them again later, a no-op ({@code close()} is idempotent).
 * Thread-safe.
 */
final class CachingConnectorLifecycle implements SmartLifecycle {

  private static final Log logger = LogFactory.getLog(CachingConnectorLifecycle.class);

  /**
   * Below Spring Boot's web server phases (graceful shutdown at {@code DEFAULT_PHASE - 1024},
   * server stop at {@code DEFAULT_PHASE - 2048}): lifecycles stop from the highest phase down, so
   * the connectors close after the server no longer serves requests.
   */
  static final int PHASE = SmartLifecycle.DEFAULT_PHASE - 3072;

  private final SortedMap<String, CachingConnector> connectors;
  private volatile boolean running;

  CachingConnectorLifecycle(Map<String, CachingConnector> connectors) {
    this.connectors = Collections.unmodifiableSortedMap(new TreeMap<>(connectors));
  }

  @Override
  public void start() {
    running = true;
  }

  @Override
  public void stop() {
    running = false;
    connectors.forEach(
        (name, connector) -> {
          try {
            connector.close();
          } catch (RuntimeException e) {
            logger.warn("Closing CachingConnector '" + name + "' failed", e);
          }
        });
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
