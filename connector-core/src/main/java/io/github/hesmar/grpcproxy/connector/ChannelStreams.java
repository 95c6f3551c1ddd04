package io.github.hesmar.grpcproxy.connector;

import io.grpc.Attributes;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.Status;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * The streams of one channel as its transport reports them: the stream tracer factory that every
 * call made on a lease of the channel carries. It counts the streams whose headers wait in the
 * transport (queued), and learns from them the load at which the channel is full. Thread-safe,
 * lock-free.
 *
 * <p>A transport creates a stream ({@code streamCreated}) when a call starts, and writes its
 * headers ({@code outboundHeaders}) when the connection may carry one more stream: a Netty
 * transport at the peer's MAX_CONCURRENT_STREAMS holds the headers until a stream ends. In between
 * the stream is queued. Every stream waits a little there (for the transport's event loop), so a
 * wait alone proves nothing; a wait longer than {@link #CONFIRM_NANOS} does. While streams wait,
 * one check at a time runs that long after the last look; if a stream created before that look
 * still waits, the channel is full at the calls it carries that are not queued, and its limit
 * becomes that (docs/design.md, "Queueing seen, the limit learned"). An expiry pass that finds no
 * queueing confirmed since the last one gives the channel back its configured limit. With one
 * channel per address nothing is learned: queued streams are only counted.
 */
final class ChannelStreams extends ClientStreamTracer.Factory {

  /**
   * How long a stream's headers wait in the transport before its channel counts as full: far longer
   * than a busy event loop or a connection being set up holds them (up to 215 ms seen in tests on a
   * loaded 2-core machine), far shorter than a stream limit holds them behind long calls.
   */
  static final long CONFIRM_NANOS = TimeUnit.SECONDS.toNanos(1);

  private static final VarHandle CREATED;
  private static final VarHandle SENT;
  private static final VarHandle ARMED;

  static {
    try {
      MethodHandles.Lookup lookup = MethodHandles.lookup();
      CREATED = lookup.findVarHandle(ChannelStreams.class, "created", long.class);
      SENT = lookup.findVarHandle(ChannelStreams.class, "sent", long.class);
      ARMED = lookup.findVarHandle(ChannelStreams.class, "armed", boolean.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  /**
   * What the channels of one connector share: where checks run, who hears of waits (null: no one),
   * the configured limit, whether limits are learned (not with one channel per address, where no
   * load is counted and the only channel takes every call), and how channels' health is judged.
   */
  record Watch(
      ScheduledExecutorService scheduler,
      @Nullable ConnectorListener listener,
      int maxCalls,
      boolean learns,
      ChannelHealth.Policy health) {}

  private final Entry entry;
  private final Watch watch;

  /** Streams created on this channel; only grows. */
  @SuppressWarnings("unused") // changed through CREATED
  private volatile long created;

  /** Streams whose headers were written, or that ended before; only grows, never past created. */
  @SuppressWarnings("unused") // changed through SENT
  private volatile long sent;

  /** Whether a check is scheduled. */
  @SuppressWarnings("unused") // changed through ARMED
  private volatile boolean armed;

  /** Whether a check found queueing since the last expiry pass. */
  private volatile boolean queuedSincePass;

  ChannelStreams(Entry entry, Watch watch) {
    this.entry = entry;
    this.watch = watch;
  }

  @Override
  public ClientStreamTracer newClientStreamTracer(
      ClientStreamTracer.StreamInfo info, Metadata headers) {
    return new Tracer(this);
  }

  /** Streams whose headers wait in the transport now. */
  long queued() {
    long sent = (long) SENT.getVolatile(this); // first: created, read second, is never below it
    return (long) CREATED.getVolatile(this) - sent;
  }

  private void streamCreated() {
    CREATED.getAndAdd(this, 1L);
    armIfQueued();
  }

  /**
   * Schedules a check unless one is: it will look at the streams created by now. Called when a
   * stream is created, and by a check that leaves streams waiting. The flag is cleared before the
   * look at the counts, so that a stream created meanwhile either sees it clear or is seen.
   */
  private void armIfQueued() {
    if (!watch.learns() || armed || !ARMED.compareAndSet(this, false, true)) {
      return;
    }
    long createdNow = (long) CREATED.getVolatile(this);
    if ((long) SENT.getVolatile(this) >= createdNow) {
      armed = false; // nothing waits (all written before this look)
      if ((long) CREATED.getVolatile(this) > createdNow) {
        armIfQueued(); // one created meanwhile may have seen the flag set
      }
      return;
    }
    try {
      watch.scheduler().schedule(() -> check(createdNow), CONFIRM_NANOS, TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) {
      armed = false; // the connector is closing: nothing to learn
    }
  }

  private void streamSent(long createdNanos) {
    SENT.getAndAdd(this, 1L);
    ConnectorListener listener = watch.listener();
    if (listener != null) {
      listener.onCallQueued(entry.address, Duration.ofNanos(System.nanoTime() - createdNanos));
    }
  }

  /**
   * The check scheduled {@link #CONFIRM_NANOS} after {@code createdThen} streams had been created:
   * if one of them still waits (streams are written in the order they were created), the channel is
   * full at the calls it carries that are not queued. Then checks again while streams wait, so that
   * a stream created after the last look is looked at within two checks.
   */
  private void check(long createdThen) {
    if ((long) SENT.getVolatile(this) < createdThen) {
      learn();
    }
    armed = false;
    armIfQueued();
  }

  private void learn() {
    long carried = entry.calls() - queued();
    if (carried <= 0) {
      return; // nothing runs on it: the connection is not up, there is no limit to learn
    }
    int limit = (int) Math.max(1, Math.min(watch.maxCalls(), carried));
    entry.setLimit(limit);
    Entry first = entry.firstChannel;
    if (first != null && first.limit() > limit) {
      first.setLimit(limit); // the same backend: the address's next channels start from it
    }
    queuedSincePass = true;
  }

  /**
   * An expiry pass's look: gives the channel back its configured limit if no check found queueing
   * since the last pass.
   */
  void pass() {
    if (queuedSincePass) {
      queuedSincePass = false;
    } else if (entry.limit() != watch.maxCalls()) {
      entry.setLimit(watch.maxCalls());
    }
  }

  /**
   * One stream's tracer: reports its creation, the end of its wait exactly once, and to the
   * channel's health what arrives from the server.
   */
  private static final class Tracer extends ClientStreamTracer {

    private static final VarHandle STATE;

    static {
      try {
        STATE = MethodHandles.lookup().findVarHandle(Tracer.class, "state", int.class);
      } catch (ReflectiveOperationException e) {
        throw new ExceptionInInitializerError(e);
      }
    }

    private static final int NEW = 0;
    private static final int WAITING = 1;
    private static final int SENT_OR_ENDED = 2;

    private final ChannelStreams streams;

    /** When the stream was created; written before state becomes WAITING. */
    private long createdNanos;

    @SuppressWarnings("unused") // changed through STATE
    private volatile int state;

    Tracer(ChannelStreams streams) {
      this.streams = streams;
    }

    @Override
    public void streamCreated(Attributes transportAttrs, Metadata headers) {
      createdNanos = System.nanoTime();
      streams.streamCreated();
      state = WAITING;
    }

    @Override
    public void outboundHeaders() {
      done();
    }

    @Override
    public void inboundHeaders() {
      streams.entry.health.inbound();
    }

    @Override
    public void inboundMessage(int seqNo) {
      streams.entry.health.inbound();
    }

    @Override
    public void inboundTrailers(Metadata trailers) {
      streams.entry.health.inbound();
    }

    @Override
    public void streamClosed(Status status) {
      done();
    }

    private void done() {
      if (STATE.compareAndSet(this, WAITING, SENT_OR_ENDED)) {
        streams.streamSent(createdNanos);
      }
    }
  }
}
