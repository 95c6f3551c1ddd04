package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.TlsChannelCredentials;

/**
 * Creates the channel for an address on a cache miss of a {@link CachingConnector}.
 *
 * <p>The connector calls a dialer at most once at a time per address, on its dial executor, and
 * owns the returned channel from then on: it shuts the channel down when the channel expires or the
 * connector closes. A dialer must therefore return a new channel on each call and must not shut it
 * down itself.
 *
 * <p>Implementations must be thread-safe: dials of different addresses run in parallel.
 */
@FunctionalInterface
public interface Dialer {

  /**
   * Creates a channel to {@code address}.
   *
   * @param address the target, as given to {@link CachingConnector#dial(String)}; a valid {@link
   *     Grpc#newChannelBuilder(String, ChannelCredentials) gRPC target} for the built-in dialers
   * @return a new channel, never {@code null}
   * @throws Exception if the channel cannot be created; every caller waiting on this dial then gets
   *     a {@link io.grpc.StatusRuntimeException} with status {@code UNAVAILABLE} and this cause
   */
  ManagedChannel dial(String address) throws Exception;

  /**
   * The default dialer: TLS with the JDK's default trust store, through the transport found on the
   * class path ({@code grpc-netty-shaded} by default).
   *
   * @return a dialer building TLS channels
   */
  static Dialer tls() {
    return withCredentials(TlsChannelCredentials.create());
  }

  /**
   * A dialer of plaintext (unencrypted, unauthenticated) channels. Use it for loopback and
   * development only: anyone on the path can read and change the traffic.
   *
   * @return a dialer building plaintext channels
   */
  static Dialer plaintext() {
    return withCredentials(InsecureChannelCredentials.create());
  }

  /**
   * A dialer building channels with {@link Grpc#newChannelBuilder(String, ChannelCredentials)} and
   * the given credentials, with the builder's defaults otherwise.
   *
   * @param credentials the channel credentials, for example {@link TlsChannelCredentials} with a
   *     custom trust manager
   * @return a dialer using {@code credentials}
   */
  static Dialer withCredentials(ChannelCredentials credentials) {
    requireNonNull(credentials, "credentials");
    return address -> Grpc.newChannelBuilder(address, credentials).build();
  }
}
