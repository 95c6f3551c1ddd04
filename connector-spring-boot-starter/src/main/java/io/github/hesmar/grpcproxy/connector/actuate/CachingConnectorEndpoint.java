package io.github.hesmar.grpcproxy.connector.actuate;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.time.temporal.ChronoUnit;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.actuate.endpoint.Access;
import org.springframework.boot.actuate.endpoint.OperationResponseBody;
import org.springframework.boot.actuate.endpoint.annotation.DeleteOperation;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.boot.actuate.endpoint.annotation.Selector;

/**
 * The {@code grpcconnections} endpoint: the channels cached by a {@link CachingConnector} (an
 * address can have several, each with its own {@code id}), those of one address, and a delete that
 * marks an address {@linkplain CachingConnector#closeOnRelease(String) close-on-release}.
 *
 * <p>Read-only by default: the delete is available only when the endpoint's access is {@code
 * unrestricted} ({@code management.endpoint.grpcconnections.access=unrestricted}). Thread-safe.
 */
@Endpoint(id = "grpcconnections", defaultAccess = Access.READ_ONLY)
public class CachingConnectorEndpoint {

  private final CachingConnector connector;
  private final InstantSource clock;

  /**
   * Creates the endpoint, measuring ages on the system clock (the connector's by default).
   *
   * @param connector the connector to report on
   */
  public CachingConnectorEndpoint(CachingConnector connector) {
    this(connector, InstantSource.system());
  }

  /**
   * Creates the endpoint, measuring ages on {@code clock}.
   *
   * @param connector the connector to report on
   * @param clock the clock the connector was {@linkplain
   *     CachingConnector.Builder#clock(InstantSource) built with}
   */
  public CachingConnectorEndpoint(CachingConnector connector, InstantSource clock) {
    this.connector = requireNonNull(connector, "connector");
    this.clock = requireNonNull(clock, "clock");
  }

  /**
   * Lists the cached channels, closing ones included, sorted by address, then by id.
   *
   * @return the channels
   */
  @ReadOperation
  public ConnectionsDescriptor connections() {
    Instant now = clock.instant();
    return new ConnectionsDescriptor(
        connector.connections().stream().map(info -> ConnectionDescriptor.of(info, now)).toList());
  }

  /**
   * Lists the channels cached for {@code address}, closing ones included, sorted by id: the same
   * entries as {@link #connections()} lists for that address.
   *
   * @param address the target address (URL-encoded in the request path)
   * @return the channels, or {@code null} (HTTP 404) if none is cached for {@code address}
   */
  @ReadOperation
  public @Nullable ConnectionsDescriptor connectionsOf(@Selector String address) {
    Instant now = clock.instant();
    List<ConnectionDescriptor> channels =
        connector.connections().stream()
            .filter(info -> info.address().equals(address))
            .map(info -> ConnectionDescriptor.of(info, now))
            .toList();
    return channels.isEmpty() ? null : new ConnectionsDescriptor(channels);
  }

  /**
   * Marks the channels cached for {@code address} close-on-release: new dials get a new channel,
   * and each old one closes at the first expiry pass after its last lease is released and its last
   * call has ended.
   *
   * @param address the target address (URL-encoded in the request path)
   * @return whether a channel was cached for {@code address}
   */
  @DeleteOperation
  public CloseOnReleaseDescriptor closeOnRelease(@Selector String address) {
    return new CloseOnReleaseDescriptor(address, connector.closeOnRelease(address));
  }

  /**
   * The cached channels.
   *
   * @param connections one entry per open channel, sorted by address, then by id
   */
  public record ConnectionsDescriptor(List<ConnectionDescriptor> connections)
      implements OperationResponseBody {

    /** Copies the list. */
    public ConnectionsDescriptor {
      connections = List.copyOf(connections);
    }
  }

  /**
   * One cached channel.
   *
   * @param id the channel's number, unique within its connector: tells apart the channels of one
   *     address
   * @param address the target address
   * @param leases outstanding leases
   * @param calls calls in flight on it, whether or not their lease was released
   * @param idlePasses consecutive expiry passes that found it unused (it closes at the second)
   * @param state its connectivity state, or {@code null} if unknown
   * @param closing whether it closes once its leases are released and its calls have ended
   * @param createdAt when it was created
   * @param lastDialedAt when it was last leased, to within one expiry pass
   * @param age how long before the read it was created, in milliseconds, as an ISO-8601 duration
   *     (for example {@code PT1H2M3.456S}): what a maximum channel age is measured against
   */
  public record ConnectionDescriptor(
      long id,
      String address,
      int leases,
      int calls,
      int idlePasses,
      @Nullable String state,
      boolean closing,
      Instant createdAt,
      Instant lastDialedAt,
      String age)
      implements OperationResponseBody {

    static ConnectionDescriptor of(ConnectionInfo info, Instant now) {
      return new ConnectionDescriptor(
          info.id(),
          info.address(),
          info.leases(),
          info.calls(),
          info.idlePasses(),
          info.state() == null ? null : info.state().name(),
          info.closing(),
          info.createdAt(),
          info.lastDialedAt(),
          Duration.between(info.createdAt(), now).truncatedTo(ChronoUnit.MILLIS).toString());
    }
  }

  /**
   * The outcome of a delete.
   *
   * @param address the target address
   * @param closeOnRelease whether a cached channel was found and marked close-on-release
   */
  public record CloseOnReleaseDescriptor(String address, boolean closeOnRelease)
      implements OperationResponseBody {}
}
