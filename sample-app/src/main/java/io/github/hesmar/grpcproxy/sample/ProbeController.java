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
 * #MAX_ECHO} characters.
 */
@RestController
class ProbeController {

  /** Most characters of a caller's route name echoed back. */
  static final int MAX_ECHO = 64;

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
          .body(new Probe(echo(route), null, "UNKNOWN_ROUTE"));
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

  /** A caller's route name, cut so that an answer never echoes much of what it was sent. */
  static String echo(String route) {
    return route.length() <= MAX_ECHO ? route : route.substring(0, MAX_ECHO - 3) + "...";
  }
}
