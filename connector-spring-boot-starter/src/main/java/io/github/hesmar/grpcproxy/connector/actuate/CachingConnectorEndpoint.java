package io.github.hesmar.grpcproxy.connector.actuate;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.time.temporal.ChronoUnit;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.actuate.endpoint.Access;
import org.springframework.boot.actuate.endpoint.InvalidEndpointRequestException;
import org.springframework.boot.actuate.endpoint.OperationResponseBody;
import org.springframework.boot.actuate.endpoint.annotation.DeleteOperation;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;

/**
 * The {@code grpcconnections} endpoint: the channels cached by every {@link CachingConnector} bean,
 * listed by bean name as Spring Boot's {@code caches} endpoint lists cache managers, each with its
 * last expiry pass; the channels of one address ({@code ?address=}); and a delete that marks an
 * address {@linkplain CachingConnector#closeOnRelease(String) close-on-release}. Parameters come
 * from the query string, so an address such as {@code dns:///orders.internal:443} needs no server
 * customization (encoded slashes in a path are refused by Tomcat, Jetty and Spring Security).
 * {@code ?connector=} restricts either operation to one connector, as {@code ?cacheManager=} does
 * for caches; an unknown name is a bad request (HTTP 400).
 *
 * <p>Read-only by default: the delete is available only when the endpoint's access is {@code
 * unrestricted} ({@code management.endpoint.grpcconnections.access=unrestricted}). Thread-safe.
 */
@Endpoint(id = "grpcconnections", defaultAccess = Access.READ_ONLY)
public class CachingConnectorEndpoint {

  private final SortedMap<String, CachingConnector> connectors;
  private final LastExpiryPasses lastExpiryPasses;
  private final InstantSource clock;

  /**
   * Creates the endpoint with no record of expiry passes, measuring ages on the system clock (the
   * connector's by default).
   *
   * @param connectors the connectors to report on, by bean name
   */
  public CachingConnectorEndpoint(Map<String, CachingConnector> connectors) {
    this(connectors, LastExpiryPasses.NONE, InstantSource.system());
  }

  /**
   * Creates the endpoint.
   *
   * @param connectors the connectors to report on, by bean name
   * @param lastExpiryPasses the last expiry pass of each connector, by bean name
   * @param clock the clock the connectors were {@linkplain
   *     CachingConnector.Builder#clock(InstantSource) built with}, to measure ages on
   */
  public CachingConnectorEndpoint(
      Map<String, CachingConnector> connectors,
      LastExpiryPasses lastExpiryPasses,
      InstantSource clock) {
    this.connectors = Collections.unmodifiableSortedMap(new TreeMap<>(connectors));
    this.lastExpiryPasses = requireNonNull(lastExpiryPasses, "lastExpiryPasses");
    this.clock = requireNonNull(clock, "clock");
  }

  /**
   * Lists the connectors by bean name, each with its last expiry pass and its cached channels
   * (closing ones included) sorted by address, then by id. With {@code address}, lists only that
   * address's channels, and only the connectors that have one.
   *
   * @param address the target address whose channels to list (URL-encoded in the query string), or
   *     {@code null} for every channel
   * @param connector the bean name of the one connector to list, or {@code null} for all
   * @return the connectors, or {@code null} (HTTP 404) if {@code address} is given and no listed
   *     connector has a channel for it
   * @throws InvalidEndpointRequestException (HTTP 400) if no connector is named {@code connector}
   */
  @ReadOperation
  @SuppressWarnings("deprecation") // Spring's @Nullable: how Boot 3.5 finds optional parameters
  public @Nullable ConnectorsDescriptor connections(
      @org.springframework.lang.Nullable @Nullable String address,
      @org.springframework.lang.Nullable @Nullable String connector) {
    Instant now = clock.instant();
    Map<String, ConnectorDescriptor> listed = new TreeMap<>();
    selected(connector)
        .forEach(
            (name, cachingConnector) -> {
              List<ChannelDescriptor> channels =
                  cachingConnector.connections().stream()
                      .filter(info -> address == null || info.address().equals(address))
                      .map(info -> ChannelDescriptor.of(info, now))
                      .toList();
              if (address == null || !channels.isEmpty()) {
                listed.put(
                    name, new ConnectorDescriptor(lastExpiryPasses.lastPass(name), channels));
              }
            });
    return address != null && listed.isEmpty() ? null : new ConnectorsDescriptor(listed);
  }

  /**
   * Marks the channels cached for {@code address} close-on-release, on every connector or on the
   * one named {@code connector}: new dials get a new channel, and each old one closes at the first
   * expiry pass after its last lease is released and its last call has ended.
   *
   * @param address the target address (URL-encoded in the query string)
   * @param connector the bean name of the one connector to act on, or {@code null} for all
   * @return for each connector acted on, whether it had a channel for {@code address}
   * @throws InvalidEndpointRequestException (HTTP 400) if {@code address} is not a valid address or
   *     no connector is named {@code connector}
   */
  @DeleteOperation
  @SuppressWarnings("deprecation") // Spring's @Nullable: how Boot 3.5 finds optional parameters
  public CloseOnReleaseDescriptor closeOnRelease(
      String address, @org.springframework.lang.Nullable @Nullable String connector) {
    Map<String, CloseOnReleaseOutcome> outcomes = new TreeMap<>();
    for (Map.Entry<String, CachingConnector> named : selected(connector).entrySet()) {
      boolean marked;
      try {
        marked = named.getValue().closeOnRelease(address);
      } catch (IllegalArgumentException e) {
        String message = "Invalid address '" + address + "': " + e.getMessage();
        throw new InvalidEndpointRequestException(message, message);
      }
      outcomes.put(named.getKey(), new CloseOnReleaseOutcome(marked));
    }
    return new CloseOnReleaseDescriptor(address, outcomes);
  }

  private Map<String, CachingConnector> selected(@Nullable String connector) {
    if (connector == null) {
      return connectors;
    }
    CachingConnector named = connectors.get(connector);
    if (named == null) {
      String message =
          "No CachingConnector bean named '" + connector + "'; there are " + connectors.keySet();
      throw new InvalidEndpointRequestException(message, message);
    }
    return Map.of(connector, named);
  }

  /**
   * The connectors, by bean name.
   *
   * @param connectors each connector's last expiry pass and channels, sorted by bean name
   */
  public record ConnectorsDescriptor(Map<String, ConnectorDescriptor> connectors)
      implements OperationResponseBody {

    /** Copies the map, sorted by bean name. */
    public ConnectorsDescriptor {
      connectors = Collections.unmodifiableSortedMap(new TreeMap<>(connectors));
    }
  }

  /**
   * One connector.
   *
   * @param lastExpiryPass its last expiry pass: when it began and the addresses of the channels it
   *     closed; {@code null} before the first pass, or when the starter does not run expiry
   * @param channels one entry per open channel, sorted by address, then by id
   */
  public record ConnectorDescriptor(
      @Nullable ExpiryPass lastExpiryPass, List<ChannelDescriptor> channels) {

    /** Copies the list. */
    public ConnectorDescriptor {
      channels = List.copyOf(channels);
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
   * @param queued those of its calls whose headers wait in its transport: queued behind the
   *     connection's limit of concurrent streams (the server's MAX_CONCURRENT_STREAMS), or for a
   *     moment for the transport's event loop
   * @param limit the load at which it counts as full and a dial of its address opens another
   *     channel: {@code grpc.connector.pool.max-calls-per-channel}, or the calls it carried when
   *     calls started to queue on it
   * @param idlePasses consecutive expiry passes that found it unused (it closes at the second)
   * @param state its connectivity state, or {@code null} if unknown
   * @param stateSince when it entered {@code state} (as far as the connector saw, from its creation
   *     on), or {@code null} if its state is unknown
   * @param closing whether it closes once its leases are released and its calls have ended
   * @param closeCause why it closes, if {@code closing}: {@code RELEASED} (close-on-release, as the
   *     delete does), {@code STALE} (found shut down), {@code MAX_AGE} or {@code UNHEALTHY} (its
   *     connection went silent); {@code null} if it is not closing
   * @param createdAt when it was created
   * @param lastDialedAt when it was last leased, to within one expiry pass
   * @param age how long before the read it was created, in milliseconds, as an ISO-8601 duration
   *     (for example {@code PT1H2M3.456S}): what a maximum channel age is measured against
   */
  public record ChannelDescriptor(
      long id,
      String address,
      int leases,
      int calls,
      int queued,
      int limit,
      int idlePasses,
      @Nullable String state,
      @Nullable Instant stateSince,
      boolean closing,
      @Nullable String closeCause,
      Instant createdAt,
      Instant lastDialedAt,
      String age) {

    static ChannelDescriptor of(ConnectionInfo info, Instant now) {
      return new ChannelDescriptor(
          info.id(),
          info.address(),
          info.leases(),
          info.calls(),
          info.queued(),
          info.limit(),
          info.idlePasses(),
          info.state() == null ? null : info.state().name(),
          info.stateSince(),
          info.closing(),
          info.closeCause() == null ? null : info.closeCause().name(),
          info.createdAt(),
          info.lastDialedAt(),
          Duration.between(info.createdAt(), now).truncatedTo(ChronoUnit.MILLIS).toString());
    }
  }

  /**
   * The outcome of a delete.
   *
   * @param address the target address
   * @param connectors for each connector acted on, by bean name, what it did
   */
  public record CloseOnReleaseDescriptor(
      String address, Map<String, CloseOnReleaseOutcome> connectors)
      implements OperationResponseBody {

    /** Copies the map, sorted by bean name. */
    public CloseOnReleaseDescriptor {
      connectors = Collections.unmodifiableSortedMap(new TreeMap<>(connectors));
    }
  }

  /**
   * What a delete did on one connector.
   *
   * @param closeOnRelease whether a cached channel was found and marked close-on-release
   */
  public record CloseOnReleaseOutcome(boolean closeOnRelease) {}
}
