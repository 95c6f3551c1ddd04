package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.grpc.ChannelCredentials;

/**
 * The credentials of the default dialer's channels for addresses whose {@code
 * grpc.connector.channel.*} options (global or per target) set none: TLS with the JDK's defaults,
 * unless Spring gRPC's {@code ChannelCredentialsProvider} of the application gives others.
 */
@FunctionalInterface
interface DefaultChannelCredentials {

  ChannelCredentials forAddress(String address);
}
