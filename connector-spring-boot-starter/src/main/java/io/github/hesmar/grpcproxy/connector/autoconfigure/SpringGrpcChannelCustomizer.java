package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.Objects.requireNonNull;

import io.grpc.ClientInterceptor;
import io.grpc.ManagedChannelBuilder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.core.ResolvableType;
import org.springframework.grpc.client.GlobalClientInterceptor;
import org.springframework.grpc.client.GrpcChannelBuilderCustomizer;

/**
 * Gives the default dialer's channels what Spring gRPC gives its own: the application's global
 * client interceptors ({@link GlobalClientInterceptor} beans, Boot's observation interceptor among
 * them) and its {@link GrpcChannelBuilderCustomizer} beans.
 *
 * <p>Each channel gets each of them once, when it is built; a dial builds one channel, so a call
 * passes each global interceptor once. The interceptors are ordered as Spring gRPC orders them
 * ({@code @Order} or {@code Ordered}, on the bean or its factory method; the first runs first,
 * outermost). Customizers run in their bean order, after the {@code grpc.connector.channel.*}
 * options and before the connector's own {@link ChannelBuilderCustomizer} beans. A customizer
 * declared for another builder type (say {@code NettyChannelBuilder} where the channels are built
 * by {@code grpc-netty-shaded}) is skipped, as Spring gRPC's factories skip it.
 *
 * <p>Customizers that Spring gRPC's and Boot's own auto-configurations declare for their channels
 * (they apply {@code spring.grpc.client.*} properties) are not applied: the connector's channels
 * are configured by {@code grpc.connector.*}.
 *
 * <p>The beans are looked up at the first dial, not when the connector is created, so that an
 * interceptor may itself depend on the connector. Thread-safe: the lookup is done once under a lock
 * and published through a volatile field.
 */
final class SpringGrpcChannelCustomizer implements ChannelBuilderCustomizer {

  /** Packages of the auto-configurations whose customizers are for Spring gRPC's own channels. */
  private static final List<String> OWN_CUSTOMIZER_PACKAGES =
      List.of("org.springframework.boot.grpc.", "org.springframework.grpc.autoconfigure.");

  private final ListableBeanFactory beanFactory;

  private volatile @Nullable Resolved resolved;

  SpringGrpcChannelCustomizer(ListableBeanFactory beanFactory) {
    this.beanFactory = requireNonNull(beanFactory, "beanFactory");
  }

  @Override
  public void customize(String address, ManagedChannelBuilder<?> builder) {
    Resolved beans = resolve();
    if (!beans.interceptors.isEmpty()) {
      builder.intercept(beans.interceptors);
    }
    for (GrpcChannelBuilderCustomizer<?> customizer : beans.customizers) {
      if (accepts(customizer, builder)) {
        customize(customizer, address, builder);
      }
    }
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static void customize(
      GrpcChannelBuilderCustomizer<?> customizer,
      String address,
      ManagedChannelBuilder<?> builder) {
    ((GrpcChannelBuilderCustomizer) customizer).customize(address, (ManagedChannelBuilder) builder);
  }

  private static boolean accepts(
      GrpcChannelBuilderCustomizer<?> customizer, ManagedChannelBuilder<?> builder) {
    Class<?> declared =
        ResolvableType.forClass(customizer.getClass())
            .as(GrpcChannelBuilderCustomizer.class)
            .getGeneric(0)
            .resolve();
    return declared == null || declared.isInstance(builder);
  }

  private Resolved resolve() {
    Resolved beans = resolved;
    if (beans == null) {
      synchronized (this) {
        beans = resolved;
        if (beans == null) {
          beans = lookUp();
          resolved = beans;
        }
      }
    }
    return beans;
  }

  private Resolved lookUp() {
    Set<Object> global = Collections.newSetFromMap(new IdentityHashMap<>());
    for (String name : beanFactory.getBeanNamesForAnnotation(GlobalClientInterceptor.class)) {
      Object bean = beanFactory.getBean(name);
      if (bean instanceof ClientInterceptor) {
        global.add(bean);
      }
    }
    // orderedStream: @Order on factory methods counts, as in Spring gRPC.
    List<ClientInterceptor> interceptors =
        new ArrayList<>(
            beanFactory
                .getBeanProvider(ClientInterceptor.class)
                .orderedStream()
                .filter(global::contains)
                .toList());
    // ManagedChannelBuilder.intercept(list): the last one added runs first.
    Collections.reverse(interceptors);
    List<GrpcChannelBuilderCustomizer<?>> customizers = new ArrayList<>();
    beanFactory
        .getBeanProvider(ResolvableType.forClass(GrpcChannelBuilderCustomizer.class))
        .orderedStream()
        .map(GrpcChannelBuilderCustomizer.class::cast)
        .filter(customizer -> !isSpringGrpcOwn(customizer))
        .forEach(customizers::add);
    return new Resolved(List.copyOf(interceptors), List.copyOf(customizers));
  }

  /**
   * Whether {@code bean} was declared by Spring gRPC's or Spring Boot's gRPC auto-configurations
   * for Spring gRPC's own channels.
   */
  static boolean isSpringGrpcOwn(Object bean) {
    String name = bean.getClass().getName();
    return OWN_CUSTOMIZER_PACKAGES.stream().anyMatch(name::startsWith);
  }

  private record Resolved(
      List<ClientInterceptor> interceptors, List<GrpcChannelBuilderCustomizer<?>> customizers) {
    Resolved {
      requireNonNull(interceptors, "interceptors");
      requireNonNull(customizers, "customizers");
    }
  }
}
