package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.micrometer.core.instrument.binder.grpc.GrpcClientObservationConvention;
import io.micrometer.core.instrument.binder.grpc.ObservationGrpcClientInterceptor;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.observation.ObservationRegistry;
import java.lang.annotation.Annotation;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionMessage;
import org.springframework.boot.autoconfigure.condition.ConditionOutcome;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.SpringBootCondition;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.ConditionContext;
import org.springframework.context.annotation.Conditional;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.ConfigurationCondition;
import org.springframework.core.type.AnnotatedTypeMetadata;
import org.springframework.util.ClassUtils;

/**
 * Per-call observations on the channels of the default dialer, and a bound on the {@code
 * grpc.client} meters they create.
 *
 * <p>The channels get Micrometer's {@link ObservationGrpcClientInterceptor}, with the application's
 * {@link GrpcClientObservationConvention} bean if it has one, unless the application has a global
 * one: with Spring gRPC (Spring Boot 4.1's {@code spring-boot-grpc-client}) Boot declares {@code
 * grpcClientObservationInterceptor} as a {@code @GlobalClientInterceptor}, which the channels get
 * with the other global interceptors ({@link CachingConnectorSpringGrpcAutoConfiguration}), so a
 * second one would measure every call twice.
 *
 * <p>Runs after the observation auto-configurations of both Boot lines (Boot 4 moved them) and
 * after the gRPC client observation of Boot 4.1 and of spring-grpc 1.0's own auto-configuration,
 * whose global interceptor it must see; names of absent classes are ignored.
 */
@AutoConfiguration(
    after = CachingConnectorAutoConfiguration.class,
    afterName = {
      "org.springframework.boot.micrometer.observation.autoconfigure.ObservationAutoConfiguration",
      "org.springframework.boot.actuate.autoconfigure.observation.ObservationAutoConfiguration",
      "org.springframework.boot.grpc.client.autoconfigure.GrpcClientObservationAutoConfiguration",
      "org.springframework.grpc.autoconfigure.client.GrpcClientObservationAutoConfiguration"
    })
@ConditionalOnClass({
  CachingConnector.class,
  ObservationRegistry.class,
  ObservationGrpcClientInterceptor.class
})
@ConditionalOnBean(CachingConnector.class)
@ConditionalOnBooleanProperty(name = "grpc.connector.observation.enabled", matchIfMissing = true)
public final class CachingConnectorObservationAutoConfiguration {

  /** See {@link GrpcClientMeterFilter}. */
  @Bean
  MeterFilter cachingConnectorGrpcClientMeterFilter(CachingConnectorProperties properties) {
    return new GrpcClientMeterFilter(properties.getObservation().getMaxMethodTags());
  }

  /** The connector's own interceptor, when the application has no global one. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnBean(ObservationRegistry.class)
  @Conditional(NoGlobalObservationInterceptor.class)
  static class InterceptorConfiguration {

    @Bean
    ChannelBuilderCustomizer cachingConnectorObservationCustomizer(
        ObservationRegistry observationRegistry,
        ObjectProvider<GrpcClientObservationConvention> convention) {
      ObservationGrpcClientInterceptor interceptor =
          new ObservationGrpcClientInterceptor(observationRegistry);
      convention.ifAvailable(interceptor::setCustomConvention);
      return (address, builder) -> builder.intercept(interceptor);
    }
  }

  /**
   * Matches unless an {@link ObservationGrpcClientInterceptor} bean is a Spring gRPC global client
   * interceptor. Spring gRPC is optional, so its annotation is resolved by name.
   */
  static final class NoGlobalObservationInterceptor extends SpringBootCondition
      implements ConfigurationCondition {

    private static final String GLOBAL_CLIENT_INTERCEPTOR =
        "org.springframework.grpc.client.GlobalClientInterceptor";

    @Override
    public ConfigurationPhase getConfigurationPhase() {
      return ConfigurationPhase.REGISTER_BEAN;
    }

    @Override
    public ConditionOutcome getMatchOutcome(
        ConditionContext context, AnnotatedTypeMetadata metadata) {
      ConditionMessage.Builder message =
          ConditionMessage.forCondition("NoGlobalObservationInterceptor");
      ConfigurableListableBeanFactory beanFactory = context.getBeanFactory();
      ClassLoader classLoader = context.getClassLoader();
      if (beanFactory == null || !ClassUtils.isPresent(GLOBAL_CLIENT_INTERCEPTOR, classLoader)) {
        return ConditionOutcome.match(message.because("Spring gRPC is absent"));
      }
      @SuppressWarnings("unchecked")
      Class<? extends Annotation> global =
          (Class<? extends Annotation>)
              ClassUtils.resolveClassName(GLOBAL_CLIENT_INTERCEPTOR, classLoader);
      for (String name :
          beanFactory.getBeanNamesForType(ObservationGrpcClientInterceptor.class, true, false)) {
        if (beanFactory.findAnnotationOnBean(name, global, false) != null) {
          return ConditionOutcome.noMatch(
              message.because("'" + name + "' is a global client interceptor"));
        }
      }
      return ConditionOutcome.match(message.because("no global observation interceptor"));
    }
  }
}
