package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;

/**
 * The Reactor form of {@link CachingConnector#dialAsync} that README shows a WebFlux user: a lease
 * taken when the Mono is subscribed, used for one call, released however the call ends, and nothing
 * left behind when the subscriber cancels while the dial is in flight.
 */
class ReactorFormTest {

  @RegisterExtension final HealthBackend backend = new HealthBackend();

  private final CountDownLatch dialing = new CountDownLatch(1);
  private final CountDownLatch proceed = new CountDownLatch(1);
  private volatile boolean holdDials;

  private final CachingConnector connector =
      CachingConnector.builder()
          .dialer(
              address -> {
                if (holdDials) {
                  dialing.countDown();
                  proceed.await();
                }
                return InProcessChannelBuilder.forName(address).build();
              })
          .shutdownGracePeriod(Duration.ZERO)
          .build();

  @AfterEach
  void close() {
    proceed.countDown();
    connector.close();
  }

  /** As README's "A door for event loops" writes it. */
  private Mono<HealthCheckResponse> check(String address) {
    return Mono.usingWhen(
        Mono.fromFuture(() -> connector.dialAsync(address)),
        lease ->
            Mono.create(
                sink ->
                    HealthGrpc.newStub(lease)
                        .check(
                            HealthCheckRequest.getDefaultInstance(),
                            new StreamObserver<>() {
                              @Override
                              public void onNext(HealthCheckResponse response) {
                                sink.success(response);
                              }

                              @Override
                              public void onError(Throwable failure) {
                                sink.error(failure);
                              }

                              @Override
                              public void onCompleted() {}
                            })),
        lease -> Mono.fromRunnable(lease::close));
  }

  @Test
  void aCallMadeThroughUsingWhenReleasesItsLease() {
    HealthCheckResponse response = check(backend.name()).block(Duration.ofSeconds(10));
    assertThat(response).isNotNull();
    assertThat(response.getStatus()).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    assertThat(connector.leaseCount()).isZero();
    assertThat(connector.connectionCount()).isEqualTo(1);
  }

  @Test
  void aSubscriberThatCancelsDuringTheDialLeavesNothingBehind() throws Exception {
    holdDials = true;
    Disposable subscription = check(backend.name()).subscribe();
    assertThat(dialing.await(10, TimeUnit.SECONDS)).isTrue();
    PendingDial pending = connector.pendingDial(backend.name());
    assertThat(pending).isNotNull();
    assertThat(pending.waiterCount()).isEqualTo(1);

    subscription.dispose();
    assertThat(pending.waiterCount()).isZero();
    proceed.countDown();
    await().atMost(Duration.ofSeconds(10)).until(() -> connector.connectionCount() == 1);
    assertThat(connector.leaseCount()).isZero();
  }
}
