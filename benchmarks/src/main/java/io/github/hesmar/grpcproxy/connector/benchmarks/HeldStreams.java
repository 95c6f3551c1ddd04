package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.benchmarks.QueueSampler.Queued;
import io.github.hesmar.grpcproxy.connector.benchmarks.StreamLimitTables.StreamResult;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The server-streaming case of {@link StreamLimitBenchmark}: opens {@link #STREAMS} {@code Hold}
 * streams through one arm, reports how many run, then ends them all and waits for them to close.
 */
final class HeldStreams {

  /** Server streams held open. */
  static final int STREAMS = 500;

  private HeldStreams() {}

  /** Runs one arm against a backend of its own, prints its row with a {@code #} and returns it. */
  static StreamResult run(String name, Route.Factory routes, int backendLimit) throws Exception {
    try (StreamLimitBackend backend =
            StreamLimitBackend.start(StreamLimitBackend.DEFAULT_DELAY_MILLIS, backendLimit);
        Route route = routes.open(backend.target());
        QueueSampler sampler = new QueueSampler(route)) {
      sampler.start();
      AtomicInteger firstMessages = new AtomicInteger();
      AtomicInteger failed = new AtomicInteger();
      CountDownLatch closed = new CountDownLatch(STREAMS);
      for (int i = 0; i < STREAMS; i++) {
        StreamObserver<byte[]> observer =
            new StreamObserver<>() {
              private boolean first = true;

              @Override
              public void onNext(byte[] value) {
                if (first) {
                  first = false;
                  firstMessages.incrementAndGet();
                }
              }

              @Override
              public void onError(Throwable t) {
                failed.incrementAndGet();
                closed.countDown();
              }

              @Override
              public void onCompleted() {
                closed.countDown();
              }
            };
        try {
          route.call(StreamLimitBackend.HOLD, ClientCalls::asyncServerStreamingCall, observer);
        } catch (RuntimeException e) {
          failed.incrementAndGet();
          closed.countDown();
        }
      }
      // Until every stream runs at the backend and has its first message at the client, or both
      // numbers stopped moving for a second once a stream runs (a channel may still be connecting
      // in a cold JVM: --workload streams), or 20 s.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      int running = backend.running();
      int first = firstMessages.get();
      long since = System.nanoTime();
      while ((running < STREAMS || first < STREAMS)
          && (running == 0 || System.nanoTime() - since < TimeUnit.SECONDS.toNanos(1))
          && System.nanoTime() - deadline < 0) {
        Thread.sleep(20);
        int runningNow = backend.running();
        int firstNow = firstMessages.get();
        if (runningNow != running || firstNow != first) {
          running = runningNow;
          first = firstNow;
          since = System.nanoTime();
        }
      }
      String channels = route.channels((int) closed.getCount());
      Queued queuedEnd = sampler.stop();
      String limits = route.limits();
      long ending = System.nanoTime();
      backend.endStreams();
      if (!closed.await(60, TimeUnit.SECONDS)) {
        throw new IllegalStateException(name + ": streams still open a minute after their end");
      }
      double closedAfterMillis = (System.nanoTime() - ending) / 1e6;
      Queued queuedAfter = sampler.sample();
      StreamResult result =
          new StreamResult(
              name,
              running,
              backend.maxRunning(),
              first,
              channels,
              closedAfterMillis,
              failed.get(),
              sampler.max(),
              queuedEnd,
              queuedAfter,
              limits);
      System.out.println("# " + result.row());
      return result;
    }
  }
}
