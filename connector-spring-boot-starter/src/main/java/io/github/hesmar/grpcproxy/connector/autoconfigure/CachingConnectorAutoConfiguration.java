package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.ChannelCredentials;
import io.grpc.TlsChannelCredentials;
import java.time.Duration;
import java.util.Map;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
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
 * the application context. The connector bean backs off when the application defines its own (one
 * or several); scheduled expiry and closing then cover every {@code CachingConnector} bean.
 *
 * <p>Runs before {@link TaskSchedulingAutoConfiguration} so that, when expiry is on, the scheduler
 * that Spring Boot auto-configures for {@code @EnableScheduling} runs the expiry passes.
 */
@AutoConfiguration(
    after = SslAutoConfiguration.class,
    before = TaskSchedulingAutoConfiguration.class)
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
      ObjectProvider<DefaultChannelCredentials> defaultCredentials,
      ObjectProvider<CachingConnectorBuilderCustomizer> customizers) {
    CachingConnector.Builder builder = CachingConnector.builder();
    builder.dialer(
        dialer.getIfAvailable(
            () -> defaultDialer(properties, channelCustomizers, sslBundles, defaultCredentials)));
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
    CachingConnectorProperties.SilentChannel silentChannel = properties.getSilentChannel();
    Duration silence = silentChannel.getSilence();
    if (silence != null) {
      builder.silentChannel(silentChannel.getFailedCalls(), silence);
    }
    builder.retireSilentChannels(silentChannel.isRetire());
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
      ObjectProvider<SslBundles> sslBundles,
      ObjectProvider<DefaultChannelCredentials> defaultCredentials) {
    ChannelCredentials tls = TlsChannelCredentials.create();
    DefaultChannelCredentials fallback = defaultCredentials.getIfAvailable(() -> address -> tls);
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
        fallback::forAddress,
        channelCustomizers.orderedStream().toList());
  }

  @Bean
  @ConditionalOnMissingBean
  CachingConnectorLifecycle cachingConnectorLifecycle(Map<String, CachingConnector> connectors) {
    return new CachingConnectorLifecycle(connectors);
  }

  /** Scheduled expiry of every connector bean; enables scheduling only when expiry is on. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnBooleanProperty(name = "grpc.connector.expiry.enabled", matchIfMissing = true)
  @EnableScheduling
  static class ExpiryConfiguration {

    @Bean
    @ConditionalOnMissingBean
    CachingConnectorExpiry cachingConnectorExpiry(Map<String, CachingConnector> connectors) {
      return new CachingConnectorExpiry(connectors);
    }
  }
}
