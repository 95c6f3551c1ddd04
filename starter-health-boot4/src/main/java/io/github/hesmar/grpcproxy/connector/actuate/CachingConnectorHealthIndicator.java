package io.github.hesmar.grpcproxy.connector.actuate;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.grpc.ConnectivityState;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * Health of a {@link CachingConnector}: its counts of channels and leases, and the addresses with a
 * channel in {@link ConnectivityState#TRANSIENT_FAILURE}, each once.
 *
 * <p>UP by default even when channels fail: a backend being down does not make this application
 * down. With {@code downOnTransientFailure}, any failing channel makes it DOWN. Thread-safe.
 */
public class CachingConnectorHealthIndicator extends AbstractHealthIndicator {

  private final CachingConnector connector;
  private final boolean downOnTransientFailure;

  /**
   * Creates the indicator.
   *
   * @param connector the connector to report on
   * @param downOnTransientFailure whether a channel in {@code TRANSIENT_FAILURE} makes the health
   *     DOWN
   */
  public CachingConnectorHealthIndicator(
      CachingConnector connector, boolean downOnTransientFailure) {
    super("gRPC connector health check failed");
    this.connector = requireNonNull(connector, "connector");
    this.downOnTransientFailure = downOnTransientFailure;
  }

  @Override
  protected void doHealthCheck(Health.Builder builder) {
    List<ConnectionInfo> connections = connector.connections();
    // An address can have several channels: each failing address is reported once.
    Set<String> failing = new LinkedHashSet<>();
    int leases = 0;
    for (ConnectionInfo info : connections) {
      leases += info.leases();
      if (info.state() == ConnectivityState.TRANSIENT_FAILURE) {
        failing.add(info.address());
      }
    }
    if (downOnTransientFailure && !failing.isEmpty()) {
      builder.down();
    } else {
      builder.up();
    }
    builder
        .withDetail("connections", connections.size())
        .withDetail("leases", leases)
        .withDetail("transientFailures", List.copyOf(failing));
  }
}
