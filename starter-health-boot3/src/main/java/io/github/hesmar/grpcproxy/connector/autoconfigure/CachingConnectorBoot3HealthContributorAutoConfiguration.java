package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.actuate.CachingConnectorBoot3HealthIndicator;
import org.springframework.boot.actuate.autoconfigure.health.ConditionalOnEnabledHealthIndicator;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnSingleCandidate;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.annotation.Bean;
import org.springframework.core.env.Environment;

/**
 * Auto-configuration of the {@code grpcConnector} health contributor on Spring Boot 3.5, whose
 * health API is in {@code spring-boot-actuator}. Switched off with {@code
 * management.health.grpcconnector.enabled=false}. The contributor lists the addresses all of whose
 * channels are in TRANSIENT_FAILURE, with since when, and is DOWN for them only with {@code
 * grpc.connector.health.down-on-transient-failure=true}.
 *
 * <p>Compiled against Boot 3.5 in its own module and merged into the starter jar. On Boot 4 the
 * class condition, which names its classes as strings, skips it before any Boot 3 type is loaded,
 * and {@code CachingConnectorHealthContributorAutoConfiguration} applies instead.
 */
@AutoConfiguration(
    afterName =
        "io.github.hesmar.grpcproxy.connector.autoconfigure.CachingConnectorAutoConfiguration")
@ConditionalOnClass(
    name = {
      "org.springframework.boot.actuate.health.HealthIndicator",
      "org.springframework.boot.actuate.autoconfigure.health.ConditionalOnEnabledHealthIndicator"
    })
@ConditionalOnEnabledHealthIndicator("grpcconnector")
public final class CachingConnectorBoot3HealthContributorAutoConfiguration {

  @Bean
  @ConditionalOnMissingBean(name = "grpcConnectorHealthIndicator")
  @ConditionalOnSingleCandidate(CachingConnector.class)
  CachingConnectorBoot3HealthIndicator grpcConnectorHealthIndicator(
      CachingConnector cachingConnector, Environment environment) {
    return new CachingConnectorBoot3HealthIndicator(
        cachingConnector, downOnTransientFailure(environment));
  }

  /**
   * {@code grpc.connector.health.down-on-transient-failure}, bound like {@code
   * CachingConnectorProperties} binds it: this module is compiled without the starter's classes.
   */
  static boolean downOnTransientFailure(Environment environment) {
    return Binder.get(environment)
        .bind("grpc.connector.health.down-on-transient-failure", Boolean.class)
        .orElse(false);
  }
}
