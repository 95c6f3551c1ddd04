package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.actuate.CachingConnectorHealthIndicator;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnSingleCandidate;
import org.springframework.boot.health.autoconfigure.contributor.ConditionalOnEnabledHealthIndicator;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configuration of the {@code grpcConnector} health contributor. Switched off with {@code
 * management.health.grpcconnector.enabled=false}.
 */
@AutoConfiguration(after = CachingConnectorAutoConfiguration.class)
@ConditionalOnClass({HealthIndicator.class, ConditionalOnEnabledHealthIndicator.class})
@ConditionalOnEnabledHealthIndicator("grpcconnector")
public final class CachingConnectorHealthContributorAutoConfiguration {

  @Bean
  @ConditionalOnMissingBean(name = "grpcConnectorHealthIndicator")
  @ConditionalOnSingleCandidate(CachingConnector.class)
  CachingConnectorHealthIndicator grpcConnectorHealthIndicator(
      CachingConnector cachingConnector, ObjectProvider<CachingConnectorProperties> properties) {
    CachingConnectorProperties configured = properties.getIfAvailable();
    return new CachingConnectorHealthIndicator(
        cachingConnector, configured != null && configured.getHealth().isDownOnTransientFailure());
  }
}
