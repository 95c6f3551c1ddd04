package io.github.hesmar.grpcproxy.connector.actuate;

import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import java.util.List;
import java.util.Map;
import org.springframework.boot.health.contributor.Health;

/**
 * The health indicator of the Boot line under test, over channels listed by hand: this is the Boot
 * 4 copy, in src/test/boot4; src/test/boot3 has the Boot 3.5 one.
 */
final class BootLineIndicator {

  private BootLineIndicator() {}

  /** The health, with details, of an indicator that finds {@code connections}. */
  static IndicatorHealth health(List<ConnectionInfo> connections, boolean downOnTransientFailure) {
    Health health =
        new CachingConnectorHealthIndicator(() -> connections, downOnTransientFailure)
            .health(/* includeDetails= */ true);
    return new IndicatorHealth(health.getStatus().getCode(), Map.copyOf(health.getDetails()));
  }
}
