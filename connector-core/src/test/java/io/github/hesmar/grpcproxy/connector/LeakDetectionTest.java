package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Leases held past the threshold are reported once, with the stack of the dial that took them. */
class LeakDetectionTest {

  final FakeClock clock = new FakeClock();
  final TrackingDialer dialer = TrackingDialer.fake();
  final List<LogRecord> logged = new CopyOnWriteArrayList<>();
  final List<String> leaks = new CopyOnWriteArrayList<>();
  final Logger logger = Logger.getLogger(CachingConnector.class.getName());
  final Handler capture =
      new Handler() {
        @Override
        public void publish(LogRecord record) {
          logged.add(record);
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };

  @BeforeEach
  void captureLog() {
    logger.addHandler(capture);
  }

  @AfterEach
  void releaseLog() {
    logger.removeHandler(capture);
  }

  CachingConnector connector(Duration threshold) {
    return CachingConnector.builder()
        .dialer(dialer)
        .dialExecutor(Runnable::run)
        .clock(clock)
        .scheduler(clock.scheduler())
        .shutdownGracePeriod(Duration.ZERO)
        .leakDetectionThreshold(threshold)
        .listener(
            new ConnectorListener() {
              @Override
              public void onLeak(String address, Duration heldFor) {
                leaks.add(address + " " + heldFor);
              }
            })
        .build();
  }

  @Test
  void leaseHeldPastThresholdIsReportedOnceWithTheStackOfItsDial() {
    try (CachingConnector connector = connector(Duration.ofSeconds(10))) {
      LeasedChannel lease = connector.dial("alpha");

      clock.forward(Duration.ofSeconds(9));
      assertThat(leaks).isEmpty();
      clock.forward(Duration.ofSeconds(1));
      clock.forward(Duration.ofMinutes(5));

      assertThat(leaks).containsExactly("alpha PT10S");
      assertThat(logged)
          .singleElement()
          .satisfies(
              record -> {
                assertThat(record.getLevel()).isEqualTo(Level.WARNING);
                assertThat(record.getMessage()).contains("alpha", "PT10S");
                assertThat(record.getThrown())
                    .hasMessageContaining("taken by thread " + Thread.currentThread().getName());
                assertThat(record.getThrown().getStackTrace())
                    .anySatisfy(
                        frame ->
                            assertThat(frame.getMethodName())
                                .isEqualTo(
                                    "leaseHeldPastThresholdIsReportedOnceWithTheStackOfItsDial"));
              });

      lease.close();

      assertThat(logged).hasSize(2);
      assertThat(logged.get(1).getLevel()).isEqualTo(Level.INFO);
      assertThat(logged.get(1).getMessage()).contains("alpha", "released after PT5M10S");
    }
  }

  @Test
  void stacksAreSampledUntilALeakIsFoundAndRecordedForEveryDialAfter() {
    try (CachingConnector connector = connector(Duration.ofSeconds(10))) {
      List<LeasedChannel> leases = new ArrayList<>();
      for (int i = 0; i < LeakDetector.SAMPLE + 1; i++) {
        leases.add(connector.dial("alpha"));
      }
      assertThat(leases.get(0).leakWatch.getStackTrace()).as("the first dial's").isNotEmpty();
      assertThat(leases.subList(1, leases.size()))
          .as("of %d dials in a row on one thread, one records its stack", LeakDetector.SAMPLE)
          .filteredOn(lease -> lease.leakWatch.getStackTrace().length > 0)
          .hasSize(1);

      clock.forward(Duration.ofSeconds(11));

      assertThat(leaks).hasSize(LeakDetector.SAMPLE + 1);
      assertThat(logged)
          .extracting(LogRecord::getThrown)
          .allSatisfy(
              taken ->
                  assertThat(taken)
                      .hasMessageContaining("taken by thread " + Thread.currentThread().getName()))
          .filteredOn(taken -> taken.getStackTrace().length == 0)
          .hasSize(LeakDetector.SAMPLE - 1)
          .allSatisfy(
              taken ->
                  assertThat(taken).hasMessageContaining("the stack of its dial was not recorded"));
      LeasedChannel afterLeak = connector.dial("alpha");
      assertThat(afterLeak.leakWatch.getStackTrace())
          .anySatisfy(
              frame ->
                  assertThat(frame.getMethodName())
                      .isEqualTo("stacksAreSampledUntilALeakIsFoundAndRecordedForEveryDialAfter"));
      leases.forEach(LeasedChannel::close);
      afterLeak.close();
    }
  }

  @Test
  void leaseReleasedInTimeIsNeverReported() {
    try (CachingConnector connector = connector(Duration.ofSeconds(10))) {
      connector.dial("alpha").close();
      assertThat(clock.pendingTasks()).as("the one scan, nothing per lease").isEqualTo(1);

      clock.forward(Duration.ofMinutes(1));

      assertThat(leaks).isEmpty();
      assertThat(logged).isEmpty();
    }
  }

  @Test
  void leakDetectionIsOffByDefaultAndSchedulesNothing() {
    try (CachingConnector connector =
        CachingConnector.builder()
            .dialer(dialer)
            .dialExecutor(Runnable::run)
            .scheduler(clock.scheduler())
            .build()) {
      LeasedChannel lease = connector.dial("alpha");

      assertThat(lease.leakWatch).isNull();
      assertThat(clock.pendingTasks()).isZero();
      lease.close();
    }
  }

  @Test
  void zeroThresholdTurnsLeakDetectionOffAndNegativeIsRejected() {
    try (CachingConnector connector = connector(Duration.ZERO)) {
      assertThat(connector.dial("alpha").leakWatch).isNull();
    }
    assertThatThrownBy(
            () -> CachingConnector.builder().leakDetectionThreshold(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("leakDetectionThreshold must not be negative");
    assertThatThrownBy(() -> CachingConnector.builder().shutdownGracePeriod(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("shutdownGracePeriod must not be negative");
  }
}
