package io.github.hesmar.grpcproxy.connector;

import io.github.hesmar.grpcproxy.connector.ChannelCount.Closed;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.jspecify.annotations.Nullable;

/**
 * Runs the dial of one pending entry: on the dial executor, it tells the listeners of the miss,
 * takes a place under the bound, calls the dialer, and publishes the channel or fails the entry.
 * Thread-safe; a connector holds one.
 *
 * <p>A pending entry ends in exactly one of two compare-and-sets: {@link Entry#publish} or {@link
 * Entry#fail}. The dialer failing, the dial timeout passing and the connector's close all fail it
 * the same way, and a channel the dialer returns after its entry failed is shut down at once and
 * never counted (docs/design.md, "Publishing a dial" and "12. The dial timeout"). The timeout has
 * no timer: whoever meets an overdue dial (a waiter, a later dial, an expiry pass, closeOnRelease)
 * abandons it. The place a dial takes under the bound is given back exactly once, by the dial or by
 * the failure, whichever takes it back from the {@link PendingDial} (docs/design.md, "Places under
 * the bound"). Listeners hear of the dial's evictions after its outcome is published, never inside
 * it (docs/design.md, "Callbacks").
 */
final class DialRunner {

  private static final System.Logger LOG = System.getLogger(CachingConnector.class.getName());

  private final ChannelTable table;
  private final ChannelCount count;
  private final @Nullable ChannelBound bound;
  private final Dialer dialer;
  private final ConnectorListener listener;
  private final InstantSource clock;
  private final Executor dialExecutor;
  private final Duration dialTimeout;
  private final long dialTimeoutNanos;

  DialRunner(
      ChannelTable table,
      ChannelCount count,
      @Nullable ChannelBound bound,
      Dialer dialer,
      ConnectorListener listener,
      InstantSource clock,
      Executor dialExecutor,
      Duration dialTimeout) {
    this.table = table;
    this.count = count;
    this.bound = bound;
    this.dialer = dialer;
    this.listener = listener;
    this.clock = clock;
    this.dialExecutor = dialExecutor;
    this.dialTimeout = dialTimeout;
    this.dialTimeoutNanos = Nanos.saturated(dialTimeout);
  }

  /** When {@code pending}'s dial times out ({@link System#nanoTime()}; MAX_VALUE for never). */
  long deadline(PendingDial pending) {
    return Nanos.deadlineAfter(pending.startNanos, dialTimeoutNanos);
  }

  /** Starts the dial of a pending entry that the calling thread just put in the table. */
  void start(Entry entry, PendingDial pending) {
    try {
      dialExecutor.execute(() -> run(entry, pending));
    } catch (RejectedExecutionException e) {
      fail(entry, pending, table.isClosed() ? ChannelTable.closedException() : e);
    } catch (RuntimeException | Error e) {
      fail(entry, pending, e); // a broken executor, or what an inline dial rethrows
      throw e;
    }
    if (table.isClosed()) {
      fail(entry, pending, ChannelTable.closedException()); // Dekker with close()'s sweep
    }
  }

  /**
   * Runs the dialer for {@code entry}, on the dial executor; then tells the listeners of the
   * channels it evicted to make its place, once the dial's outcome is published: never inside the
   * dial, where a listener that dials the address would wait for itself.
   */
  private void run(Entry entry, PendingDial pending) {
    List<Closed> evicted =
        bound == null ? List.of() : new ArrayList<>(1); // one per miss, as a rule
    try {
      dialAndPublish(entry, pending, evicted);
    } finally {
      count.reportAll(evicted, /* counted= */ true);
    }
  }

  /** The dial itself; adds what it evicted to {@code evicted}, counted but not reported. */
  private void dialAndPublish(Entry entry, PendingDial pending, List<Closed> evicted) {
    String address = entry.address;
    long start = System.nanoTime();
    ManagedChannel channel = null;
    Throwable failure = null;
    pending.dialThread = Thread.currentThread();
    try {
      listener.onCacheMiss(address);
      if (entry.isClosed()) {
        return; // failed meanwhile (closed, or timed out): the dialer is not called
      }
      if (bound != null) {
        bound.claim(candidate -> evict(candidate, evicted)); // while the bound is reached
        // Dekker with fail(): this writes, then reads the state; it sets the state, then
        // takes the place. Either way a failed dial's place is given back, exactly once.
        pending.holdPlace();
        if (entry.isClosed()) {
          givePlaceBack(pending);
          return; // failed while it evicted: the dialer is not called
        }
      }
      channel = dialer.dial(address);
      if (channel == null) {
        throw new NullPointerException("Dialer " + dialer + " returned null for " + address);
      }
      if (channel.isShutdown()) {
        throw new IllegalStateException(
            "Dialer " + dialer + " returned a channel that is shut down already: " + channel);
      }
    } catch (Throwable t) {
      failure = t;
      if (t instanceof InterruptedException) {
        Thread.currentThread().interrupt(); // the dial thread's, or an inline dial's caller's
      }
    } finally {
      pending.dialThread = null;
    }
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    if (failure != null || channel == null) {
      Throwable cause = failure != null ? failure : new IllegalStateException("no channel");
      fail(entry, pending, cause);
      givePlaceBack(pending); // if an abandonment did not already
      if (channel != null) {
        Drainer.discard(channel); // shut down already; made sure it terminates
      }
      listener.onDialComplete(address, took, cause);
      if (cause instanceof VirtualMachineError error) {
        throw error;
      }
      return;
    }
    count.opened(); // before it can be closed: the count never undercounts
    if (!entry.publish(channel, clock.millis())) {
      // Failed while the dialer ran (dial timeout or close()): nobody will use this channel.
      count.unopened();
      Drainer.discard(channel);
      givePlaceBack(pending); // if the failure did not already
      try {
        count.deliver();
      } finally {
        listener.onDialComplete(address, took, null);
      }
      return;
    }
    entry.health.watch(channel);
    if (bound != null) {
      bound.add(entry); // the place is the channel's now, given back when it is closed
    }
    // Dekker with close()'s sweep; before the waiters wake, so that a close() called after this
    // dial returned to its caller never races this thread for the channel (and returns before it
    // is shut down).
    boolean closedHere = table.isClosed() && table.close(entry, /* force= */ true);
    try {
      try {
        // Before waking the waiters, so that a caller whose dial returned has seen its channel
        // counted; in a finally, so that nothing the listener throws can keep them waiting.
        count.deliver();
      } finally {
        pending.complete(PendingDial.SUCCEEDED);
      }
    } finally {
      if (closedHere) {
        count.reportClosed(entry.address, CloseCause.SHUTDOWN);
      }
      Entry first = entry.firstChannel;
      if (first != null && first.isDetachedOrClosed()) {
        // An extra channel whose address was detached while it was dialed (see AddressPool).
        table.detachAndReport(entry, first.detachCause());
      }
    }
    listener.onDialComplete(address, took, null);
  }

  /**
   * Fails a pending entry (state := CLOSED), takes it out of the map and wakes its waiters with
   * {@code cause}; returns false if it was published or failed already.
   */
  boolean fail(Entry entry, PendingDial pending, Throwable cause) {
    if (!entry.fail()) {
      return false;
    }
    table.unlink(entry);
    givePlaceBack(pending); // a dial abandoned while its dialer hangs holds no place
    pending.complete(cause);
    return true;
  }

  /** Gives back the place under the bound that {@code pending}'s dial holds, if it still does. */
  private void givePlaceBack(PendingDial pending) {
    ChannelBound bounded = bound;
    if (bounded != null && pending.takePlace()) {
      bounded.unclaim();
    }
  }

  boolean isOverdue(PendingDial pending) {
    return dialTimeoutNanos != Long.MAX_VALUE
        && System.nanoTime() - pending.startNanos >= dialTimeoutNanos;
  }

  /** Fails a dial whose dialer has not returned within the dial timeout. */
  void abandon(Entry entry, PendingDial pending) {
    if (fail(entry, pending, timedOut(entry.address))) {
      LOG.log(
          Level.WARNING,
          "The dialer did not return a channel for "
              + entry.address
              + " within the dial timeout of "
              + dialTimeout
              + "; the dial is abandoned, and a channel it returns later will be shut down");
    }
  }

  StatusRuntimeException timedOut(String address) {
    return new DialTimedOut(
        Status.DEADLINE_EXCEEDED.withDescription(
            "The dialer did not return a channel for "
                + address
                + " within the dial timeout of "
                + dialTimeout
                + "; the dial was abandoned"));
  }

  /** The connector's own failure of a dial past the dial timeout; nothing a dialer throws. */
  static final class DialTimedOut extends StatusRuntimeException {

    private static final long serialVersionUID = 1L;

    DialTimedOut(Status status) {
      super(status);
    }
  }

  /**
   * Closes {@code entry} to make a place under the bound (see ChannelBound) if it holds no lease,
   * no call and no extra channel, counts the close and adds it to {@code evicted}, for the dial to
   * report once its outcome is published: EVICTED, or the cause it was detached for (STALE if
   * someone else had shut it down). Returns whether this call closed it.
   */
  private boolean evict(Entry entry, List<Closed> evicted) {
    boolean stale = entry.channel().isShutdown();
    if (!table.close(entry, /* force= */ false)) {
      return false;
    }
    count.closed();
    CloseCause cause;
    if (entry.isDetached()) {
      cause = entry.detachCause();
    } else {
      cause = stale ? CloseCause.STALE : CloseCause.EVICTED;
    }
    evicted.add(new Closed(entry.address, cause));
    return true;
  }
}
