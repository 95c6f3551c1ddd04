package io.github.hesmar.grpcproxy.connector.actuate;

import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import java.util.List;
import java.util.Map;
import org.springframework.boot.actuate.health.Health;

/**
 * The health indicator of the Boot line under test, over channels listed by hand: this is the Boot
 * 3.5 copy, in src/test/boot3; src/test/boot4 has the Boot 4 one.
 */
final class BootLineIndicator {

  private BootLineIndicator() {}

  /** The health, with details, of an indicator that finds {@code connections}. */
  static IndicatorHealth health(List<ConnectionInfo> connections, boolean downOnTransientFailure) {
    Health health =
        new CachingConnectorBoot3HealthIndicator(() -> connections, downOnTransientFailure)
            .getHealth(/* includeDetails= */ true);
    return new IndicatorHealth(health.getStatus().getCode(), Map.copyOf(health.getDetails()));
  }
}
