/**
 * Micrometer meters of a {@link io.github.hesmar.grpcproxy.connector.CachingConnector}, usable
 * without auto-configuration.
 */
@NullMarked
package io.github.hesmar.grpcproxy.connector.metrics;

import org.jspecify.annotations.NullMarked;
