package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.Objects.requireNonNull;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.ManagedChannelBuilder;
import io.grpc.TlsChannelCredentials;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.jspecify.annotations.Nullable;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.boot.util.LambdaSafe;
import org.springframework.core.Ordered;
import org.springframework.core.ResolvableType;
import org.springframework.core.annotation.Order;
import org.springframework.grpc.client.ChannelCredentialsProvider;
import org.springframework.grpc.client.GlobalClientInterceptor;
import org.springframework.grpc.client.GrpcChannelBuilderCustomizer;
import org.springframework.util.ClassUtils;

/**
 * Gives the default dialer's channels what Spring gRPC gives its own: the application's global
 * client interceptors ({@link GlobalClientInterceptor} beans, Boot's observation interceptor among
 * them), its {@link GrpcChannelBuilderCustomizer} beans, and the credentials of its {@link
 * ChannelCredentialsProvider} where the {@code grpc.connector.channel.*} options set none.
 *
 * <p>Each channel gets each interceptor and customizer once, when it is built; a dial builds one
 * channel, so a call passes each global interceptor once. The interceptors are ordered as Spring
 * gRPC orders them ({@code @Order} on the bean's class or factory method, or {@code Ordered}; the
 * first runs first, outermost). With {@code grpc.connector.observation.enabled=false} the global
 * {@code ObservationGrpcClientInterceptor}s are left out. Customizers run in their bean order,
 * after the options and before the connector's own {@link ChannelBuilderCustomizer} beans; one
 * declared for another builder type (say {@code NettyChannelBuilder}, where the channels are built
 * by {@code grpc-netty-shaded}) is skipped, lambdas included (through {@link LambdaSafe}, as Spring
 * Boot calls its customizers).
 *
 * <p>Not applied: the customizers and the credentials provider that Spring gRPC's and Spring Boot's
 * own auto-configurations declare for Spring gRPC's channels. They apply {@code
 * spring.grpc.client.*}, and Boot's provider answers plaintext unless {@code
 * spring.grpc.client.channel.default.ssl.*} is set, which would silently turn the connector's TLS
 * default into plaintext.
 *
 * <p>The beans are looked up once, after every singleton is instantiated (so an interceptor may
 * depend on the connector, and a dial thread never waits on the bean factory while the context
 * starts), or at the first dial if one comes earlier. Thread-safe: the lookup is done once under a
 * lock and published through a volatile field.
 */
final class SpringGrpcChannels
    implements ChannelBuilderCustomizer, DefaultChannelCredentials, SmartInitializingSingleton {

  private static final Log logger = LogFactory.getLog(SpringGrpcChannels.class);

  /** Packages of the auto-configurations whose beans are for Spring gRPC's own channels. */
  private static final List<String> SPRING_GRPC_OWN_PACKAGES =
      List.of("org.springframework.boot.grpc.", "org.springframework.grpc.autoconfigure.");

  private static final String OBSERVATION_INTERCEPTOR =
      "io.micrometer.core.instrument.binder.grpc.ObservationGrpcClientInterceptor";

  private final ListableBeanFactory beanFactory;
  private final boolean observe;
  private final ChannelCredentials tls = TlsChannelCredentials.create();

  private volatile @Nullable Beans beans;

  /**
   * @param beanFactory where the beans are looked up
   * @param observe whether global observation interceptors are applied ({@code
   *     grpc.connector.observation.enabled})
   */
  SpringGrpcChannels(ListableBeanFactory beanFactory, boolean observe) {
    this.beanFactory = requireNonNull(beanFactory, "beanFactory");
    this.observe = observe;
  }

  @Override
  public void afterSingletonsInstantiated() {
    beans();
  }

  @Override
  public void customize(String address, ManagedChannelBuilder<?> builder) {
    Beans found = beans();
    if (!found.interceptors.isEmpty()) {
      builder.intercept(found.interceptors);
    }
    customize(found.customizers, address, builder);
  }

  @SuppressWarnings({"unchecked", "rawtypes"}) // the builder's type is checked by LambdaSafe
  private static void customize(
      List<GrpcChannelBuilderCustomizer<?>> customizers,
      String address,
      ManagedChannelBuilder<?> builder) {
    LambdaSafe.callbacks(GrpcChannelBuilderCustomizer.class, customizers, builder)
        .withLogger(SpringGrpcChannels.class)
        .invoke(
            (GrpcChannelBuilderCustomizer customizer) ->
                customizer.customize(address, (ManagedChannelBuilder) builder));
  }

  @Override
  public ChannelCredentials forAddress(String address) {
    ChannelCredentialsProvider provider = beans().credentials;
    if (provider == null) {
      return tls;
    }
    ChannelCredentials credentials = provider.getChannelCredentials(address);
    if (credentials == null) {
      throw new IllegalStateException(
          provider + " gave no channel credentials for '" + address + "'");
    }
    return credentials;
  }

  private Beans beans() {
    Beans found = beans;
    if (found == null) {
      synchronized (this) {
        found = beans;
        if (found == null) {
          found = lookUp();
          beans = found;
        }
      }
    }
    return found;
  }

  private Beans lookUp() {
    List<Map.Entry<String, Object>> global =
        new ArrayList<>(
            beanFactory.getBeansWithAnnotation(GlobalClientInterceptor.class).entrySet());
    global.removeIf(
        named -> !(named.getValue() instanceof ClientInterceptor) || isSkippedObservation(named));
    // Stable: beans of equal order keep their registration order.
    global.sort(Comparator.comparingInt(named -> order(named.getKey(), named.getValue())));
    List<ClientInterceptor> interceptors = new ArrayList<>(global.size());
    // ManagedChannelBuilder.intercept(list): the last one added runs first.
    for (int i = global.size() - 1; i >= 0; i--) {
      interceptors.add((ClientInterceptor) global.get(i).getValue());
    }
    List<GrpcChannelBuilderCustomizer<?>> customizers = new ArrayList<>();
    beanFactory
        .getBeanProvider(ResolvableType.forClass(GrpcChannelBuilderCustomizer.class))
        .orderedStream()
        .filter(customizer -> !isSpringGrpcOwn(customizer))
        .forEach(customizer -> customizers.add((GrpcChannelBuilderCustomizer<?>) customizer));
    ChannelCredentialsProvider credentials =
        beanFactory.getBeanProvider(ChannelCredentialsProvider.class).getIfUnique();
    if (credentials != null && isSpringGrpcOwn(credentials)) {
      credentials = null;
    }
    if (logger.isDebugEnabled()) {
      logger.debug(
          "Channels get global interceptors "
              + global.stream().map(Map.Entry::getKey).toList()
              + ", "
              + customizers.size()
              + " GrpcChannelBuilderCustomizer(s), credentials from "
              + (credentials == null ? "the options or TLS" : credentials));
    }
    return new Beans(List.copyOf(interceptors), List.copyOf(customizers), credentials);
  }

  private boolean isSkippedObservation(Map.Entry<String, Object> named) {
    return !observe
        && ClassUtils.isPresent(OBSERVATION_INTERCEPTOR, getClass().getClassLoader())
        && ClassUtils.resolveClassName(OBSERVATION_INTERCEPTOR, getClass().getClassLoader())
            .isInstance(named.getValue());
  }

  /**
   * The order of a bean, as Spring gRPC sorts interceptors: {@code @Order}, then {@code Ordered}.
   */
  private int order(String name, Object bean) {
    Order order = beanFactory.findAnnotationOnBean(name, Order.class);
    if (order != null) {
      return order.value();
    }
    return bean instanceof Ordered ordered ? ordered.getOrder() : Ordered.LOWEST_PRECEDENCE;
  }

  /**
   * Whether {@code bean} was declared by Spring gRPC's or Spring Boot's gRPC auto-configurations
   * for Spring gRPC's own channels.
   */
  private static boolean isSpringGrpcOwn(Object bean) {
    String name = bean.getClass().getName();
    return SPRING_GRPC_OWN_PACKAGES.stream().anyMatch(name::startsWith);
  }

  private record Beans(
      List<ClientInterceptor> interceptors,
      List<GrpcChannelBuilderCustomizer<?>> customizers,
      @Nullable ChannelCredentialsProvider credentials) {}
}
