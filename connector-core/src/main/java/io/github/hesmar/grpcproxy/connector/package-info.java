/**
 * A cache of gRPC {@link io.grpc.ManagedChannel}s keyed by target address.
 *
 * <p>{@link io.github.hesmar.grpcproxy.connector.CachingConnector} leases cached channels to its
 * callers, runs at most one dial per address at a time, and closes channels that have been unused
 * for two {@link io.github.hesmar.grpcproxy.connector.CachingConnector#expire() expiry passes}.
 */
@NullMarked
package io.github.hesmar.grpcproxy.connector;

import org.jspecify.annotations.NullMarked;
