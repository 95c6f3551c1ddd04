package io.github.hesmar.grpcproxy.sample;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RestController;

/**
 * {@code GET /probe/{route}}: a gRPC health check of a route's backend, through the connector. An
 * unknown route answers 404 with {@code status} {@code UNKNOWN_ROUTE}, its name cut to {@value
 * Routes#MAX_ROUTE_ECHO} characters as the proxy's errors cut it.
 */
@RestController
class ProbeController {

  /** The probe's answer; no target for an unknown route. */
  record Probe(String route, @Nullable String target, String status) {}

  private final CachingConnector connector;
  private final ReverseProxy proxy;

  ProbeController(CachingConnector connector, ReverseProxy proxy) {
    this.connector = connector;
    this.proxy = proxy;
  }

  @GetMapping("/probe/{route}")
  ResponseEntity<Probe> probe(@PathVariable String route) {
    String target = proxy.routes().get(route);
    if (target == null) {
      return ResponseEntity.status(HttpStatus.NOT_FOUND)
          .body(new Probe(Routes.echo(route), null, "UNKNOWN_ROUTE"));
    }
    try (LeasedChannel channel = connector.dial(target, Duration.ofSeconds(5))) {
      String status =
          HealthGrpc.newBlockingStub(channel)
              .withDeadlineAfter(5, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance())
              .getStatus()
              .name();
      return ResponseEntity.ok(new Probe(route, target, status));
    } catch (StatusRuntimeException e) {
      return ResponseEntity.status(HttpStatus.SERVICE_UNAVAILABLE)
          .body(new Probe(route, target, e.getStatus().getCode().name()));
    }
  }
}
