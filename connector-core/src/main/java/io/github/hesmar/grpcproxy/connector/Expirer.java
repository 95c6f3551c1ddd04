package io.github.hesmar.grpcproxy.connector;

import io.github.hesmar.grpcproxy.connector.ChannelCount.Closed;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.ReentrantLock;
import org.jspecify.annotations.Nullable;

/**
 * Runs the expiry passes of a connector: closes the channels unused at two passes in a row, the
 * detached channels whose leases and calls have ended, and retires the channels past their maximum
 * age. Thread-safe; passes run one at a time.
 *
 * <p>A pass walks the table (weakly consistent iteration, no lock held against dials) under {@link
 * #passLock}, which only serializes passes with each other. Idle passes are counted in the entry,
 * by passes only; a lease resets the count lazily by setting DIALED, which the next pass sees and
 * clears (docs/design.md, "3. Expiry"). Closing is the entry's close-if-idle, which a racing lease
 * or call either sees or is seen by ("Leases and striping"). A channel past its maximum age is
 * detached as by closeOnRelease ("11. Maximum age"). The listeners hear of a pass's closes after it
 * released the lock ("Callbacks").
 */
final class Expirer {

  private final ChannelTable table;
  private final ChannelCount count;
  private final DialRunner runner;
  private final Drainer drainer;
  private final InstantSource clock;
  private final @Nullable ChannelBound bound;

  /** The maximum age of a channel before its jitter, in ms; 0 for none. */
  private final long maxChannelAgeMillis;

  /** Mixed with a channel's id to draw its jitter: connectors do not retire channels in step. */
  private final long jitterSeed = ThreadLocalRandom.current().nextLong();

  private final ReentrantLock passLock = new ReentrantLock();

  Expirer(
      ChannelTable table,
      ChannelCount count,
      DialRunner runner,
      Drainer drainer,
      InstantSource clock,
      @Nullable ChannelBound bound,
      @Nullable Duration maxChannelAge) {
    this.table = table;
    this.count = count;
    this.runner = runner;
    this.drainer = drainer;
    this.clock = clock;
    this.bound = bound;
    this.maxChannelAgeMillis =
        maxChannelAge == null ? 0 : Math.max(1, Nanos.saturated(maxChannelAge) / 1_000_000);
  }

  /**
   * One pass; see {@link CachingConnector#expire()}. Returns the address of each channel closed.
   */
  @SuppressWarnings("ModifyCollectionInEnhancedForLoop") // the detached set is concurrent
  List<String> expire() {
    List<Closed> closes = new ArrayList<>();
    passLock.lock();
    try {
      long now = clock.millis();
      table.newSilenceInterval(); // the addresses' retirements for silence: one budget per interval
      for (Entry entry : table.firstChannels()) {
        for (Entry extra : AddressPool.extras(entry)) {
          expireAttached(extra, now, closes);
        }
        expireAttached(entry, now, closes); // a first channel outlives its extra channels
      }
      for (Entry entry : table.detached()) {
        for (Entry extra : AddressPool.extras(entry)) {
          expireAttached(extra, now, closes); // pending when its first channel was detached
        }
        if (entry.isClosed()) {
          table.forget(entry); // a concurrent set: removal while iterating is safe
        } else if (table.close(entry, /* force= */ false)) {
          closes.add(new Closed(entry.address, entry.detachCause()));
        }
      }
      if (bound != null) {
        bound.sweep();
      }
      drainer.letGoTerminated();
    } finally {
      passLock.unlock();
      count.reportAll(
          closes,
          /* counted= */ false); // also if the pass failed half-way: what it closed is counted
    }
    List<String> expired = new ArrayList<>(closes.size());
    for (Closed close : closes) {
      expired.add(close.address());
    }
    return expired;
  }

  /**
   * One pass over one attached entry at {@code now} (the clock's millis); adds what it closed to
   * {@code closes}. Under passLock.
   */
  private void expireAttached(Entry entry, long now, List<Closed> closes) {
    PendingDial pending = entry.pendingDial();
    if (pending != null) {
      if (runner.isOverdue(pending)) {
        runner.abandon(entry, pending);
      }
      return;
    }
    entry.streams.pass(); // a limit learned from queueing lasts while the queueing does
    for (; ; ) { // again from the start when a lease or a close changed the entry under the pass
      if (!entry.isLive()) {
        return;
      }
      if (entry.channel().isShutdown()) {
        table.detach(entry, CloseCause.STALE, closes);
        if (table.close(entry, /* force= */ false)) {
          closes.add(new Closed(entry.address, CloseCause.STALE));
        }
        return;
      }
      if (maxChannelAgeMillis != 0 && now - retireAt(entry) >= 0) {
        retire(entry, closes);
        return;
      }
      switch (table.closeIfSecondIdlePass(entry)) {
        case CLOSED -> {
          closes.add(new Closed(entry.address, CloseCause.EXPIRED));
          return;
        }
        case KEPT -> {
          return;
        }
        case CHANGED -> {}
      }
    }
  }

  /**
   * When a channel passes its maximum age: its creation plus the maximum age, give or take 10 %,
   * drawn from its id (so the same at every pass, and spread over a fifth of the age for channels
   * created together). Saturates at {@link Long#MAX_VALUE}.
   */
  long retireAt(Entry entry) {
    // SplittableRandom's mix: consecutive ids give unrelated fractions.
    long z = entry.id ^ jitterSeed;
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    z ^= z >>> 31;
    double fraction = (z >>> 11) * 0x1.0p-53; // uniform in [0, 1)
    long age = (long) (maxChannelAgeMillis * (0.9 + 0.2 * fraction));
    long created = entry.createdMillis;
    return created > Long.MAX_VALUE - age ? Long.MAX_VALUE : created + age;
  }

  /**
   * Detaches a channel past its maximum age (cause MAX_AGE), with its address's extra channels if
   * it is the first (they hang off it, see AddressPool), and closes it if it is idle; the extra
   * channels detached with it are closed by the pass's walk of the detached set (this pass's, if
   * its weakly consistent iteration sees them, else the next). Under passLock.
   */
  private void retire(Entry entry, List<Closed> closes) {
    if (!table.detach(entry, CloseCause.MAX_AGE, closes)) {
      return;
    }
    if (table.close(entry, /* force= */ false)) {
      closes.add(new Closed(entry.address, CloseCause.MAX_AGE));
    }
  }
}
