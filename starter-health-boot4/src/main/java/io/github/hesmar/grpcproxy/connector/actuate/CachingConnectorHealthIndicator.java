package io.github.hesmar.grpcproxy.connector.actuate;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.grpc.ConnectivityState;
import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * Health of a {@link CachingConnector}: its counts of channels and leases, and the addresses of the
 * channels in {@link ConnectivityState#TRANSIENT_FAILURE}.
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
    List<String> failing = new ArrayList<>();
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
        .withDetail("transientFailures", failing);
  }
}
