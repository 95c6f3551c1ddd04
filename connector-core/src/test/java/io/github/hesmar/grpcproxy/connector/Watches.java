package io.github.hesmar.grpcproxy.connector;

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
    return new ChannelStreams.Watch(SCHEDULER, null, maxCalls, true);
  }

  /** Channels full at 100 calls, no listener. */
  static ChannelStreams.Watch defaults() {
    return of(100);
  }
}
