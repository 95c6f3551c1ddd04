package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.config.MeterFilterReply;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;

/**
 * Bounds the {@code grpc.client} meters that per-call observations create, whatever the callers of
 * a proxy choose.
 *
 * <p>Micrometer's gRPC client observations tag their meters ({@code grpc.client}, {@code
 * grpc.client.active} and any other {@code grpc.client.*}) with the method ({@code rpc.service},
 * {@code rpc.method}) and the peer ({@code net.peer.name}, {@code net.peer.port}). Behind a proxy
 * the method is chosen by whoever calls it and the peer by the routes, so both grow without bound.
 * This filter removes the peer tags (the peer stays on traces, which are not meters) and accepts at
 * most {@code maxMethodTags} distinct service and method pairs: a meter for another pair is denied,
 * so calls to it are not measured, and the first denial is logged once, as Spring Boot does for
 * {@code management.metrics.web.client.max-uri-tags}. With Micrometer's default convention the tags
 * that remain are {@code rpc.service}, {@code rpc.method}, {@code rpc.type}, {@code
 * grpc.status_code}, and {@code error} on the timer.
 *
 * <p>A meter registry cannot tell which channel a meter comes from, so the filter applies to every
 * {@code grpc.client} meter of the application; meters that a custom observation convention names
 * otherwise are not bounded. Thread-safe: the accepted pairs are a concurrent set that only grows;
 * a pair is added under a lock, so the bound is exact; once it is reached, refusals take no lock.
 */
final class GrpcClientMeterFilter implements MeterFilter {

  private static final Log logger = LogFactory.getLog(GrpcClientMeterFilter.class);

  static final String METER_NAME = "grpc.client";

  private static final Set<String> PEER_TAGS = Set.of("net.peer.name", "net.peer.port");

  private final int maxMethodTags;

  private final Set<String> accepted = ConcurrentHashMap.newKeySet();

  private final AtomicBoolean warned = new AtomicBoolean();

  /** Whether the bound was reached: written once, under the lock. */
  private volatile boolean full;

  GrpcClientMeterFilter(int maxMethodTags) {
    if (maxMethodTags < 0) {
      throw new IllegalArgumentException("maxMethodTags must not be negative: " + maxMethodTags);
    }
    this.maxMethodTags = maxMethodTags;
  }

  private static boolean isGrpcClient(Meter.Id id) {
    String name = id.getName();
    return name.equals(METER_NAME) || name.startsWith(METER_NAME + ".");
  }

  @Override
  public Meter.Id map(Meter.Id id) {
    if (!isGrpcClient(id)) {
      return id;
    }
    List<Tag> kept = new ArrayList<>();
    boolean removed = false;
    for (Tag tag : id.getTagsAsIterable()) {
      if (PEER_TAGS.contains(tag.getKey())) {
        removed = true;
      } else {
        kept.add(tag);
      }
    }
    return removed ? id.replaceTags(kept) : id;
  }

  @Override
  public MeterFilterReply accept(Meter.Id id) {
    if (!isGrpcClient(id)) {
      return MeterFilterReply.NEUTRAL;
    }
    String service = id.getTag("rpc.service");
    String method = id.getTag("rpc.method");
    if (service == null && method == null) {
      return MeterFilterReply.NEUTRAL;
    }
    String pair = service + '/' + method;
    if (accepted.contains(pair)) {
      return MeterFilterReply.NEUTRAL;
    }
    if (!full) {
      synchronized (accepted) {
        if (accepted.contains(pair)) {
          return MeterFilterReply.NEUTRAL;
        }
        if (accepted.size() < maxMethodTags) {
          accepted.add(pair);
          return MeterFilterReply.NEUTRAL;
        }
        full = true;
      }
    }
    if (warned.compareAndSet(false, true) && logger.isWarnEnabled()) {
      logger.warn(
          "Reached the maximum of "
              + maxMethodTags
              + " gRPC methods tagged on "
              + METER_NAME
              + " meters (grpc.connector.observation.max-method-tags): calls to other methods are"
              + " no longer measured. First one refused: "
              + pair);
    }
    return MeterFilterReply.DENY;
  }
}
