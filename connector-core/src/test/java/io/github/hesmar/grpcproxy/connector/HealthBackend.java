package io.github.hesmar.grpcproxy.connector;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/** A real in-process gRPC server with the health service, started for each test. */
final class HealthBackend implements BeforeEachCallback, AfterEachCallback {

  private Server server;
  private String name;

  @Override
  public void beforeEach(ExtensionContext context) throws IOException {
    name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .addService(new HealthStatusManager().getHealthService())
            .build()
            .start();
  }

  @Override
  public void afterEach(ExtensionContext context) throws InterruptedException {
    server.shutdownNow();
    server.awaitTermination(5, TimeUnit.SECONDS);
  }

  String name() {
    return name;
  }

  /** Makes a real health check over {@code channel}. */
  static HealthCheckResponse.ServingStatus check(io.grpc.Channel channel) {
    return HealthGrpc.newBlockingStub(channel)
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance())
        .getStatus();
  }
}
