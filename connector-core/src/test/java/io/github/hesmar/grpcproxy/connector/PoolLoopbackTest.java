package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;
import static org.awaitility.Awaitility.await;

import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleRequest;
import io.grpc.testing.protobuf.SimpleResponse;
import io.grpc.testing.protobuf.SimpleServiceGrpc;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.awaitility.core.ConditionFactory;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The pool of channels per address (docs/design.md, "9. The pool of an address") against a real
 * loopback Netty backend that allows {@value #STREAM_LIMIT} concurrent streams per connection, as
 * Google's front ends and many proxies do, through real plaintext client channels.
 *
 * <p>Each call here is made as a proxy makes it (see the sample's {@code ReverseProxy}): dial,
 * start the call on the lease, and release the lease when the call ends, however it ends. The
 * backend holds every call open until the test ends it, and counts the calls that reached it.
 *
 * <ul>
 *   <li>With the defaults (100 calls per channel, 8 channels per address), 300 long streams all run
 *       at the backend at once, over three channels of 100 calls each; once they end, two expiry
 *       passes leave the address only the channels in use (a first channel stays while the address
 *       has others), and every channel the dialer created is shut down exactly once.
 *   <li>With one channel per address, the same 300 streams run 100 at a time: the rest wait in the
 *       client's transport until a stream ends. This is what the first test would see without the
 *       pool.
 *   <li>Unary calls, 10 per channel: 20 calls held open use two channels, 10 each, and a later dial
 *       leases the first channel with room, not the one with the fewest calls in flight.
 * </ul>
 *
 * <p>The calls of each test are started one after the other from the test thread, so that the load
 * the connector reads at each dial is exact: dials racing for one address may pick the same channel
 * before their calls start (see {@link AddressPool}), which these tests do not look at.
 */
class PoolLoopbackTest {

  private static final String LOOPBACK = "127.0.0.1";
  private static final int STREAM_LIMIT = 100;
  private static final int STREAMS = 300;

  private final HoldingBackend backend = new HoldingBackend();
  private final List<TrackedChannel> created = new CopyOnWriteArrayList<>();
  private final Dialer plaintext = Dialer.plaintext();
  private final Dialer tracking =
      target -> {
        TrackedChannel channel =
            new TrackedChannel(target, created.size(), plaintext.dial(target), false);
        created.add(channel);
        return channel;
      };

  private @Nullable Server server;
  private @Nullable CachingConnector connector;
  private String address;

  @BeforeEach
  void startBackend() throws IOException {
    server =
        NettyServerBuilder.forAddress(
                new InetSocketAddress(LOOPBACK, 0), InsecureServerCredentials.create())
            .maxConcurrentCallsPerConnection(STREAM_LIMIT)
            .addService(backend)
            .build()
            .start();
    address = LOOPBACK + ":" + server.getPort();
  }

  @AfterEach
  void closeEverything() throws InterruptedException {
    try {
      if (connector != null) {
        connector.close();
      }
    } finally {
      if (server != null) {
        server.shutdownNow();
        server.awaitTermination(10, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void threeHundredLongStreamsRunAtOnceOnThreeChannelsAndExpiryLeavesOnlyTheChannelsInUse() {
    CachingConnector connector = connector(CachingConnector.builder());

    List<ProxiedCall> streams = new ArrayList<>();
    for (int i = 0; i < STREAMS; i++) {
      streams.add(startStream("stream-" + i));
    }

    waiting().untilAsserted(() -> assertThat(backend.started.get()).isEqualTo(STREAMS));
    assertThat(backend.running.get()).isEqualTo(STREAMS);
    List<ConnectionInfo> busy = connector.connections();
    assertThat(busy)
        .hasSizeGreaterThanOrEqualTo(3)
        .allSatisfy(
            channel -> {
              assertThat(channel.address()).isEqualTo(address);
              assertThat(channel.calls()).isLessThanOrEqualTo(STREAM_LIMIT);
            });
    // Dialed one after the other, each channel fills before the next one opens.
    assertThat(busy).extracting(ConnectionInfo::calls).containsExactly(100, 100, 100);
    assertThat(busy).extracting(ConnectionInfo::leases).containsExactly(100, 100, 100);
    assertThat(created).hasSize(3);
    long first = busy.get(0).id();
    long second = busy.get(1).id();
    long third = busy.get(2).id();

    // Keep the last stream, on the third channel, open; end the others.
    ProxiedCall kept = streams.get(STREAMS - 1);
    assertThat(kept.lease.entry.id).isEqualTo(third);
    for (ProxiedCall stream : streams.subList(0, STREAMS - 1)) {
      backend.end(stream.name);
    }
    for (ProxiedCall stream : streams.subList(0, STREAMS - 1)) {
      assertThat(stream.closed).succeedsWithin(Duration.ofSeconds(30)).isEqualTo(Status.Code.OK);
    }
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::calls, ConnectionInfo::leases)
        .containsExactly(tuple(first, 0, 0), tuple(second, 0, 0), tuple(third, 1, 1));

    // The idle second channel expires; the first stays while the address has another channel.
    assertThat(connector.expire()).isEmpty();
    assertThat(connector.expire()).containsExactly(address);
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::calls)
        .containsExactly(tuple(first, 0), tuple(third, 1));
    assertThat(created).extracting(c -> c.shutdowns.get()).containsExactly(0, 1, 0);
    assertThat(connector.connectionCount()).isEqualTo(2);

    // Once the last stream ends, nothing is in use: two passes close both.
    backend.end(kept.name);
    assertThat(kept.closed).succeedsWithin(Duration.ofSeconds(30)).isEqualTo(Status.Code.OK);
    assertThat(connector.callCount()).isZero();
    assertThat(connector.leaseCount()).isZero();
    assertThat(connector.expire()).isEmpty();
    assertThat(connector.expire()).containsExactly(address, address);
    assertThat(connector.connections()).isEmpty();
    assertThat(connector.connectionCount()).isZero();

    connector.close();
    assertThat(created).allSatisfy(channel -> assertThat(channel.shutdowns).hasValue(1));
    waiting()
        .untilAsserted(
            () -> assertThat(created).allSatisfy(c -> assertThat(c.isTerminated()).isTrue()));
    assertThat(backend.maxRunning.get()).isEqualTo(STREAMS);
  }

  @Test
  void withOneChannelPerAddressOnlyOneHundredStreamsRunAndTheRestWaitInTheTransport() {
    CachingConnector connector = connector(CachingConnector.builder().maxChannelsPerAddress(1));

    List<ProxiedCall> streams = new ArrayList<>();
    for (int i = 0; i < STREAMS; i++) {
      streams.add(startStream("stream-" + i));
    }

    waiting().untilAsserted(() -> assertThat(backend.started.get()).isEqualTo(STREAM_LIMIT));
    assertThat(connector.connections())
        .singleElement()
        .satisfies(channel -> assertThat(channel.calls()).isEqualTo(STREAMS));
    assertThat(backend.running.get()).isEqualTo(STREAM_LIMIT);
    assertThat(streams).noneSatisfy(stream -> assertThat(stream.closed).isDone());

    // The waiting streams start only as running ones end: 100 more per 100 ended.
    for (int ended = STREAM_LIMIT; ended <= STREAMS; ended += STREAM_LIMIT) {
      List<String> running = backend.heldNames();
      assertThat(running).hasSize(STREAM_LIMIT);
      running.forEach(backend::end);
      int expected = Math.min(STREAMS, ended + STREAM_LIMIT);
      waiting().untilAsserted(() -> assertThat(backend.started.get()).isEqualTo(expected));
      if (ended < STREAMS) {
        waiting().untilAsserted(() -> assertThat(backend.running.get()).isEqualTo(STREAM_LIMIT));
      }
    }
    for (ProxiedCall stream : streams) {
      assertThat(stream.closed).succeedsWithin(Duration.ofSeconds(30)).isEqualTo(Status.Code.OK);
    }
    assertThat(backend.maxRunning.get()).isEqualTo(STREAM_LIMIT);

    assertThat(connector.expire()).isEmpty();
    assertThat(connector.expire()).containsExactly(address);
    connector.close();
    assertThat(created).singleElement().satisfies(c -> assertThat(c.shutdowns).hasValue(1));
  }

  @Test
  void unaryCallsFillTenPerChannelAndADialLeasesTheFirstChannelWithRoom() {
    CachingConnector connector = connector(CachingConnector.builder().maxCallsPerChannel(10));

    List<ProxiedCall> calls = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      calls.add(startUnary("unary-" + i));
    }
    waiting().untilAsserted(() -> assertThat(backend.started.get()).isEqualTo(20));
    List<ConnectionInfo> channels = connector.connections();
    assertThat(channels).extracting(ConnectionInfo::calls).containsExactly(10, 10);
    long a = channels.get(0).id();
    long b = channels.get(1).id();
    assertThat(calls.subList(0, 10)).allSatisfy(c -> assertThat(c.lease.entry.id).isEqualTo(a));
    assertThat(calls.subList(10, 20)).allSatisfy(c -> assertThat(c.lease.entry.id).isEqualTo(b));

    // One call ends on A: A has room again, so the next dial leases A.
    end(calls.get(0));
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::calls)
        .containsExactly(tuple(a, 9), tuple(b, 10));
    ProxiedCall onA = startUnary("unary-20");
    assertThat(onA.lease.entry.id).isEqualTo(a);
    waiting().untilAsserted(() -> assertThat(backend.started.get()).isEqualTo(21));
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::calls)
        .containsExactly(tuple(a, 10), tuple(b, 10));
    assertThat(created).hasSize(2);

    // A with 9 calls has room: the next dial leases A, though B with 8 has fewer, so that B goes
    // idle first when the load falls. A is full then: the next one leases B.
    end(calls.get(1));
    end(calls.get(10));
    end(calls.get(11));
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::calls)
        .containsExactly(tuple(a, 9), tuple(b, 8));
    ProxiedCall againOnA = startUnary("unary-21");
    assertThat(againOnA.lease.entry.id).isEqualTo(a);
    ProxiedCall onB = startUnary("unary-22");
    assertThat(onB.lease.entry.id).isEqualTo(b);
    assertThat(connector.connections())
        .extracting(ConnectionInfo::id, ConnectionInfo::calls)
        .containsExactly(tuple(a, 10), tuple(b, 9));
    waiting().untilAsserted(() -> assertThat(backend.started.get()).isEqualTo(23));

    for (ProxiedCall call : calls.subList(2, 10)) {
      end(call);
    }
    for (ProxiedCall call : calls.subList(12, 20)) {
      end(call);
    }
    end(onA);
    end(againOnA);
    end(onB);
    assertThat(connector.callCount()).isZero();
    assertThat(connector.leaseCount()).isZero();
    assertThat(connector.expire()).isEmpty();
    assertThat(connector.expire()).containsExactly(address, address);
    connector.close();
    assertThat(created).allSatisfy(channel -> assertThat(channel.shutdowns).hasValue(1));
  }

  private CachingConnector connector(CachingConnector.Builder builder) {
    CachingConnector built =
        builder.dialer(tracking).shutdownGracePeriod(Duration.ofSeconds(5)).build();
    connector = built;
    return built;
  }

  /** Ends {@code call} at the backend and waits until the client has seen it end. */
  private void end(ProxiedCall call) {
    backend.end(call.name);
    assertThat(call.closed).succeedsWithin(Duration.ofSeconds(30)).isEqualTo(Status.Code.OK);
  }

  private ProxiedCall startStream(String name) {
    ProxiedCall call = new ProxiedCall(name, requireConnector().dial(address));
    SimpleServiceGrpc.newStub(call.lease).serverStreamingRpc(request(name), call);
    return call;
  }

  private ProxiedCall startUnary(String name) {
    ProxiedCall call = new ProxiedCall(name, requireConnector().dial(address));
    SimpleServiceGrpc.newStub(call.lease).unaryRpc(request(name), call);
    return call;
  }

  private CachingConnector requireConnector() {
    assertThat(connector).isNotNull();
    return connector;
  }

  private static SimpleRequest request(String name) {
    return SimpleRequest.newBuilder().setRequestMessage(name).build();
  }

  private static ConditionFactory waiting() {
    return await().atMost(Duration.ofSeconds(30));
  }

  /**
   * A call made as a proxy makes it: on a lease of its own, released when the call ends, however it
   * ends; {@link #closed} completes with the call's status code after the release.
   */
  private static final class ProxiedCall implements StreamObserver<SimpleResponse> {
    final String name;
    final LeasedChannel lease;
    final CompletableFuture<Status.Code> closed = new CompletableFuture<>();

    ProxiedCall(String name, LeasedChannel lease) {
      this.name = name;
      this.lease = lease;
    }

    @Override
    public void onNext(SimpleResponse value) {}

    @Override
    public void onError(Throwable t) {
      lease.close();
      closed.complete(Status.fromThrowable(t).getCode());
    }

    @Override
    public void onCompleted() {
      lease.close();
      closed.complete(Status.Code.OK);
    }
  }

  /**
   * A backend whose unary and server-streaming methods hold every call open until {@link #end} is
   * called with the call's request message; counts the calls that started and that are running.
   */
  private static final class HoldingBackend extends SimpleServiceGrpc.SimpleServiceImplBase {
    final AtomicInteger started = new AtomicInteger();
    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger maxRunning = new AtomicInteger();
    private final Map<String, StreamObserver<SimpleResponse>> held = new ConcurrentHashMap<>();

    @Override
    public void unaryRpc(SimpleRequest request, StreamObserver<SimpleResponse> responses) {
      hold(request, responses);
    }

    @Override
    public void serverStreamingRpc(
        SimpleRequest request, StreamObserver<SimpleResponse> responses) {
      hold(request, responses);
    }

    private void hold(SimpleRequest request, StreamObserver<SimpleResponse> responses) {
      String name = request.getRequestMessage();
      ((ServerCallStreamObserver<SimpleResponse>) responses)
          .setOnCancelHandler(
              () -> {
                if (held.remove(name) != null) {
                  running.decrementAndGet();
                }
              });
      held.put(name, responses);
      maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
      started.incrementAndGet();
    }

    /** Answers the call named {@code name} and ends it. */
    void end(String name) {
      StreamObserver<SimpleResponse> responses = held.remove(name);
      assertThat(responses).as("call %s held at the backend", name).isNotNull();
      running.decrementAndGet();
      responses.onNext(SimpleResponse.newBuilder().setResponseMessage(name).build());
      responses.onCompleted();
    }

    /** The calls held now. */
    List<String> heldNames() {
      return new ArrayList<>(held.keySet());
    }
  }
}
