package io.github.hesmar.grpcproxy.connector;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ClientStreamTracer;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.InstantSource;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.jspecify.annotations.Nullable;

/**
 * The health of one channel: its connectivity state as the channel reports it, a connection attempt
 * made now when a call starts on it in TRANSIENT_FAILURE, and whether its connection went silent
 * (docs/design.md, "15. Channels that heal"). Thread-safe.
 *
 * <p><b>A returning backend.</b> grpc-java waits out an exponential backoff (up to 120 s) between
 * connection attempts; a call started meanwhile fails at once. A call started on a channel in
 * TRANSIENT_FAILURE resets that backoff, at most once per {@link #RESET_INTERVAL_MILLIS} per
 * channel (a compare-and-set on the time of the last reset picks the one caller), so that the first
 * call after the backend listens again finds it within about a second, whatever the outage's
 * length, and a down backend gets one connection attempt per second per channel, not one per call.
 * The state is followed by {@code notifyWhenStateChanged}; a channel that does not report its state
 * (the API's default throws) is never reset.
 *
 * <p><b>A silent connection.</b> A connection that stops carrying bytes without closing (a dropped
 * NAT or load-balancer entry, a frozen peer) keeps its channel READY, and every call on it runs
 * into its deadline. Calls that end DEADLINE_EXCEEDED (or UNAVAILABLE because keepalive failed) are
 * counted in a run; anything that arrives from the server on any stream of the channel ({@link
 * #inbound}, bumped by the stream tracer) ends the run. The first failure of a run sends one probe:
 * a call to {@code grpc.health.v1.Health/Check} with the run's silence as its deadline, which any
 * live server answers (OK, NOT_FOUND or UNIMPLEMENTED), however slow its handlers. A run of {@code
 * failedCalls} failures whose probe heard nothing for the whole silence marks the channel silent,
 * once: the connector then retires it. A backend that is merely slow answers the probe, so it is
 * never retired; a probe is sent at most once per silence per channel, so a slow backend sees at
 * most one a silence. The run is kept under this object's lock: failures are rare, and the lock is
 * never taken on a call that succeeds.
 */
final class ChannelHealth {

  /** The least time between two backoff resets of one channel. */
  static final long RESET_INTERVAL_MILLIS = 1000;

  /** The method a probe calls: answered by any gRPC server, if only with UNIMPLEMENTED. */
  static final MethodDescriptor<byte[], byte[]> PROBE =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName("grpc.health.v1.Health/Check")
          .setRequestMarshaller(Bytes.INSTANCE)
          .setResponseMarshaller(Bytes.INSTANCE)
          .build();

  private static final byte[] EMPTY = new byte[0];

  private static final VarHandle INBOUND;
  private static final VarHandle LAST_RESET;

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      INBOUND = lookup.findVarHandle(ChannelHealth.class, "inbound", int.class);
      LAST_RESET = lookup.findVarHandle(ChannelHealth.class, "lastResetMillis", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  /**
   * What the channels of one connector share: the clock, whether silent channels are retired, after
   * how many failed calls in a row and how long a silence, and what retires one (false if it did
   * not: the address had its share of retirements, or the channel was detached already).
   */
  record Policy(
      InstantSource clock,
      boolean retires,
      int failedCalls,
      long silenceMillis,
      Predicate<Entry> retire) {}

  private final Entry entry;
  private final Policy policy;

  /** The channel, once published; its state followed from then on. */
  private volatile @Nullable ManagedChannel channel;

  private volatile @Nullable ConnectivityState state;
  private volatile long stateSinceMillis;

  @SuppressWarnings("unused") // changed through LAST_RESET
  private volatile long lastResetMillis = Long.MIN_VALUE / 2;

  /**
   * Bumped for everything that arrives from the server on a stream of this channel. Racing bumps
   * may lose counts; they never leave it unchanged, which is all a run looks at.
   */
  @SuppressWarnings("unused") // changed through INBOUND
  private volatile int inbound;

  // Guarded by this.
  private int inboundSeen;
  private int failures;
  private boolean probing;

  /** Whether the probe of the current run ended without an answer. */
  private boolean probeUnanswered;

  private long probeSentMillis = Long.MIN_VALUE / 2;
  private boolean silent;

  ChannelHealth(Entry entry, Policy policy) {
    this.entry = entry;
    this.policy = policy;
  }

  /** Starts following the state of the just-published {@code channel}. */
  void watch(ManagedChannel channel) {
    this.channel = channel;
    try {
      follow(channel, channel.getState(/* requestConnection= */ false));
    } catch (UnsupportedOperationException e) {
      // The channel does not report its state: nothing to follow, no backoff to reset.
    }
  }

  private void follow(ManagedChannel channel, ConnectivityState seen) {
    state = seen;
    stateSinceMillis = policy.clock().millis();
    if (seen != ConnectivityState.SHUTDOWN) {
      channel.notifyWhenStateChanged(
          seen, () -> follow(channel, channel.getState(/* requestConnection= */ false)));
    }
  }

  /** The channel's connectivity state as last reported, or null if it reports none. */
  @Nullable ConnectivityState state() {
    return state;
  }

  /** When the channel entered {@link #state()}, in the clock's millis. */
  long stateSinceMillis() {
    return stateSinceMillis;
  }

  /** The connector's clock, in millis. */
  long nowMillis() {
    return policy.clock().millis();
  }

  /** Whether the channel was found silent (and its retirement asked for). */
  synchronized boolean isSilent() {
    return silent;
  }

  /**
   * A call is about to start on the channel: if it is in TRANSIENT_FAILURE and no reset was made in
   * the last {@link #RESET_INTERVAL_MILLIS}, makes it try to connect now.
   */
  void callStarting() {
    if (state != ConnectivityState.TRANSIENT_FAILURE) {
      return;
    }
    ManagedChannel current = channel;
    long now = policy.clock().millis();
    long last = lastResetMillis;
    if (current != null
        && now - last >= RESET_INTERVAL_MILLIS
        && LAST_RESET.compareAndSet(this, last, now)) {
      current.resetConnectBackoff();
    }
  }

  /** Something arrived from the server on a stream of this channel. */
  void inbound() {
    INBOUND.setOpaque(this, (int) INBOUND.getOpaque(this) + 1);
  }

  /**
   * A call made on a lease of this channel closed with {@code status}, as its caller sees it (not
   * as its stream does: with grpc-java's retries on, the default, a stream whose call passed its
   * deadline is closed CANCELLED).
   */
  void callClosed(Status status) {
    if (policy.retires() && isSilentFailure(status, state)) {
      failed();
    }
  }

  /**
   * Whether a call's end counts toward a silent connection: UNAVAILABLE because keepalive found the
   * connection gone, or DEADLINE_EXCEEDED on a channel that is READY (or does not say): a channel
   * that is connecting or failing to connect fails its calls for that, not for a silent connection.
   */
  static boolean isSilentFailure(Status status, @Nullable ConnectivityState state) {
    if (status.getCode() == Status.Code.DEADLINE_EXCEEDED) {
      return state == null || state == ConnectivityState.READY;
    }
    String description = status.getDescription();
    return status.getCode() == Status.Code.UNAVAILABLE
        && description != null
        && description.startsWith("Keepalive failed");
  }

  private void failed() {
    ManagedChannel probed = null;
    boolean retire;
    synchronized (this) {
      if (silent) {
        return;
      }
      int now = (int) INBOUND.getVolatile(this);
      if (now != inboundSeen) {
        inboundSeen = now; // something arrived since the run began: a new run
        failures = 0;
        probeUnanswered = false;
      }
      failures++;
      long nowMillis = policy.clock().millis();
      if (!probing && !probeUnanswered && nowMillis - probeSentMillis >= policy.silenceMillis()) {
        probing = true;
        probeSentMillis = nowMillis;
        probed = channel;
      }
      retire = markSilentIfDue();
    }
    if (probed != null) {
      probe(probed);
    }
    if (retire) {
      retire();
    }
  }

  /** Asks for this silent channel's retirement; if refused, a new run may ask again. */
  private void retire() {
    if (!policy.retire().test(entry)) {
      synchronized (this) {
        silent = false;
        failures = 0;
        probeUnanswered = false;
      }
    }
  }

  /**
   * Under the lock: marks the channel silent if its run is long enough and its probe unanswered.
   */
  private boolean markSilentIfDue() {
    if (!silent && probeUnanswered && failures >= policy.failedCalls()) {
      silent = true;
      return true;
    }
    return false;
  }

  private void probe(ManagedChannel channel) {
    int before = (int) INBOUND.getVolatile(this);
    ClientCall<byte[], byte[]> call;
    try {
      call =
          channel.newCall(
              PROBE,
              CallOptions.DEFAULT
                  .withDeadlineAfter(policy.silenceMillis(), TimeUnit.MILLISECONDS)
                  .withStreamTracerFactory(new ProbeTracers(this)));
      call.start(
          new ClientCall.Listener<>() {
            @Override
            public void onClose(Status status, Metadata trailers) {
              probed((int) INBOUND.getVolatile(ChannelHealth.this) != before);
            }
          },
          new Metadata());
      call.sendMessage(EMPTY);
      call.halfClose();
      call.request(1);
    } catch (RuntimeException e) {
      probed(/* answered= */ false); // the channel refused the call: it is shut down or broken
    }
  }

  /** The probe ended: the server answered it or not. */
  private void probed(boolean answered) {
    boolean retire;
    synchronized (this) {
      probing = false;
      if (answered) {
        inboundSeen = (int) INBOUND.getVolatile(this);
        failures = 0;
        return;
      }
      probeUnanswered = true;
      retire = markSilentIfDue();
    }
    if (retire) {
      retire();
    }
  }

  /** The probe's stream: what arrives on it counts as {@link #inbound}. */
  private static final class ProbeTracers extends ClientStreamTracer.Factory {
    private final ChannelHealth health;

    ProbeTracers(ChannelHealth health) {
      this.health = health;
    }

    @Override
    public ClientStreamTracer newClientStreamTracer(
        ClientStreamTracer.StreamInfo info, Metadata headers) {
      return new ClientStreamTracer() {
        @Override
        public void inboundHeaders() {
          health.inbound();
        }

        @Override
        public void inboundTrailers(Metadata trailers) {
          health.inbound();
        }
      };
    }
  }

  /** Bytes as they are: the probe's request is empty, its response ignored. */
  private enum Bytes implements MethodDescriptor.Marshaller<byte[]> {
    INSTANCE;

    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      return EMPTY; // never read: only its arrival counts
    }
  }
}
