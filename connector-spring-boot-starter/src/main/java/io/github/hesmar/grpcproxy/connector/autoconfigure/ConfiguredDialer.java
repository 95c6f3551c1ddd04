package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.TlsChannelCredentials;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.ssl.SslBundle;

/**
 * The starter's default dialer: {@link Grpc#newChannelBuilder(String, ChannelCredentials)} with the
 * channel options in effect for the address, then every {@link ChannelBuilderCustomizer}. Immutable
 * and thread-safe.
 *
 * <p>The options of an address are those of the first {@code grpc.connector.targets.<name>} whose
 * pattern matches it, in the map's iteration order (declaration order), over the global {@code
 * grpc.connector.channel.*} ones; the global ones when no target matches. Everything that does not
 * depend on the address (patterns, merged options, credentials from plaintext or an SSL bundle) is
 * computed once, in the constructor, so that a bad bundle fails start-up.
 *
 * <p>Credentials: plaintext when the options say so; else TLS with the options' SSL bundle when
 * they name one; else whatever the fallback function gives for the address.
 */
final class ConfiguredDialer implements Dialer {

  /** Resolves an SSL bundle by name at start-up. */
  @FunctionalInterface
  interface SslBundleLookup {

    /**
     * Returns the bundle {@code name}.
     *
     * @param property the property that names the bundle, for the message when there is none
     * @throws IllegalStateException naming {@code property} and {@code name} when there is no such
     *     bundle
     */
    SslBundle bundle(String property, String name);
  }

  /** A target, ready to match: its pattern compiled, its options merged, its credentials made. */
  private record Target(
      String name,
      AddressPattern pattern,
      ChannelOptions options,
      @Nullable ChannelCredentials credentials) {}

  private final List<Target> targets;
  private final ChannelOptions options;
  private final @Nullable ChannelCredentials credentials;
  private final Function<String, ChannelCredentials> fallbackCredentials;
  private final List<ChannelBuilderCustomizer> customizers;

  /**
   * Creates the dialer.
   *
   * @param channel the global {@code grpc.connector.channel.*} options
   * @param targets the {@code grpc.connector.targets}, in declaration order (validated)
   * @param sslBundles resolves the SSL bundles that the options name
   * @param fallbackCredentials the credentials of an address whose options say neither plaintext
   *     nor an SSL bundle
   * @param customizers applied to every builder, in order
   */
  ConfiguredDialer(
      ChannelProperties channel,
      Map<String, TargetProperties> targets,
      SslBundleLookup sslBundles,
      Function<String, ChannelCredentials> fallbackCredentials,
      List<ChannelBuilderCustomizer> customizers) {
    requireNonNull(sslBundles, "sslBundles");
    this.options = ChannelOptions.of(requireNonNull(channel, "channel"));
    this.credentials = credentials(options, sslBundles);
    List<Target> compiled = new ArrayList<>(targets.size());
    targets.forEach(
        (name, target) -> {
          String pattern = target.getPattern();
          if (pattern == null) {
            throw new IllegalArgumentException(
                CachingConnectorProperties.PREFIX + ".targets." + name + ".pattern must be set");
          }
          ChannelOptions merged = options.overriddenBy(name, target);
          compiled.add(
              new Target(
                  name, AddressPattern.compile(pattern), merged, credentials(merged, sslBundles)));
        });
    this.targets = List.copyOf(compiled);
    this.fallbackCredentials = requireNonNull(fallbackCredentials, "fallbackCredentials");
    this.customizers = List.copyOf(customizers);
  }

  /**
   * The credentials that {@code options} fix whatever the address: plaintext, or TLS with the SSL
   * bundle's key and trust material; null when they leave them to the fallback.
   */
  private static @Nullable ChannelCredentials credentials(
      ChannelOptions options, SslBundleLookup sslBundles) {
    if (options.plaintext()) {
      return InsecureChannelCredentials.create();
    }
    String bundleName = options.sslBundle();
    if (bundleName == null) {
      return null;
    }
    SslBundle bundle = sslBundles.bundle(options.sslBundleProperty(), bundleName);
    return TlsChannelCredentials.newBuilder()
        .keyManager(bundle.getManagers().getKeyManagers())
        .trustManager(bundle.getManagers().getTrustManagers())
        .build();
  }

  @Override
  public ManagedChannel dial(String address) {
    ChannelOptions chosen = options;
    @Nullable ChannelCredentials fixed = credentials;
    for (Target target : targets) {
      if (target.pattern().matches(address)) {
        chosen = target.options();
        fixed = target.credentials();
        break;
      }
    }
    ChannelCredentials channelCredentials =
        fixed != null
            ? fixed
            : requireNonNull(fallbackCredentials.apply(address), "fallback credentials");
    ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(address, channelCredentials);
    chosen.applyTo(builder);
    for (ChannelBuilderCustomizer customizer : customizers) {
      customizer.customize(address, builder);
    }
    return builder.build();
  }

  @Override
  public String toString() {
    return "ConfiguredDialer[plaintext="
        + options.plaintext()
        + ", targets="
        + targets.stream().map(t -> t.name() + "=" + t.pattern()).toList()
        + "]";
  }
}
