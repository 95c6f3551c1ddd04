package io.github.hesmar.grpcproxy.sample;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The statuses a caller gets when the backend of its route cannot be reached, and the throttled log
 * of their causes.
 *
 * <p>The status names the route only, never the cause, which goes to the log: every failure with
 * its stack trace at DEBUG, else one WARN line per route at most every {@value
 * #LOG_INTERVAL_SECONDS} seconds with the count of failures since, so that a backend outage under
 * load does not flood the log from the transport threads.
 *
 * <p>Threads: called from the transport threads and the dial pool at once. A route's throttle takes
 * no lock: every failure is counted, and the one thread whose compare-and-set moves the route's
 * next line time writes the line, with the count it takes.
 */
final class BackendFailures {

  /** The proxy's log: its lines keep the proxy's logger name. */
  private static final Logger logger = LoggerFactory.getLogger(ReverseProxy.class);

  static final long LOG_INTERVAL_SECONDS = 10;

  /** Per route name (configured, so a bounded set), when its next WARN line may be written. */
  private static final ConcurrentMap<String, LogThrottle> LOG_THROTTLES = new ConcurrentHashMap<>();

  private BackendFailures() {}

  /**
   * The status a caller gets when the backend of {@code route} cannot be reached: UNAVAILABLE, or
   * DEADLINE_EXCEEDED when the caller's own deadline has passed; the description names the route
   * only. Logs the cause.
   */
  static Status backendUnavailable(Status cause, String route, String target) {
    if (cause.getCode() == Status.Code.CANCELLED) {
      return cause; // The caller cancelled: nobody reads this status.
    }
    String description =
        cause.getCode()
            + (cause.getDescription() != null ? ": " + cause.getDescription() : "")
            + (cause.getCause() != null ? " (" + cause.getCause() + ")" : "");
    if (logger.isDebugEnabled()) {
      logger.debug(
          "Backend of route {} ({}) unavailable: {}", route, target, description, cause.getCause());
    } else {
      long failures =
          LOG_THROTTLES.computeIfAbsent(route, r -> new LogThrottle(System::nanoTime)).failed();
      if (failures > 0) {
        logger.warn(
            "Backend of route {} ({}) unavailable: {}{}",
            route,
            target,
            description,
            failures > 1 ? " (" + failures + " failed calls since the last such line)" : "");
      }
    }
    Deadline deadline = Context.current().getDeadline();
    Status.Code code =
        deadline != null && deadline.isExpired()
            ? Status.Code.DEADLINE_EXCEEDED
            : Status.Code.UNAVAILABLE;
    return code.toStatus().withDescription("backend " + route + " unavailable");
  }

  /**
   * The backend's status as the caller sees it: a failure of the backend's transport, that is a
   * status made locally with a cause (a refused connection, a TLS or HTTP/2 failure, a closed
   * connection), becomes {@code UNAVAILABLE: backend <route> unavailable}; a status the backend
   * sent (it has no cause), a cancellation and a deadline pass unchanged.
   */
  static Status relayed(Status status, String route, String target) {
    if (status.getCause() != null
        && status.getCode() != Status.Code.CANCELLED
        && status.getCode() != Status.Code.DEADLINE_EXCEEDED) {
      return backendUnavailable(status, route, target);
    }
    return status;
  }

  /** Decides, for one route, which failures get a WARN line. */
  static final class LogThrottle {
    private final LongSupplier nanoTime;
    private final AtomicLong nextLineNanos;
    private final AtomicLong failures = new AtomicLong();

    /** A throttle whose first failure gets a line; {@code nanoTime} is its clock. */
    LogThrottle(LongSupplier nanoTime) {
      this.nanoTime = nanoTime;
      this.nextLineNanos = new AtomicLong(nanoTime.getAsLong());
    }

    /** Counts a failure; returns the failures to report in a line now, or 0 for no line. */
    long failed() {
      failures.incrementAndGet();
      long now = nanoTime.getAsLong();
      long next = nextLineNanos.get();
      if (now - next >= 0
          && nextLineNanos.compareAndSet(
              next, now + TimeUnit.SECONDS.toNanos(LOG_INTERVAL_SECONDS))) {
        return failures.getAndSet(0);
      }
      return 0;
    }
  }
}
