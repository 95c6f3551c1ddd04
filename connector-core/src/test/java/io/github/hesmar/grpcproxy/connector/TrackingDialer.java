package io.github.hesmar.grpcproxy.connector;

import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;

/**
 * A dialer that records every channel it creates. With a server name, channels are real in-process
 * channels to that server; without, bare fakes (which may linger after shutdown, see {@link
 * TrackedChannel}). A test can make the next dials fail or block by setting {@link #behaviour}.
 */
final class TrackingDialer implements Dialer {

  /** What a dial does before it creates its channel. */
  @FunctionalInterface
  interface Behaviour {
    void beforeDial(String address) throws Exception;
  }

  private final @Nullable String serverName;
  private final boolean lingering;
  final List<TrackedChannel> created = new CopyOnWriteArrayList<>();
  final Map<String, AtomicInteger> dialsPerAddress = new ConcurrentHashMap<>();
  final AtomicInteger dials = new AtomicInteger();
  volatile Behaviour behaviour = address -> {};

  /** Counted down by a dial that {@link #holdDials} holds. */
  final CountDownLatch dialing = new CountDownLatch(1);

  /** Lets the dials that {@link #holdDials} holds go on. */
  final CountDownLatch proceed = new CountDownLatch(1);

  private TrackingDialer(@Nullable String serverName, boolean lingering) {
    this.serverName = serverName;
    this.lingering = lingering;
  }

  /** Dials real in-process channels to the server named {@code serverName}. */
  static TrackingDialer inProcess(String serverName) {
    return new TrackingDialer(serverName, false);
  }

  /** Dials bare fake channels, whose calls are {@link FakeCall}s. */
  static TrackingDialer fake() {
    return new TrackingDialer(null, false);
  }

  /** Dials fake channels that terminate only when forced by {@code shutdownNow()}. */
  static TrackingDialer lingering() {
    return new TrackingDialer(null, true);
  }

  @Override
  public ManagedChannel dial(String address) throws Exception {
    dials.incrementAndGet();
    dialsPerAddress.computeIfAbsent(address, a -> new AtomicInteger()).incrementAndGet();
    behaviour.beforeDial(address);
    ManagedChannel delegate =
        serverName == null ? null : InProcessChannelBuilder.forName(serverName).build();
    TrackedChannel channel = new TrackedChannel(address, created.size(), delegate, lingering);
    created.add(channel);
    return channel;
  }

  /** Makes the next dials block until {@link #proceed} opens, then run {@code after}. */
  void holdDials(Behaviour after) {
    behaviour =
        address -> {
          dialing.countDown();
          proceed.await();
          after.beforeDial(address);
        };
  }

  /**
   * A connector builder that runs this dialer on the dialing thread and closes channels at once (no
   * grace period): every step of a single-threaded test is then finished when it returns.
   */
  CachingConnector.Builder inlineConnector() {
    return CachingConnector.builder()
        .dialer(this)
        .dialExecutor(Runnable::run)
        .shutdownGracePeriod(Duration.ZERO);
  }

  int dialsOf(String address) {
    AtomicInteger count = dialsPerAddress.get(address);
    return count == null ? 0 : count.get();
  }

  List<TrackedChannel> createdFor(String address) {
    List<TrackedChannel> channels = new ArrayList<>();
    for (TrackedChannel channel : created) {
      if (channel.address.equals(address)) {
        channels.add(channel);
      }
    }
    return channels;
  }

  List<TrackedChannel> open() {
    List<TrackedChannel> channels = new ArrayList<>();
    for (TrackedChannel channel : created) {
      if (channel.shutdowns.get() == 0) {
        channels.add(channel);
      }
    }
    return channels;
  }
}
