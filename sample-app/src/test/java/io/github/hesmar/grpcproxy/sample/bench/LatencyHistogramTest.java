package io.github.hesmar.grpcproxy.sample.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatIllegalArgumentException;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class LatencyHistogramTest {

  final LatencyHistogram histogram = new LatencyHistogram();

  @Test
  void emptyHistogramReportsZero() {
    assertThat(histogram.count()).isZero();
    assertThat(histogram.percentile(99)).isZero();
  }

  @Test
  void smallValuesAreExact() {
    for (int micros = 1; micros <= 100; micros++) {
      histogram.record(micros);
    }
    assertThat(histogram.count()).isEqualTo(100);
    assertThat(histogram.percentile(50)).isEqualTo(50);
    assertThat(histogram.percentile(99)).isEqualTo(99);
    assertThat(histogram.percentile(100)).isEqualTo(100);
  }

  @Test
  void largeValuesAreWithinTwoTenthsOfAPercent() {
    for (long micros : new long[] {1024, 2047, 2048, 65_432, 1_234_567, 3_000_000_000L}) {
      LatencyHistogram one = new LatencyHistogram();
      one.record(micros);
      assertThat(one.percentile(50)).isGreaterThanOrEqualTo(micros);
      assertThat((double) one.percentile(50)).isCloseTo(micros, within(micros * 0.002));
    }
  }

  @Test
  void bucketsAreContiguousAndOrdered() {
    long previousHighest = -1;
    for (long micros = 0; micros < 5_000_000; micros += 1 + micros / 4096) {
      int index = LatencyHistogram.index(micros);
      assertThat(LatencyHistogram.highestValue(index)).isGreaterThanOrEqualTo(micros);
      assertThat(index == 0 || LatencyHistogram.highestValue(index - 1) < micros).isTrue();
      assertThat(LatencyHistogram.highestValue(index)).isGreaterThanOrEqualTo(previousHighest);
      previousHighest = LatencyHistogram.highestValue(index);
    }
  }

  @Test
  void percentileIsTheNearestRank() {
    for (int i = 0; i < 98; i++) {
      histogram.record(10);
    }
    histogram.record(500);
    histogram.record(900);
    assertThat(histogram.percentile(98)).isEqualTo(10);
    assertThat(histogram.percentile(99)).isEqualTo(500);
    assertThat(histogram.percentile(99.5)).isEqualTo(900);
  }

  @Test
  void percentileOutsideTheRangeIsRefused() {
    assertThatIllegalArgumentException().isThrownBy(() -> histogram.percentile(0));
    assertThatIllegalArgumentException().isThrownBy(() -> histogram.percentile(101));
  }
}
