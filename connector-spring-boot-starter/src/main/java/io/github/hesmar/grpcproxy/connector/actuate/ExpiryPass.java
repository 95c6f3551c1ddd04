package io.github.hesmar.grpcproxy.connector.actuate;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import java.time.Instant;
import java.util.List;

/**
 * One expiry pass of a connector: when it began and what it closed.
 *
 * @param at when the pass began
 * @param closed the address of each channel the pass closed, as {@link CachingConnector#expire()}
 *     returned them (an address once per channel)
 */
public record ExpiryPass(Instant at, List<String> closed) {

  /** Checks the arguments and copies the list. */
  public ExpiryPass {
    requireNonNull(at, "at");
    closed = List.copyOf(closed);
  }
}
