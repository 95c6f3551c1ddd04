package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.actuate.CachingConnectorEndpoint;
import org.springframework.boot.actuate.autoconfigure.endpoint.condition.ConditionalOnAvailableEndpoint;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnSingleCandidate;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configuration of the {@link CachingConnectorEndpoint} ({@code grpcconnections}). Like every
 * actuator endpoint it is available over HTTP only when exposed, for example with {@code
 * management.endpoints.web.exposure.include=health,grpcconnections}.
 */
@AutoConfiguration(after = CachingConnectorAutoConfiguration.class)
@ConditionalOnClass({Endpoint.class, ConditionalOnAvailableEndpoint.class})
@ConditionalOnAvailableEndpoint(CachingConnectorEndpoint.class)
public final class CachingConnectorEndpointAutoConfiguration {

  @Bean
  @ConditionalOnMissingBean
  @ConditionalOnSingleCandidate(CachingConnector.class)
  CachingConnectorEndpoint cachingConnectorEndpoint(CachingConnector cachingConnector) {
    return new CachingConnectorEndpoint(cachingConnector);
  }
}
