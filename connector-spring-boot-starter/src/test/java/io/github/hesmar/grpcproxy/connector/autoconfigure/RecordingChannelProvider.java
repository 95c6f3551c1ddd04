package io.github.hesmar.grpcproxy.connector.autoconfigure;

import io.grpc.ChannelCredentials;
import io.grpc.ForwardingChannelBuilder2;
import io.grpc.ManagedChannelBuilder;
import io.grpc.ManagedChannelProvider;
import io.grpc.ManagedChannelRegistry;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * A channel provider, registered with grpc-java while open, that hands out for the addresses it was
 * given the real Netty channel builder behind one that records the keepalive options set on it:
 * what {@code Grpc.newChannelBuilder} gives the starter's dialer, seen from inside. Any other
 * address goes on to the next provider (Netty's), so other channels are untouched.
 */
final class RecordingChannelProvider extends ManagedChannelProvider implements AutoCloseable {

  /** The keepalive options set on one builder; null where none was set (grpc-java's default). */
  record Keepalive(
      @Nullable Duration time, @Nullable Duration timeout, @Nullable Boolean withoutCalls) {}

  private final Set<String> addresses;
  private final Map<String, RecordingBuilder> builders = new ConcurrentHashMap<>();

  private RecordingChannelProvider(Set<String> addresses) {
    this.addresses = addresses;
  }

  /** Registers a provider that records the builders of {@code addresses}; close deregisters it. */
  static RecordingChannelProvider register(String... addresses) {
    RecordingChannelProvider provider = new RecordingChannelProvider(Set.of(addresses));
    ManagedChannelRegistry.getDefaultRegistry().register(provider);
    return provider;
  }

  /** The keepalive options set on the builder of {@code address}; fails if none was built. */
  Keepalive keepalive(String address) {
    RecordingBuilder builder = builders.get(address);
    if (builder == null) {
      throw new AssertionError("No channel builder was asked for " + address);
    }
    return new Keepalive(builder.time, builder.timeout, builder.withoutCalls);
  }

  @Override
  protected boolean isAvailable() {
    return true;
  }

  @Override
  protected int priority() {
    return 10; // before Netty's 5
  }

  @Override
  protected NewChannelBuilderResult newChannelBuilder(
      String target, ChannelCredentials credentials) {
    if (!addresses.contains(target)) {
      return NewChannelBuilderResult.error("not recorded: " + target);
    }
    RecordingBuilder builder =
        new RecordingBuilder(NettyChannelBuilder.forTarget(target, credentials));
    builders.put(target, builder);
    return NewChannelBuilderResult.channelBuilder(builder);
  }

  @Override
  protected ManagedChannelBuilder<?> builderForAddress(String name, int port) {
    throw new UnsupportedOperationException("only newChannelBuilder(target, credentials)");
  }

  @Override
  protected ManagedChannelBuilder<?> builderForTarget(String target) {
    throw new UnsupportedOperationException("only newChannelBuilder(target, credentials)");
  }

  @Override
  protected Collection<Class<? extends SocketAddress>> getSupportedSocketAddressTypes() {
    return List.of(InetSocketAddress.class);
  }

  @Override
  public void close() {
    ManagedChannelRegistry.getDefaultRegistry().deregister(this);
  }

  /** The real builder, with the keepalive options recorded on their way to it. */
  private static final class RecordingBuilder extends ForwardingChannelBuilder2<RecordingBuilder> {

    private final ManagedChannelBuilder<?> delegate;
    private volatile @Nullable Duration time;
    private volatile @Nullable Duration timeout;
    private volatile @Nullable Boolean withoutCalls;

    RecordingBuilder(ManagedChannelBuilder<?> delegate) {
      this.delegate = delegate;
    }

    @Override
    protected ManagedChannelBuilder<?> delegate() {
      return delegate;
    }

    @Override
    public RecordingBuilder keepAliveTime(long keepAliveTime, TimeUnit timeUnit) {
      time = Duration.ofNanos(timeUnit.toNanos(keepAliveTime));
      return super.keepAliveTime(keepAliveTime, timeUnit);
    }

    @Override
    public RecordingBuilder keepAliveTimeout(long keepAliveTimeout, TimeUnit timeUnit) {
      timeout = Duration.ofNanos(timeUnit.toNanos(keepAliveTimeout));
      return super.keepAliveTimeout(keepAliveTimeout, timeUnit);
    }

    @Override
    public RecordingBuilder keepAliveWithoutCalls(boolean enable) {
      withoutCalls = enable;
      return super.keepAliveWithoutCalls(enable);
    }
  }
}
