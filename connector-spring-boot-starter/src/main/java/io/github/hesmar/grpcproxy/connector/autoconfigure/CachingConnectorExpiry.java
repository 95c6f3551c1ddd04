package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import java.util.List;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.springframework.scheduling.annotation.Scheduled;

/**
 * Runs {@link CachingConnector#expire()} every {@code grpc.connector.expiry.interval} (a fixed
 * delay between the end of a pass and the start of the next) and logs at debug what each pass
 * closed. Thread-safe: {@code expire()} serializes itself.
 */
final class CachingConnectorExpiry {

  private static final Log logger = LogFactory.getLog(CachingConnectorExpiry.class);

  private final CachingConnector connector;

  CachingConnectorExpiry(CachingConnector connector) {
    this.connector = requireNonNull(connector, "connector");
  }

  @Scheduled(
      initialDelayString = "${grpc.connector.expiry.interval:30s}",
      fixedDelayString = "${grpc.connector.expiry.interval:30s}")
  void expire() {
    List<String> closed = connector.expire();
    if (logger.isDebugEnabled()) {
      if (closed.isEmpty()) {
        logger.debug("Expiry pass closed no channel; " + connector.connectionCount() + " open");
      } else {
        logger.debug(
            "Expiry pass closed "
                + closed.size()
                + " channel(s): "
                + closed
                + "; "
                + connector.connectionCount()
                + " open");
      }
    }
  }
}
