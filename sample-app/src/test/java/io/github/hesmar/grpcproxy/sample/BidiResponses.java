package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.protobuf.SimpleResponse;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** The responses of one bidi call held open by a test: messages as they come, and its end. */
final class BidiResponses implements StreamObserver<SimpleResponse> {

  private final BlockingQueue<String> messages = new LinkedBlockingQueue<>();

  /** The call's final status code, such as {@code OK}. */
  final CompletableFuture<Status.Code> end = new CompletableFuture<>();

  /** Returns the next response message, failing after 10 s without one. */
  String next() throws InterruptedException {
    String message = messages.poll(10, TimeUnit.SECONDS);
    assertThat(message).as("a response within 10 s").isNotNull();
    return message;
  }

  @Override
  public void onNext(SimpleResponse response) {
    messages.add(response.getResponseMessage());
  }

  @Override
  public void onError(Throwable t) {
    end.complete(Status.fromThrowable(t).getCode());
  }

  @Override
  public void onCompleted() {
    end.complete(Status.Code.OK);
  }
}
