package io.github.hesmar.grpcproxy.connector.autoconfigure;

import java.util.Map;
import org.springframework.boot.actuate.autoconfigure.metrics.CompositeMeterRegistryAutoConfiguration;
import org.springframework.boot.actuate.autoconfigure.metrics.MetricsAutoConfiguration;
import org.springframework.boot.actuate.autoconfigure.metrics.export.simple.SimpleMetricsExportAutoConfiguration;
import org.springframework.boot.actuate.health.Health;
import org.springframework.boot.actuate.health.HealthIndicator;
import org.springframework.boot.web.context.WebServerGracefulShutdownLifecycle;
import org.springframework.context.ApplicationContext;
import org.springframework.context.SmartLifecycle;

/**
 * The Spring Boot types the tests use that Boot 4 moved: this is the Boot 3.5 copy, in
 * src/test/boot3; src/test/boot4 has the Boot 4 one. The build compiles the one of the major
 * version of {@code spring-boot.version}.
 */
final class BootLine {

  /** Boot's metrics auto-configurations, in {@code spring-boot-actuator-autoconfigure}. */
  static final Class<?>[] METRICS_AUTO_CONFIGURATIONS = {
    MetricsAutoConfiguration.class,
    CompositeMeterRegistryAutoConfiguration.class,
    SimpleMetricsExportAutoConfiguration.class
  };

  /** Boot's health API, in {@code spring-boot-actuator}. */
  static final Class<?> HEALTH_INDICATOR = HealthIndicator.class;

  /** The starter's health contributor auto-configuration for this Boot line. */
  static final Class<?> HEALTH_AUTO_CONFIGURATION =
      CachingConnectorBoot3HealthContributorAutoConfiguration.class;

  /**
   * The phase of Boot 3.5's servlet {@code WebServerStartStopLifecycle}, a package-private class:
   * {@code SmartLifecycle.DEFAULT_PHASE - 2048}, as Boot 4 names it.
   */
  static final int WEB_SERVER_START_STOP_PHASE = SmartLifecycle.DEFAULT_PHASE - 2048;

  static final int WEB_SERVER_GRACEFUL_SHUTDOWN_PHASE =
      WebServerGracefulShutdownLifecycle.SMART_LIFECYCLE_PHASE;

  private BootLine() {}

  /** The {@code grpcConnectorHealthIndicator} bean's health, with details. */
  static HealthReport health(ApplicationContext context) {
    Health health =
        context.getBean("grpcConnectorHealthIndicator", HealthIndicator.class).getHealth(true);
    return new HealthReport(health.getStatus().getCode(), Map.copyOf(health.getDetails()));
  }
}
