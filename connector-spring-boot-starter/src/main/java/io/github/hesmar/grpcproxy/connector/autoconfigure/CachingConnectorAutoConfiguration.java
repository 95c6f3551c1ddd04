package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.ChannelCredentials;
import io.grpc.TlsChannelCredentials;
import io.micrometer.core.instrument.binder.grpc.ObservationGrpcClientInterceptor;
import io.micrometer.observation.ObservationRegistry;
import java.time.Duration;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.ssl.SslAutoConfiguration;
import org.springframework.boot.autoconfigure.task.TaskSchedulingAutoConfiguration;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.ssl.NoSuchSslBundleException;
import org.springframework.boot.ssl.SslBundles;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.scheduling.annotation.EnableScheduling;

/**
 * Auto-configuration of a {@link CachingConnector} bean, its scheduled expiry and its closing with
 * the application context.
 *
 * <p>Runs before {@link TaskSchedulingAutoConfiguration} so that, when expiry is on, the scheduler
 * that Spring Boot auto-configures for {@code @EnableScheduling} runs the expiry passes.
 */
@AutoConfiguration(
    after = SslAutoConfiguration.class,
    before = TaskSchedulingAutoConfiguration.class,
    afterName = {
      // The ObservationRegistry: Spring Boot 4, then Spring Boot 3.5. Absent names are ignored.
      "org.springframework.boot.micrometer.observation.autoconfigure.ObservationAutoConfiguration",
      "org.springframework.boot.actuate.autoconfigure.observation.ObservationAutoConfiguration"
    })
@ConditionalOnClass(CachingConnector.class)
@ConditionalOnBooleanProperty(name = "grpc.connector.enabled", matchIfMissing = true)
@EnableConfigurationProperties(CachingConnectorProperties.class)
public final class CachingConnectorAutoConfiguration {

  /** The name of the auto-configured connector bean, also its meters' {@code name} tag. */
  public static final String CONNECTOR_BEAN_NAME = "cachingConnector";

  @Bean(name = CONNECTOR_BEAN_NAME)
  @ConditionalOnMissingBean
  CachingConnector cachingConnector(
      CachingConnectorProperties properties,
      ObjectProvider<Dialer> dialer,
      ObjectProvider<ChannelBuilderCustomizer> channelCustomizers,
      ObjectProvider<SslBundles> sslBundles,
      ObjectProvider<CachingConnectorBuilderCustomizer> customizers) {
    CachingConnector.Builder builder = CachingConnector.builder();
    builder.dialer(
        dialer.getIfAvailable(() -> defaultDialer(properties, channelCustomizers, sslBundles)));
    Duration leakDetectionThreshold = properties.getLeakDetectionThreshold();
    if (leakDetectionThreshold != null) {
      builder.leakDetectionThreshold(leakDetectionThreshold);
    }
    Duration dialTimeout = properties.getDialTimeout();
    if (dialTimeout != null) {
      builder.dialTimeout(dialTimeout);
    }
    builder.maxCallsPerChannel(properties.getPool().getMaxCallsPerChannel());
    builder.maxChannelsPerAddress(properties.getPool().getMaxChannelsPerAddress());
    Integer maximumChannels = properties.getMaximumChannels();
    if (maximumChannels != null) {
      builder.maximumChannels(maximumChannels);
    }
    Duration maxChannelAge = properties.getMaxChannelAge();
    if (maxChannelAge != null) {
      builder.maxChannelAge(maxChannelAge);
    }
    Duration gracePeriod = properties.getShutdown().getGracePeriod();
    if (gracePeriod != null) {
      builder.shutdownGracePeriod(gracePeriod);
    }
    customizers.orderedStream().forEach(customizer -> customizer.customize(builder));
    return builder.build();
  }

  private static Dialer defaultDialer(
      CachingConnectorProperties properties,
      ObjectProvider<ChannelBuilderCustomizer> channelCustomizers,
      ObjectProvider<SslBundles> sslBundles) {
    ChannelCredentials tls = TlsChannelCredentials.create();
    return new ConfiguredDialer(
        properties.getChannel(),
        properties.getTargets(),
        (property, name) -> {
          SslBundles bundles = sslBundles.getIfAvailable();
          if (bundles == null) {
            throw new IllegalStateException(
                property + " is set to '" + name + "' but there is no SslBundles bean");
          }
          try {
            return bundles.getBundle(name);
          } catch (NoSuchSslBundleException e) {
            // Not chained: the start-up failure's root cause then names the property.
            throw new IllegalStateException(
                property
                    + " is set to '"
                    + name
                    + "' but there is no such SSL bundle (spring.ssl.bundle.*): "
                    + e.getMessage());
          }
        },
        address -> tls,
        channelCustomizers.orderedStream().toList());
  }

  @Bean
  @ConditionalOnMissingBean
  CachingConnectorLifecycle cachingConnectorLifecycle(CachingConnector cachingConnector) {
    return new CachingConnectorLifecycle(cachingConnector);
  }

  /** Scheduled expiry; enables scheduling only when expiry is on. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnBooleanProperty(name = "grpc.connector.expiry.enabled", matchIfMissing = true)
  @EnableScheduling
  static class ExpiryConfiguration {

    @Bean
    @ConditionalOnMissingBean
    CachingConnectorExpiry cachingConnectorExpiry(CachingConnector cachingConnector) {
      return new CachingConnectorExpiry(cachingConnector);
    }
  }

  /** Per-call observations on the channels of the default dialer. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass({ObservationRegistry.class, ObservationGrpcClientInterceptor.class})
  @ConditionalOnBean(ObservationRegistry.class)
  @ConditionalOnBooleanProperty(name = "grpc.connector.observation.enabled", matchIfMissing = true)
  static class ObservationConfiguration {

    @Bean
    ChannelBuilderCustomizer cachingConnectorObservationCustomizer(
        ObservationRegistry observationRegistry) {
      ObservationGrpcClientInterceptor interceptor =
          new ObservationGrpcClientInterceptor(observationRegistry);
      return (address, builder) -> builder.intercept(interceptor);
    }
  }
}
