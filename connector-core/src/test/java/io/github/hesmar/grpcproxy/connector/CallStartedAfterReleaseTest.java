package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/**
 * A call made on a held lease and started after the release, while an expiry pass has set CLOSED
 * but not yet called shutdown(), never starts on the closing channel: it fails at once with
 * UNAVAILABLE (docs/design.md, "Calls and the close").
 */
class CallStartedAfterReleaseTest {

  @Test
  void aCallStartedInTheWindowBetweenClosedAndShutdownDoesNotRunOnTheClosingChannel()
      throws Exception {
    CountDownLatch shuttingDown = new CountDownLatch(1);
    CountDownLatch proceed = new CountDownLatch(1);
    TrackedChannel tracked = new TrackedChannel("a", 0, null, false);
    ManagedChannel channel =
        new ForwardingChannel(tracked) {
          @Override
          public ManagedChannel shutdown() {
            shuttingDown.countDown();
            try {
              proceed.await();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
            return tracked.shutdown();
          }
        };
    ExecutorService expiryThread = Executors.newSingleThreadExecutor();
    try (CachingConnector connector =
        CachingConnector.builder()
            .dialer(address -> channel)
            .dialExecutor(Runnable::run)
            .shutdownGracePeriod(Duration.ofHours(1))
            .build()) {
      LeasedChannel lease = connector.dial("a");
      AtomicReference<@Nullable FakeCall<?, ?>> made = new AtomicReference<>();
      ClientCall<String, String> call =
          lease.newCall(FakeCall.METHOD, CallOptions.DEFAULT.withOption(FakeCall.MADE, made::set));
      lease.close();
      connector.expire(); // idle pass 1
      Future<?> expiry = expiryThread.submit(connector::expire); // pass 2: CLOSED, then shutdown()
      assertThat(shuttingDown.await(10, TimeUnit.SECONDS)).isTrue();

      AtomicReference<@Nullable Status> closedWith = new AtomicReference<>();
      call.start(
          new ClientCall.Listener<String>() {
            @Override
            public void onClose(Status status, Metadata trailers) {
              closedWith.set(status);
            }
          },
          new Metadata());
      proceed.countDown();
      expiry.get(10, TimeUnit.SECONDS);

      // Either the call holds the channel (rule 8), or it fails at once, as Entry's comment says;
      // it must not be left running on a channel that expiry shut down.
      assertThat(tracked.isShutdown()).isTrue();
      assertThat(tracked.callsInFlight)
          .as("calls running on the channel expiry shut down (call closed with %s)", closedWith)
          .isEmpty();
    } finally {
      proceed.countDown();
      expiryThread.shutdownNow();
    }
  }
}
