package io.github.hesmar.grpcproxy.connector;

import static io.grpc.ConnectivityState.READY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;
import static org.awaitility.Awaitility.await;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.awaitility.core.ConditionFactory;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Queueing seen and the limit learned (docs/design.md, "14. Queueing seen, the limit learned")
 * against real loopback Netty backends that cap the concurrent streams of each HTTP/2 connection
 * (MAX_CONCURRENT_STREAMS, {@link NettyServerBuilder#maxConcurrentCallsPerConnection(int)}),
 * through real plaintext client channels and the connector's defaults (100 calls per channel, 8
 * channels per address).
 *
 * <ul>
 *   <li>At a cap of 100, 300 long streams started by 16 threads at once all run at the backend at
 *       once, none stays queued, over three channels or more of at most 100 calls each.
 *   <li>At a cap of 10, streams started one at a time: the 11th queues on the first channel and
 *       teaches its limit, 10; every later channel starts at 10, so 80 run over 8 channels and only
 *       that one is queued.
 *   <li>A cap lifted: once the backend on the same port allows 100 and nothing queues, two expiry
 *       passes give the channel back its configured limit, and it then carries more than 10.
 * </ul>
 *
 * <p>Each stream is made as a proxy makes it (see the sample's {@code ReverseProxy}): dial, start
 * the call on the lease, keep the lease while the call runs, release it when the call ends, however
 * it ends. The backend's one method holds every call open until the client cancels it, and counts
 * the calls its handler is running.
 *
 * <p>The first test runs on the connector's own scheduler, as users run it. The others run the
 * connector's scheduler by hand ({@link FakeClock}): the check that confirms a stream's wait (a
 * second after its creation) runs once the test has seen the stream run at the backend, or wait
 * behind the backend's cap. These tests look at what the connector learns from real queueing, not
 * at how long a loaded machine's event loop holds headers (a cold JVM's first stream waited 215 ms
 * without any cap in one run).
 */
class StreamLimitLoopbackTest {

  private static final String LOOPBACK = "127.0.0.1";

  /** A long call the test controls: the backend holds it open, the client sends nothing. */
  private static final MethodDescriptor<String, String> HOLD =
      MethodDescriptor.<String, String>newBuilder()
          .setType(MethodDescriptor.MethodType.BIDI_STREAMING)
          .setFullMethodName("test.Holding/Hold")
          .setRequestMarshaller(Utf8Marshaller.INSTANCE)
          .setResponseMarshaller(Utf8Marshaller.INSTANCE)
          .build();

  /** The name of a stream, which the backend records for the calls it runs. */
  private static final Metadata.Key<String> NAME =
      Metadata.Key.of("stream-name", Metadata.ASCII_STRING_MARSHALLER);

  private final List<Backend> backends = new CopyOnWriteArrayList<>();
  private final List<ProxiedStream> streams = new CopyOnWriteArrayList<>();

  /** The calls the connector reported at the end of their wait in the transport. */
  private final AtomicInteger queueReports = new AtomicInteger();

  private @Nullable CachingConnector connector;

  /** The connector's scheduler, if the test runs it by hand. */
  private @Nullable FakeClock clock;

  private @Nullable ExecutorService starters;

  @AfterEach
  void closeEverything() throws InterruptedException {
    try {
      for (ProxiedStream stream : streams) {
        stream.call.cancel("test over", null);
      }
      for (ProxiedStream stream : streams) {
        assertThat(stream.closed).succeedsWithin(Duration.ofSeconds(10));
      }
    } finally {
      try {
        if (starters != null) {
          starters.shutdownNow();
          starters.awaitTermination(10, TimeUnit.SECONDS);
        }
        if (connector != null) {
          connector.close();
        }
      } finally {
        for (Backend backend : backends) {
          backend.stop();
        }
      }
    }
  }

  @Test
  void threeHundredStreamsStartedAtOnceAllRunOnChannelsOfAtMostOneHundredCalls() throws Exception {
    Backend backend = startBackend(0, 100);
    String address = backend.address();
    CachingConnector connector = connector(/* handRun= */ false);
    int threads = 16;
    int total = 300;

    // 16 threads dial and start their share of the 300 streams at once, each stream on a lease of
    // its own, kept while the stream runs and released when it ends (as a proxy does): the dials
    // race for the address's channels.
    starters = Executors.newFixedThreadPool(threads);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<?>> started = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int share = total / threads + (t < total % threads ? 1 : 0);
      String prefix = "starter-" + t + "-stream-";
      started.add(
          starters.submit(
              () -> {
                go.await();
                for (int i = 0; i < share; i++) {
                  startStream(address, prefix + i, CallOptions.DEFAULT);
                }
                return null;
              }));
    }
    go.countDown();
    for (Future<?> future : started) {
      future.get(30, TimeUnit.SECONDS);
    }
    assertThat(streams).hasSize(total);

    waiting().untilAsserted(() -> assertThat(backend.running.get()).isEqualTo(total));
    waiting().untilAsserted(() -> assertThat(connector.queuedCallCount()).isZero());
    waiting().untilAsserted(() -> assertThat(queueReports).hasValue(total)); // once per stream
    assertThat(backend.running.get()).isEqualTo(total);
    List<ConnectionInfo> channels = connector.connections();
    assertThat(channels)
        .as("channels %s", channels)
        .hasSizeGreaterThanOrEqualTo(3)
        .allSatisfy(
            channel -> {
              assertThat(channel.address()).isEqualTo(address);
              assertThat(channel.calls()).isLessThanOrEqualTo(100);
              assertThat(channel.queued()).isZero();
            });
    assertThat(channels.stream().mapToInt(ConnectionInfo::calls).sum()).isEqualTo(total);
    // The limits are not looked at: on the real scheduler, headers of a burst that a loaded
    // machine holds for a second (not the backend's cap) would lower them.
    assertThat(backend.maxRunning.get()).isEqualTo(total);
    assertThat(streams).noneSatisfy(stream -> assertThat(stream.closed).isDone());
  }

  @Test
  void aChannelLearnsTheBackendsLimitOfTenAndEightChannelsRunEightyStreams() {
    Backend backend = startBackend(0, 10);
    String address = backend.address();
    CachingConnector connector = connector(/* handRun= */ true);

    // One stream at a time: a burst arriving before the limit is learned would all be leased on
    // the first channel (its load below the configured 100) and queue there. The 11th stream
    // queues on the first channel and teaches it the limit; every later channel starts at it.
    List<ProxiedStream> started = new ArrayList<>();
    for (int i = 1; i <= 81; i++) {
      started.add(startSettled(address, backend, "stream-" + i));
      if (i == 11) {
        assertThat(connector.connections())
            .extracting(ConnectionInfo::calls, ConnectionInfo::queued, ConnectionInfo::limit)
            .containsExactly(tuple(11, 1, 10));
      }
    }

    List<ConnectionInfo> channels = connector.connections();
    assertThat(channels)
        .as("channels %s", channels)
        .hasSize(8)
        .allSatisfy(channel -> assertThat(channel.limit()).isEqualTo(10));
    assertThat(channels)
        .extracting(ConnectionInfo::calls)
        .containsExactly(11, 10, 10, 10, 10, 10, 10, 10);
    assertThat(channels).extracting(ConnectionInfo::queued).containsExactly(1, 0, 0, 0, 0, 0, 0, 0);
    assertThat(connector.queuedCallCount()).isEqualTo(1);
    assertThat(started)
        .filteredOn(stream -> !backend.isRunning(stream.name))
        .extracting(stream -> stream.name)
        .containsExactly("stream-11");
    assertThat(backend.running.get()).isEqualTo(80);
    assertThat(backend.maxRunning.get()).isEqualTo(80);
    assertThat(queueReports).hasValue(80); // the queued stream is reported once its wait ends
  }

  @Test
  void aLimitLearnedFromQueueingIsForgottenOnceTheBackendLiftsItAndNothingQueues()
      throws InterruptedException {
    Backend capped = startBackend(0, 10);
    String address = capped.address();
    CachingConnector connector = connector(/* handRun= */ true);
    ProxiedStream firstCapped = startSettled(address, capped, "capped-1");
    for (int i = 2; i <= 11; i++) {
      startSettled(address, capped, "capped-" + i);
    }
    assertThat(connector.connections())
        .extracting(ConnectionInfo::calls, ConnectionInfo::queued, ConnectionInfo::limit)
        .containsExactly(tuple(11, 1, 10));
    long first = connector.connections().get(0).id();

    // End every stream and restart the backend on the same port without the cap. The channel
    // reconnects at its next call; waitForReady lets the calls wait for that. A call started
    // before the channel has seen the old connection close would go out on that connection and
    // fail (UNAVAILABLE), so the test first waits until the channel has left READY.
    endAll();
    waiting().untilAsserted(() -> assertThat(capped.running.get()).isZero());
    capped.stop();
    ManagedChannel channel = firstCapped.lease.entry.channel();
    waiting().untilAsserted(() -> assertThat(channel.getState(false)).isNotEqualTo(READY));
    Backend lifted = startBackend(capped.port, 100);
    List<ProxiedStream> again = new ArrayList<>();
    for (int i = 1; i <= 5; i++) {
      again.add(startSettled(address, lifted, "lifted-" + i));
    }
    assertThat(again).allSatisfy(stream -> assertThat(stream.lease.entry.id).isEqualTo(first));
    assertThat(connector.queuedCallCount()).isZero();

    // The first pass finds the queueing of the 11th stream (no pass came before it); the second
    // finds none since the first, and gives the channel back its configured limit.
    assertThat(connector.expire()).isEmpty();
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::limit)
        .containsExactly(tuple(first, 10));
    assertThat(connector.expire()).isEmpty();
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::limit)
        .containsExactly(tuple(first, 100));

    // At its limit of 100 the channel takes streams past 10 instead of opening another channel.
    for (int i = 6; i <= 20; i++) {
      again.add(startSettled(address, lifted, "lifted-" + i));
    }
    assertThat(lifted.running.get()).isEqualTo(20);
    assertThat(connector.queuedCallCount()).isZero();
    assertThat(connector.connections())
        .extracting(
            ConnectionInfo::id,
            ConnectionInfo::calls,
            ConnectionInfo::queued,
            ConnectionInfo::limit)
        .containsExactly(tuple(first, 20, 0, 100));
  }

  /**
   * Starts a stream named {@code name} and waits until it has settled: it runs at {@code backend},
   * or it waits in its channel's transport while the connection carries as many streams as the
   * backend allows; in both cases the transport holds exactly the streams past that cap. Then the
   * confirmation check its creation scheduled runs (the clock moved by hand): it finds the stream
   * sent, or still waiting behind the cap, which teaches the channel its limit. No check is left
   * pending, so the next stream's creation schedules its own.
   */
  private ProxiedStream startSettled(String address, Backend backend, String name) {
    ProxiedStream stream = startStream(address, name, CallOptions.DEFAULT.withWaitForReady());
    settling()
        .untilAsserted(
            () -> {
              ConnectionInfo channel = channelOf(stream);
              int pastCap =
                  channel == null ? 0 : Math.max(0, channel.calls() - backend.streamLimit);
              assertThat(
                      channel != null
                          && channel.queued() == pastCap
                          && (backend.isRunning(name) || channel.calls() > backend.streamLimit))
                  .as("%s settled on %s (ended with %s)", name, channel, stream.closed.getNow(null))
                  .isTrue();
            });
    requireClock().forward(Duration.ofNanos(ChannelStreams.CONFIRM_NANOS));
    return stream;
  }

  private @Nullable ConnectionInfo channelOf(ProxiedStream stream) {
    long id = stream.lease.entry.id;
    for (ConnectionInfo channel : requireConnector().connections()) {
      if (channel.id() == id) {
        return channel;
      }
    }
    return null;
  }

  /** Cancels every stream from the client and waits until each has ended. */
  private void endAll() {
    for (ProxiedStream stream : streams) {
      stream.call.cancel("ended by the test", null);
    }
    for (ProxiedStream stream : streams) {
      assertThat(stream.closed).succeedsWithin(Duration.ofSeconds(10));
    }
    streams.clear();
  }

  private ProxiedStream startStream(String address, String name, CallOptions options) {
    LeasedChannel lease = requireConnector().dial(address);
    ProxiedStream stream = new ProxiedStream(name, lease, lease.newCall(HOLD, options));
    streams.add(stream);
    Metadata headers = new Metadata();
    headers.put(NAME, name);
    stream.call.start(stream, headers);
    stream.call.request(1);
    return stream;
  }

  /**
   * A connector with the defaults, plaintext; if {@code handRun}, its scheduler is run by hand
   * ({@link #clock}): the confirmation checks of queueing run only when the test moves the clock,
   * so a stream that waits a moment longer for a busy machine is never taken for a queued one.
   */
  private CachingConnector connector(boolean handRun) {
    CachingConnector.Builder builder =
        CachingConnector.builder()
            .dialer(Dialer.plaintext())
            .shutdownGracePeriod(Duration.ofSeconds(5))
            .listener(
                new ConnectorListener() {
                  @Override
                  public void onCallQueued(String address, Duration queued) {
                    queueReports.incrementAndGet();
                  }
                });
    if (handRun) {
      FakeClock fake = new FakeClock();
      clock = fake;
      builder.scheduler(fake.scheduler());
    }
    CachingConnector built = builder.build();
    connector = built;
    return built;
  }

  private FakeClock requireClock() {
    assertThat(clock).isNotNull();
    return clock;
  }

  private CachingConnector requireConnector() {
    assertThat(connector).isNotNull();
    return connector;
  }

  private Backend startBackend(int port, int streamLimit) {
    Backend backend = new Backend(port, streamLimit);
    backends.add(backend);
    return backend;
  }

  private static ConditionFactory waiting() {
    return await().atMost(Duration.ofSeconds(20));
  }

  /** Waiting for one stream to settle: polled often, since the streams start one at a time. */
  private static ConditionFactory settling() {
    return waiting().pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(2));
  }

  /**
   * A stream made as a proxy makes it: on a lease of its own, released when the call ends, however
   * it ends; {@link #closed} completes with the call's status after the release.
   */
  private static final class ProxiedStream extends ClientCall.Listener<String> {
    final String name;
    final LeasedChannel lease;
    final ClientCall<String, String> call;
    final CompletableFuture<Status> closed = new CompletableFuture<>();

    ProxiedStream(String name, LeasedChannel lease, ClientCall<String, String> call) {
      this.name = name;
      this.lease = lease;
      this.call = call;
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      lease.close();
      closed.complete(status);
    }
  }

  /**
   * A loopback Netty server with one method, {@link #HOLD}, that allows {@code streamLimit}
   * concurrent streams per connection; holds every call open until the client cancels it or the
   * server stops, and counts the calls its handler runs, by the name each call's headers carry.
   */
  private static final class Backend {
    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger maxRunning = new AtomicInteger();
    final int port;
    final int streamLimit;
    private final Set<String> runningNames = ConcurrentHashMap.newKeySet();
    private final Server server;

    Backend(int port, int streamLimit) {
      this.streamLimit = streamLimit;
      ServerCallHandler<String, String> handler =
          (call, headers) -> {
            String name = headers.get(NAME);
            runningNames.add(String.valueOf(name));
            maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
            AtomicBoolean ended = new AtomicBoolean();
            Runnable end =
                () -> {
                  if (ended.compareAndSet(false, true)) {
                    runningNames.remove(String.valueOf(name));
                    running.decrementAndGet();
                  }
                };
            return new ServerCall.Listener<>() {
              @Override
              public void onCancel() {
                end.run();
              }

              @Override
              public void onComplete() {
                end.run();
              }
            };
          };
      try {
        server =
            NettyServerBuilder.forAddress(
                    new InetSocketAddress(LOOPBACK, port), InsecureServerCredentials.create())
                .maxConcurrentCallsPerConnection(streamLimit)
                .addService(
                    ServerServiceDefinition.builder("test.Holding")
                        .addMethod(HOLD, handler)
                        .build())
                .build()
                .start();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      this.port = server.getPort();
    }

    String address() {
      return LOOPBACK + ":" + port;
    }

    void stop() throws InterruptedException {
      server.shutdownNow();
      assertThat(server.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }

    /** Whether the call named {@code name} runs at this backend now. */
    boolean isRunning(String name) {
      return runningNames.contains(name);
    }
  }

  /** Strings as UTF-8 bytes. */
  private enum Utf8Marshaller implements MethodDescriptor.Marshaller<String> {
    INSTANCE;

    @Override
    public InputStream stream(String value) {
      return new ByteArrayInputStream(value.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public String parse(InputStream stream) {
      try {
        return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
