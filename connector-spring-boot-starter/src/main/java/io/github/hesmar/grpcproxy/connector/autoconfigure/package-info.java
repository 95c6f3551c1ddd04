/**
 * Auto-configuration of a {@link io.github.hesmar.grpcproxy.connector.CachingConnector} bean:
 * properties, the default dialer, scheduled expiry, lifecycle, meters, endpoint and health.
 */
@NullMarked
package io.github.hesmar.grpcproxy.connector.autoconfigure;

import org.jspecify.annotations.NullMarked;
