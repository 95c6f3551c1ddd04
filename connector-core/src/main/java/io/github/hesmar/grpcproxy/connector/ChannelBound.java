package io.github.hesmar.grpcproxy.connector;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * The bound on a connector's open channels: before a dial creates a channel past the bound, idle
 * channels are closed, least recently leased first, approximately. Thread-safe, lock-free; a
 * connector with a bound holds one.
 *
 * <p>{@link #claims} counts the channels open and the dials about to create one; a place is taken
 * by compare-and-set only below the bound, and given back only after a channel's shutdown or its
 * dial's failure (docs/design.md, "Places under the bound"). What to close is chosen by the clock
 * (second-chance) algorithm over {@link #ring}, the published channels in creation order: a closed
 * channel is dropped, one leased since the hand last passed it loses its mark and goes to the tail,
 * any other is closed if idle, under the same close-if-idle protocol as expiry. A channel passed
 * over for its mark is looked at again on the next lap: a mark delays its channel's close by one
 * lap, never past the bound. A dial examines at most {@link #SCAN_LIMIT} channels in use and stops
 * after a lap that found nothing idle and cleared no mark, then goes past the bound rather than
 * wait (docs/design.md, "10. The bound"). Dropping a closed channel and clearing a mark do not
 * count: each is paid for once, by the close or the lease that caused it, and one dial clears at
 * most as many marks as the ring holds channels, plus {@link #SCAN_LIMIT}. Channels closed
 * elsewhere stay in the ring until the hand or {@link #sweep()}, which each expiry pass calls,
 * drops them.
 */
final class ChannelBound {

  /** Channels in use a dial examines, at most, to make a place for its own. */
  static final int SCAN_LIMIT = 64;

  /** The most channels open at once, unless every channel is in use. */
  final int maximum;

  /** Channels open, and dials that will create one; see the class comment. */
  private final AtomicInteger claims = new AtomicInteger();

  /** The published channels, in the order the hand visits them. */
  private final ConcurrentLinkedQueue<Entry> ring = new ConcurrentLinkedQueue<>();

  /**
   * The channels in {@link #ring}, give or take those being moved: a dial gives at most this many
   * second chances, and {@link #SCAN_LIMIT} more, so that leases racing the hand, which keep
   * marking the channels it clears, cannot keep it going.
   */
  private final AtomicInteger ringSize = new AtomicInteger();

  ChannelBound(int maximum) {
    this.maximum = maximum;
  }

  /**
   * Takes a place for a channel about to be dialed, closing idle channels with {@code closeIdle}
   * (which returns whether it closed the channel, and gives its place back by {@link #unclaim}
   * before it returns) while the bound is reached. A channel leased since the hand last passed it
   * loses its mark and is looked at again on the next lap, so a mark never keeps an idle channel
   * open past the bound. Always takes the place: past the bound if it examined {@link #SCAN_LIMIT}
   * channels in use, or a whole lap of the ring found nothing to close and cleared no mark.
   */
  void claim(Predicate<Entry> closeIdle) {
    int inUse = 0;
    int secondChances = 0;
    int secondChanceLimit = Math.max(0, ringSize.get()) + SCAN_LIMIT;
    Entry firstInUse = null; // met again with no mark cleared since: a lap found nothing to close
    boolean clearedSinceFirstInUse = false;
    for (; ; ) {
      int claimed = claims.get();
      if (claimed < maximum) {
        if (claims.compareAndSet(claimed, claimed + 1)) {
          return;
        }
        continue;
      }
      Entry entry = inUse < SCAN_LIMIT && secondChances < secondChanceLimit ? ring.poll() : null;
      if (entry != null && entry == firstInUse && clearedSinceFirstInUse) {
        clearedSinceFirstInUse = false; // another lap: the channels passed over get their look
      } else if (entry == null || entry == firstInUse) {
        if (entry != null) {
          ring.offer(entry);
        }
        claims.incrementAndGet(); // nothing idle found: past the bound
        return;
      }
      if (entry.isClosed()) {
        ringSize.decrementAndGet();
        continue; // closed elsewhere: dropped
      }
      if (entry.takeSecondChance()) {
        secondChances++;
        clearedSinceFirstInUse = true;
        ring.offer(entry);
        continue;
      }
      if (!closeIdle.test(entry) && !entry.isClosed()) {
        ring.offer(entry); // in use
        inUse++;
        if (firstInUse == null) {
          firstInUse = entry;
          clearedSinceFirstInUse = false;
        }
      } else {
        ringSize.decrementAndGet(); // closed: by this dial, or meanwhile by another thread
      }
    }
  }

  /** Gives back the place of a channel that has been shut down, or that the dial never made. */
  void unclaim() {
    claims.decrementAndGet();
  }

  /** Lets the hand find a channel just published. */
  void add(Entry entry) {
    ringSize.incrementAndGet();
    ring.offer(entry);
  }

  /** Drops the closed channels from the ring; by each expiry pass. */
  void sweep() {
    ring.removeIf(
        entry -> {
          if (!entry.isClosed()) {
            return false;
          }
          ringSize.decrementAndGet();
          return true;
        });
  }
}
