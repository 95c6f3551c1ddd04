package io.github.hesmar.grpcproxy.connector.autoconfigure;

import java.util.Map;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration;
import org.springframework.boot.micrometer.metrics.autoconfigure.MetricsAutoConfiguration;
import org.springframework.boot.micrometer.metrics.autoconfigure.export.simple.SimpleMetricsExportAutoConfiguration;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ApplicationContext;

/**
 * The Spring Boot types the tests use that Boot 4 moved: this is the Boot 4 copy, in
 * src/test/boot4; src/test/boot3 has the Boot 3.5 one. The build compiles the one of the major
 * version of {@code spring-boot.version}.
 */
final class BootLine {

  /** Boot's metrics auto-configurations, in {@code spring-boot-micrometer-metrics}. */
  static final Class<?>[] METRICS_AUTO_CONFIGURATIONS = {
    MetricsAutoConfiguration.class,
    CompositeMeterRegistryAutoConfiguration.class,
    SimpleMetricsExportAutoConfiguration.class
  };

  /** Boot's health API, in {@code spring-boot-health}. */
  static final Class<?> HEALTH_INDICATOR = HealthIndicator.class;

  /** The starter's health contributor auto-configuration for this Boot line. */
  static final Class<?> HEALTH_AUTO_CONFIGURATION =
      CachingConnectorHealthContributorAutoConfiguration.class;

  static final int WEB_SERVER_START_STOP_PHASE =
      WebServerApplicationContext.START_STOP_LIFECYCLE_PHASE;

  static final int WEB_SERVER_GRACEFUL_SHUTDOWN_PHASE =
      WebServerApplicationContext.GRACEFUL_SHUTDOWN_PHASE;

  private BootLine() {}

  /** The {@code grpcConnectorHealthIndicator} bean's health, with details. */
  static HealthReport health(ApplicationContext context) {
    Health health =
        context.getBean("grpcConnectorHealthIndicator", HealthIndicator.class).health(true);
    return new HealthReport(health.getStatus().getCode(), Map.copyOf(health.getDetails()));
  }
}
