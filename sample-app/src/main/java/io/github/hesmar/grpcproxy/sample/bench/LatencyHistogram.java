package io.github.hesmar.grpcproxy.sample.bench;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Counts latencies in microseconds, in buckets no wider than 1/512 of their value (0.2 %), so a
 * load generator can record every call without allocating and report percentiles at the end. Values
 * below 1024 µs get a bucket each; above, each power of two is split into 512 buckets. Values of
 * 2^33 µs (2.4 hours) and more are counted in the last bucket.
 *
 * <p>Thread-safe: {@link #record} may be called from any number of threads at once; percentiles
 * read while recording goes on see some of the concurrent records.
 */
final class LatencyHistogram {

  private static final int LINEAR = 1024;
  private static final int SUB_BUCKETS = 512;
  private static final int SUB_BITS = 9; // 512 = 1 << 9
  private static final int MAX_EXPONENT = 23; // values below 2^(10 + 23) µs

  private final AtomicLongArray counts = new AtomicLongArray(LINEAR + MAX_EXPONENT * SUB_BUCKETS);

  /** Records one latency; negative values count as 0. */
  void record(long micros) {
    counts.incrementAndGet(index(Math.max(0, micros)));
  }

  /** Returns how many latencies were recorded. */
  long count() {
    long total = 0;
    for (int i = 0; i < counts.length(); i++) {
      total += counts.get(i);
    }
    return total;
  }

  /**
   * Returns the latency, in microseconds, that {@code percentile} percent of the records are at or
   * below: the highest value of the bucket holding the record of that rank (nearest rank), or 0 if
   * nothing was recorded.
   *
   * @param percentile between 0 (exclusive) and 100 (inclusive)
   */
  long percentile(double percentile) {
    if (!(percentile > 0 && percentile <= 100)) {
      throw new IllegalArgumentException("percentile must be in (0, 100]: " + percentile);
    }
    long total = count();
    if (total == 0) {
      return 0;
    }
    long rank = (long) Math.ceil(percentile / 100 * total);
    long seen = 0;
    for (int i = 0; i < counts.length(); i++) {
      seen += counts.get(i);
      if (seen >= rank) {
        return highestValue(i);
      }
    }
    return highestValue(counts.length() - 1);
  }

  static int index(long micros) {
    if (micros < LINEAR) {
      return (int) micros;
    }
    // micros has its highest bit at 10 + exponent; keep the 10 highest bits (512..1023).
    int exponent = 63 - Long.numberOfLeadingZeros(micros) - SUB_BITS; // >= 1
    if (exponent > MAX_EXPONENT) {
      return LINEAR + MAX_EXPONENT * SUB_BUCKETS - 1;
    }
    int sub = (int) (micros >>> exponent) - SUB_BUCKETS; // 0..511
    return LINEAR + (exponent - 1) * SUB_BUCKETS + sub;
  }

  /** The highest value that falls into bucket {@code index}. */
  static long highestValue(int index) {
    if (index < LINEAR) {
      return index;
    }
    int exponent = (index - LINEAR) / SUB_BUCKETS + 1;
    long sub = (index - LINEAR) % SUB_BUCKETS + SUB_BUCKETS;
    return ((sub + 1) << exponent) - 1;
  }
}
