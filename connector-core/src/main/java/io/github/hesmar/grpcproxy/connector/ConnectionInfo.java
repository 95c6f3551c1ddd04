package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.ConnectivityState;
import java.time.Instant;
import org.jspecify.annotations.Nullable;

/**
 * A snapshot of one channel cached by a {@link CachingConnector}, as listed by {@link
 * CachingConnector#connections()}.
 *
 * @param id this channel's number, unique within its connector (an address can have several
 *     channels, see {@link CachingConnector.Builder#maxChannelsPerAddress(int)}); channels are
 *     numbered from 1 in the order their dials started
 * @param address the target address the channel was dialed for
 * @param leases the number of outstanding leases on the channel
 * @param calls the number of calls in flight on the channel: started on a lease and not yet closed,
 *     whether or not their lease was released (a channel with calls is never expired)
 * @param queued the number of those calls whose headers wait in the channel's transport: queued
 *     behind the connection's limit of concurrent streams (MAX_CONCURRENT_STREAMS), or for a moment
 *     for the transport's event loop
 * @param limit the load at which the channel counts as full and a dial of its address opens another
 *     channel (see {@link CachingConnector.Builder#maxCallsPerChannel(int)}): the configured
 *     maximum, or the number of calls the channel carried when calls started to queue on it (never
 *     learned with one channel per address, where the only channel takes every call)
 * @param idlePasses the number of consecutive expiry passes that found the channel unused (the
 *     channel closes at the second)
 * @param state the channel's connectivity state, or {@code null} if the channel does not report it
 * @param stateSince when the channel entered {@code state} (as far as the connector saw: from the
 *     channel's creation on), or {@code null} if the channel does not report its state
 * @param closing whether the channel was detached and closes once its leases are released and its
 *     calls have ended
 * @param closeCause why the channel closes, if it is closing: {@link CloseCause#RELEASED} (by
 *     {@link CachingConnector#closeOnRelease(String)}), {@link CloseCause#STALE} (found shut down),
 *     {@link CloseCause#MAX_AGE} or {@link CloseCause#UNHEALTHY}; {@code null} if it is not
 * @param createdAt when the dialer created the channel
 * @param lastDialedAt when the channel was last leased, to within one expiry pass: of the dials
 *     between two passes, the first is recorded
 */
public record ConnectionInfo(
    long id,
    String address,
    int leases,
    int calls,
    int queued,
    int limit,
    int idlePasses,
    @Nullable ConnectivityState state,
    @Nullable Instant stateSince,
    boolean closing,
    @Nullable CloseCause closeCause,
    Instant createdAt,
    Instant lastDialedAt) {

  /** Checks the arguments. */
  public ConnectionInfo {
    requireNonNull(address, "address");
    requireNonNull(createdAt, "createdAt");
    requireNonNull(lastDialedAt, "lastDialedAt");
  }
}
