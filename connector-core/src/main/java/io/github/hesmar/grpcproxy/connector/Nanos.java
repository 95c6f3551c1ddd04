package io.github.hesmar.grpcproxy.connector;

import java.time.Duration;

/** Durations as {@link System#nanoTime()} arithmetic that saturates instead of overflowing. */
final class Nanos {

  private Nanos() {}

  /**
   * {@code duration} in nanoseconds, or {@link Long#MAX_VALUE} ({@code MIN_VALUE}) past the range.
   */
  static long saturated(Duration duration) {
    try {
      return duration.toNanos();
    } catch (ArithmeticException e) {
      return duration.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
    }
  }

  /**
   * The {@link System#nanoTime()} at {@code nanos} after {@code start}, or {@link Long#MAX_VALUE}
   * (no deadline) if {@code nanos} is {@code Long.MAX_VALUE} or the sum overflows. A negative
   * {@code nanos} gives a deadline in the past.
   */
  static long deadlineAfter(long start, long nanos) {
    long sum = start + nanos;
    if (nanos == Long.MAX_VALUE || (nanos > 0 && sum < start)) {
      return Long.MAX_VALUE;
    }
    return sum;
  }
}
