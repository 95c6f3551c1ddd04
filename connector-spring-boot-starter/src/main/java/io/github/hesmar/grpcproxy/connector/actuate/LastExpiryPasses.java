package io.github.hesmar.grpcproxy.connector.actuate;

import org.jspecify.annotations.Nullable;

/**
 * The last expiry pass of each connector, by the connector's bean name: what the {@link
 * CachingConnectorEndpoint} shows next to the connector's channels. The starter's scheduled expiry
 * records them; an application that runs expiry itself can supply its own. Implementations must be
 * thread-safe.
 */
@FunctionalInterface
public interface LastExpiryPasses {

  /** No pass recorded for any connector: expiry is not run by the starter. */
  LastExpiryPasses NONE = connectorName -> null;

  /**
   * Returns the last expiry pass of a connector.
   *
   * @param connectorName the connector's bean name
   * @return its last pass, or {@code null} if none has run yet (or expiry is not recorded)
   */
  @Nullable ExpiryPass lastPass(String connectorName);
}
