package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.metrics.CachingConnectorMetrics;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configuration of the Micrometer meters of the auto-configured {@link CachingConnector}.
 *
 * <p>The meters are fed by a listener that must be registered when the connector is built, so they
 * count the events of the connector built by {@link CachingConnectorAutoConfiguration}; an
 * application that builds its own connector registers the {@link CachingConnectorMetrics} bean as
 * its listener. The {@value CachingConnectorMetrics#CHANNELS_MAX} gauge is registered when {@code
 * grpc.connector.maximum-channels} is set.
 *
 * <p>Runs after Spring Boot's metrics auto-configurations, which are named for both Boot lines:
 * Boot 4 moved them from {@code spring-boot-actuator-autoconfigure} to {@code
 * spring-boot-micrometer-metrics}. Names of absent classes are ignored.
 */
@AutoConfiguration(
    after = CachingConnectorAutoConfiguration.class,
    afterName = {
      // Spring Boot 4
      "org.springframework.boot.micrometer.metrics.autoconfigure.MetricsAutoConfiguration",
      "org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration",
      "org.springframework.boot.micrometer.metrics.autoconfigure.export.simple.SimpleMetricsExportAutoConfiguration",
      // Spring Boot 3.5
      "org.springframework.boot.actuate.autoconfigure.metrics.MetricsAutoConfiguration",
      "org.springframework.boot.actuate.autoconfigure.metrics.CompositeMeterRegistryAutoConfiguration",
      "org.springframework.boot.actuate.autoconfigure.metrics.export.simple.SimpleMetricsExportAutoConfiguration"
    })
@ConditionalOnClass(MeterRegistry.class)
@ConditionalOnBean({MeterRegistry.class, CachingConnector.class})
public final class CachingConnectorMetricsAutoConfiguration {

  @Bean
  @ConditionalOnMissingBean
  CachingConnectorMetrics cachingConnectorMetrics(
      ObjectProvider<CachingConnector> connector,
      ObjectProvider<CachingConnectorProperties> properties) {
    CachingConnectorProperties configured = properties.getIfAvailable();
    Integer maximumChannels = configured == null ? null : configured.getMaximumChannels();
    String name = CachingConnectorAutoConfiguration.CONNECTOR_BEAN_NAME;
    return maximumChannels == null
        ? new CachingConnectorMetrics(connector::getIfUnique, name, Tags.empty())
        : new CachingConnectorMetrics(connector::getIfUnique, name, Tags.empty(), maximumChannels);
  }

  @Bean
  CachingConnectorBuilderCustomizer cachingConnectorMetricsListener(
      CachingConnectorMetrics cachingConnectorMetrics) {
    return builder -> builder.listener(cachingConnectorMetrics);
  }
}
