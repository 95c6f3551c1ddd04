package io.github.hesmar.grpcproxy.connector;

import java.time.InstantSource;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

/** The {@link ChannelStreams.Watch} of white-box tests that build entries and tables by hand. */
final class Watches {

  private static final ScheduledExecutorService SCHEDULER =
      Executors.newSingleThreadScheduledExecutor(
          task -> {
            Thread thread = new Thread(task, "watches-test-scheduler");
            thread.setDaemon(true);
            return thread;
          });

  private Watches() {}

  /** Channels full at {@code maxCalls}, no listener. */
  static ChannelStreams.Watch of(int maxCalls) {
    return new ChannelStreams.Watch(SCHEDULER, null, maxCalls, true, NEVER_RETIRES);
  }

  /** Channels whose health is followed and never judged silent: nothing to retire them. */
  static final ChannelHealth.Policy NEVER_RETIRES =
      new ChannelHealth.Policy(
          InstantSource.system(), /* retires= */ false, 3, 10_000, entry -> false);

  /** Channels full at 100 calls, no listener. */
  static ChannelStreams.Watch defaults() {
    return of(100);
  }
}
