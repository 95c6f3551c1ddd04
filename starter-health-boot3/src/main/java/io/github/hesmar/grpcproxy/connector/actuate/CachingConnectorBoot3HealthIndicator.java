package io.github.hesmar.grpcproxy.connector.actuate;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.grpc.ConnectivityState;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.actuate.health.AbstractHealthIndicator;
import org.springframework.boot.actuate.health.Health;

/**
 * Health of a {@link CachingConnector} on Spring Boot 3.5 (health API in {@code
 * spring-boot-actuator}): its counts of channels and leases, the addresses with a channel in {@link
 * ConnectivityState#TRANSIENT_FAILURE}, and the addresses that are down, each with since when. The
 * same as {@code CachingConnectorHealthIndicator}, which implements Boot 4's health API; the two
 * are compiled in separate modules against their Boot line and both shipped in the starter jar.
 *
 * <p>An address is down when all its channels are in TRANSIENT_FAILURE: one failing channel beside
 * a sibling that works leaves it up. Only the channels that new dials can lease are judged (not
 * those closing), unless all of the address's channels are closing. It is down since the latest
 * time one of them entered TRANSIENT_FAILURE, that is since all of them fail.
 *
 * <p>UP by default even when addresses are down: a backend being down does not make this
 * application down. With {@code downOnTransientFailure}, an address down makes it DOWN.
 * Thread-safe.
 */
public class CachingConnectorBoot3HealthIndicator extends AbstractHealthIndicator {

  private final Supplier<List<ConnectionInfo>> connections;
  private final boolean downOnTransientFailure;

  /**
   * Creates the indicator.
   *
   * @param connector the connector to report on
   * @param downOnTransientFailure whether an address all of whose channels are in {@code
   *     TRANSIENT_FAILURE} makes the health DOWN
   */
  public CachingConnectorBoot3HealthIndicator(
      CachingConnector connector, boolean downOnTransientFailure) {
    this(requireNonNull(connector, "connector")::connections, downOnTransientFailure);
  }

  /** Creates an indicator over the channels that {@code connections} lists. */
  CachingConnectorBoot3HealthIndicator(
      Supplier<List<ConnectionInfo>> connections, boolean downOnTransientFailure) {
    super("gRPC connector health check failed");
    this.connections = requireNonNull(connections, "connections");
    this.downOnTransientFailure = downOnTransientFailure;
  }

  @Override
  protected void doHealthCheck(Health.Builder builder) {
    List<ConnectionInfo> channels = connections.get();
    // An address can have several channels: each address is reported once.
    Set<String> failing = new LinkedHashSet<>();
    Map<String, List<ConnectionInfo>> byAddress = new LinkedHashMap<>();
    int leases = 0;
    for (ConnectionInfo info : channels) {
      leases += info.leases();
      byAddress.computeIfAbsent(info.address(), address -> new ArrayList<>()).add(info);
      if (info.state() == ConnectivityState.TRANSIENT_FAILURE) {
        failing.add(info.address());
      }
    }
    Map<String, Instant> downSince = new TreeMap<>();
    for (String address : failing) {
      Instant since = downSince(requireNonNull(byAddress.get(address), address));
      if (since != null) {
        downSince.put(address, since);
      }
    }
    if (downOnTransientFailure && !downSince.isEmpty()) {
      builder.down();
    } else {
      builder.up();
    }
    builder
        .withDetail("connections", channels.size())
        .withDetail("leases", leases)
        .withDetail("transientFailures", List.copyOf(failing))
        .withDetail("downSince", Collections.unmodifiableMap(downSince));
  }

  /**
   * Since when all the judged channels of one address are in TRANSIENT_FAILURE (see the class
   * comment), or null if one of them is not.
   */
  private static @Nullable Instant downSince(List<ConnectionInfo> channels) {
    List<ConnectionInfo> leasable = channels.stream().filter(info -> !info.closing()).toList();
    Instant since = null;
    for (ConnectionInfo info : leasable.isEmpty() ? channels : leasable) {
      if (info.state() != ConnectivityState.TRANSIENT_FAILURE) {
        return null;
      }
      // A channel that reports its state has stateSince; createdAt only stands in for safety.
      Instant entered = Objects.requireNonNullElse(info.stateSince(), info.createdAt());
      if (since == null || entered.isAfter(since)) {
        since = entered;
      }
    }
    return since;
  }
}
