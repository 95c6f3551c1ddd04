package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.actuate.CachingConnectorEndpoint;
import io.github.hesmar.grpcproxy.connector.actuate.LastExpiryPasses;
import java.time.InstantSource;
import java.util.Map;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.actuate.autoconfigure.endpoint.condition.ConditionalOnAvailableEndpoint;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configuration of the {@link CachingConnectorEndpoint} ({@code grpcconnections}) over every
 * {@link CachingConnector} bean, with the last expiry passes recorded by the starter's scheduled
 * expiry (none when {@code grpc.connector.expiry.enabled=false}). Like every actuator endpoint it
 * is available over HTTP only when exposed, for example with {@code
 * management.endpoints.web.exposure.include=health,grpcconnections}.
 */
@AutoConfiguration(after = CachingConnectorAutoConfiguration.class)
@ConditionalOnClass({Endpoint.class, ConditionalOnAvailableEndpoint.class})
@ConditionalOnAvailableEndpoint(CachingConnectorEndpoint.class)
public final class CachingConnectorEndpointAutoConfiguration {

  @Bean
  @ConditionalOnMissingBean
  @ConditionalOnBean(CachingConnector.class)
  CachingConnectorEndpoint cachingConnectorEndpoint(
      Map<String, CachingConnector> connectors, ObjectProvider<CachingConnectorExpiry> expiry) {
    CachingConnectorExpiry recorded = expiry.getIfAvailable();
    LastExpiryPasses lastExpiryPasses = recorded != null ? recorded : LastExpiryPasses.NONE;
    return new CachingConnectorEndpoint(connectors, lastExpiryPasses, InstantSource.system());
  }
}
