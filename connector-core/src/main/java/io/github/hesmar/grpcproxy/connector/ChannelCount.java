package io.github.hesmar.grpcproxy.connector;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;

/**
 * The count of a connector's open channels, and the reports of their closes to the listeners.
 * Thread-safe, lock-free.
 *
 * <p>A channel is counted before its dial publishes it and taken off the count after it has been
 * shut down, so the count never undercounts what is open (docs/design.md, "5. The connection
 * count"). The count callback is delivered by whichever thread wins {@link #delivering}; it loops
 * until the value it delivered equals the current one, so calls never overlap and the last value
 * delivered is the final count (docs/design.md, "Delivering the count").
 */
final class ChannelCount {

  /** A channel closed by the connector, to report once the change that closed it is complete. */
  record Closed(String address, CloseCause cause) {}

  private final ConnectorListener listener;

  /** The bound whose place a closed channel gives back, or null if unbounded. */
  private final @Nullable ChannelBound bound;

  private final AtomicInteger open = new AtomicInteger();
  private final AtomicBoolean delivering = new AtomicBoolean();

  /** Written only by the holder of {@link #delivering}. */
  private volatile int delivered;

  ChannelCount(ConnectorListener listener, @Nullable ChannelBound bound) {
    this.listener = listener;
    this.bound = bound;
  }

  /** The channels open now: cached, and detached but not yet closed. */
  int get() {
    return open.get();
  }

  /** Counts a channel a dialer returned, before its dial publishes it. */
  void opened() {
    open.incrementAndGet();
  }

  /** Takes back the count of a channel whose dial failed before it was published. */
  void unopened() {
    open.decrementAndGet();
  }

  /** Takes a channel that has been shut down off the count and gives back its place. */
  void closed() {
    open.decrementAndGet();
    if (bound != null) {
      bound.unclaim();
    }
  }

  /** Counts a channel that has been shut down as closed and tells the listeners. */
  void reportClosed(String address, CloseCause cause) {
    closed();
    notifyClosed(address, cause);
  }

  /**
   * Reports each close in turn, counting it first unless {@code counted}; a {@link
   * VirtualMachineError} from a listener (the only throwable that gets through) does not keep the
   * others from being counted.
   */
  void reportAll(List<Closed> closes, boolean counted) {
    VirtualMachineError failure = null;
    for (Closed close : closes) {
      try {
        if (!counted) {
          closed();
        }
        notifyClosed(close.address(), close.cause());
      } catch (VirtualMachineError e) {
        if (failure == null) {
          failure = e;
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  private void notifyClosed(String address, CloseCause cause) {
    try {
      listener.onClose(address, cause);
    } finally {
      deliver();
    }
  }

  /** Delivers the count to the listener if it changed since the last delivery; see the class. */
  void deliver() {
    do {
      if (!delivering.compareAndSet(false, true)) {
        return;
      }
      try {
        int count = open.get();
        if (count != delivered) {
          delivered = count;
          listener.onConnectionCountUpdate(count);
        }
      } finally {
        delivering.set(false);
      }
    } while (open.get() != delivered);
  }
}
