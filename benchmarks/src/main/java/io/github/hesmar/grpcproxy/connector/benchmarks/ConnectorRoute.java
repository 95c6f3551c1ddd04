package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.ConnectionInfo;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.CallOptions;
import io.grpc.MethodDescriptor;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A lease per call from a connector, released once the call has closed, as a proxy does: arms (b)
 * and (c) of {@link StreamLimitBenchmark}.
 */
final class ConnectorRoute implements Route {

  private final String target;
  private final CachingConnector connector;
  private final QueueCounter queue = new QueueCounter();
  private final CallOptions options = CallOptions.DEFAULT.withStreamTracerFactory(queue);

  /** {@code maxChannels} 0: the connector's default. */
  ConnectorRoute(String target, int maxChannels) {
    this.target = target;
    CachingConnector.Builder builder =
        CachingConnector.builder()
            .dialer(Dialer.plaintext())
            .shutdownGracePeriod(Duration.ofSeconds(5));
    if (maxChannels > 0) {
      builder.maxChannelsPerAddress(maxChannels);
    }
    connector = builder.build();
  }

  @Override
  public void call(
      MethodDescriptor<byte[], byte[]> method, Invoker invoker, StreamObserver<byte[]> observer) {
    LeasedChannel lease = connector.dial(target);
    try {
      invoker.invoke(
          lease.newCall(method, options),
          StreamLimitBackend.REQUEST,
          new Releasing(lease, observer));
    } catch (RuntimeException | Error e) {
      lease.close();
      throw e;
    }
  }

  @Override
  public String channels(int inFlight) {
    List<ConnectionInfo> connections = connections();
    return connections.size()
        + ": "
        + connections.stream()
            .map(info -> Integer.toString(info.calls()))
            .collect(Collectors.joining(", "));
  }

  @Override
  public String limits() {
    List<ConnectionInfo> connections = connections();
    return connections.size()
        + ": "
        + connections.stream()
            .map(info -> info.queued() + " / " + info.limit())
            .collect(Collectors.joining(", "));
  }

  private List<ConnectionInfo> connections() {
    List<ConnectionInfo> connections = new ArrayList<>(connector.connections());
    connections.sort(Comparator.comparingLong(ConnectionInfo::id));
    return connections;
  }

  @Override
  public int connectorQueued() {
    return connector.queuedCallCount();
  }

  @Override
  public long tracerQueued() {
    return queue.queued();
  }

  @Override
  public void close() {
    connector.close();
  }

  /** Releases its lease when its call closes, then passes the close on. */
  private static final class Releasing implements StreamObserver<byte[]> {

    private final LeasedChannel lease;
    private final StreamObserver<byte[]> delegate;

    Releasing(LeasedChannel lease, StreamObserver<byte[]> delegate) {
      this.lease = lease;
      this.delegate = delegate;
    }

    @Override
    public void onNext(byte[] value) {
      delegate.onNext(value);
    }

    @Override
    public void onError(Throwable t) {
      lease.close();
      delegate.onError(t);
    }

    @Override
    public void onCompleted() {
      lease.close();
      delegate.onCompleted();
    }
  }
}
