/**
 * Actuator support for a {@link io.github.hesmar.grpcproxy.connector.CachingConnector}: the {@code
 * grpcconnections} endpoint and a health indicator.
 */
@NullMarked
package io.github.hesmar.grpcproxy.connector.actuate;

import org.jspecify.annotations.NullMarked;
