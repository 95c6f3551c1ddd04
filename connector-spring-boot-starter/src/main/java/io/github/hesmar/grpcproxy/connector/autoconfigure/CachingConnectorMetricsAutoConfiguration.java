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
import org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration;
import org.springframework.boot.micrometer.metrics.autoconfigure.MetricsAutoConfiguration;
import org.springframework.boot.micrometer.metrics.autoconfigure.export.simple.SimpleMetricsExportAutoConfiguration;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configuration of the Micrometer meters of the auto-configured {@link CachingConnector}.
 *
 * <p>The meters are fed by a listener that must be registered when the connector is built, so
 * they count the events of the connector built by {@link CachingConnectorAutoConfiguration}; an
 * application that builds its own connector registers the {@link CachingConnectorMetrics} bean as
 * its listener.
 */
@AutoConfiguration(
    after = {
      MetricsAutoConfiguration.class,
      CompositeMeterRegistryAutoConfiguration.class,
      SimpleMetricsExportAutoConfiguration.class,
      CachingConnectorAutoConfiguration.class
    })
@ConditionalOnClass({MeterRegistry.class, MetricsAutoConfiguration.class})
@ConditionalOnBean({MeterRegistry.class, CachingConnector.class})
public final class CachingConnectorMetricsAutoConfiguration {

  @Bean
  @ConditionalOnMissingBean
  CachingConnectorMetrics cachingConnectorMetrics(ObjectProvider<CachingConnector> connector) {
    return new CachingConnectorMetrics(
        connector::getIfUnique, CachingConnectorAutoConfiguration.CONNECTOR_BEAN_NAME, Tags.empty());
  }

  @Bean
  CachingConnectorBuilderCustomizer cachingConnectorMetricsListener(
      CachingConnectorMetrics cachingConnectorMetrics) {
    return builder -> builder.listener(cachingConnectorMetrics);
  }
}
