package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.actuate.ExpiryPass;
import io.github.hesmar.grpcproxy.connector.actuate.LastExpiryPasses;
import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.jspecify.annotations.Nullable;
import org.springframework.scheduling.annotation.Scheduled;

/**
 * Runs {@link CachingConnector#expire()} on every {@code CachingConnector} bean of the context, the
 * auto-configured one or the application's own, every {@code grpc.connector.expiry.interval} (a
 * fixed delay between the end of a pass and the start of the next), one connector after the other
 * in bean name order. Records each connector's last pass (when it began, on the given clock, and
 * what it closed) for the {@code grpcconnections} endpoint, and logs it at debug. A connector whose
 * pass throws is logged and does not stop the others.
 *
 * <p>Thread-safe: {@code expire()} serializes itself, and the record of last passes is a concurrent
 * map that each pass replaces one entry of.
 */
final class CachingConnectorExpiry implements LastExpiryPasses {

  private static final Log logger = LogFactory.getLog(CachingConnectorExpiry.class);

  private final SortedMap<String, CachingConnector> connectors;
  private final Clock clock;
  private final ConcurrentMap<String, ExpiryPass> lastPasses = new ConcurrentHashMap<>();

  /**
   * Expires {@code connectors}, timing passes on the system clock (UTC).
   *
   * @param connectors the connectors, by bean name
   */
  CachingConnectorExpiry(Map<String, CachingConnector> connectors) {
    this(connectors, Clock.systemUTC());
  }

  CachingConnectorExpiry(Map<String, CachingConnector> connectors, Clock clock) {
    this.connectors = Collections.unmodifiableSortedMap(new TreeMap<>(connectors));
    this.clock = requireNonNull(clock, "clock");
  }

  @Scheduled(
      initialDelayString = "${grpc.connector.expiry.interval:30s}",
      fixedDelayString = "${grpc.connector.expiry.interval:30s}")
  void expire() {
    connectors.forEach(this::expire);
  }

  private void expire(String name, CachingConnector connector) {
    Instant at = clock.instant().truncatedTo(ChronoUnit.MILLIS); // as the channels' times
    List<String> closed;
    try {
      closed = connector.expire();
    } catch (RuntimeException e) {
      logger.warn("Expiry pass of CachingConnector '" + name + "' failed", e);
      return;
    }
    lastPasses.put(name, new ExpiryPass(at, closed));
    if (logger.isDebugEnabled()) {
      logger.debug(
          "Expiry pass of '"
              + name
              + "' closed "
              + (closed.isEmpty() ? "no channel" : closed.size() + " channel(s): " + closed)
              + "; "
              + connector.connectionCount()
              + " open");
    }
  }

  @Override
  public @Nullable ExpiryPass lastPass(String connectorName) {
    return lastPasses.get(connectorName);
  }
}
