package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.grpc.Attributes;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.Status;
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Counts the streams whose headers wait in their transport, as the connector's own tracer does:
 * created ({@code streamCreated}), headers not yet written ({@code outboundHeaders}) nor the stream
 * closed before. Added to every call of every case.
 */
final class QueueCounter extends ClientStreamTracer.Factory {

  private final AtomicLong created = new AtomicLong();
  private final AtomicLong sent = new AtomicLong();

  @Override
  public ClientStreamTracer newClientStreamTracer(
      ClientStreamTracer.StreamInfo info, Metadata headers) {
    return new Tracer(this);
  }

  /** The streams waiting now. */
  long queued() {
    long sentNow = sent.get(); // first: created, read second, is never below it
    return created.get() - sentNow;
  }

  /*
   * This duplicates connector-core's package-private ChannelStreams.Tracer on purpose: it measures
   * from outside the connector, so that the connector's count can be checked against it, and it
   * counts the calls of the shared channel too, which no connector sees.
   */
  private static final class Tracer extends ClientStreamTracer {

    private static final AtomicIntegerFieldUpdater<Tracer> STATE =
        AtomicIntegerFieldUpdater.newUpdater(Tracer.class, "state");
    private static final int NEW = 0;
    private static final int WAITING = 1;
    private static final int DONE = 2;

    private final QueueCounter counter;
    private volatile int state = NEW;

    Tracer(QueueCounter counter) {
      this.counter = counter;
    }

    @Override
    public void streamCreated(Attributes transportAttrs, Metadata headers) {
      counter.created.incrementAndGet();
      state = WAITING;
    }

    @Override
    public void outboundHeaders() {
      done();
    }

    @Override
    public void streamClosed(Status status) {
      done();
    }

    private void done() {
      if (STATE.compareAndSet(this, WAITING, DONE)) {
        counter.sent.incrementAndGet();
      }
    }
  }
}
