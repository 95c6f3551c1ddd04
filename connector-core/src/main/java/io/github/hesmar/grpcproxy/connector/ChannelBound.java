package io.github.hesmar.grpcproxy.connector;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * The bound on a connector's channels (rule 10 of DESIGN.md): before a dial creates a channel past
 * the bound, idle channels are closed, least recently used first, approximately. Thread-safe,
 * lock-free; a connector with a bound holds one.
 *
 * <p>Counting. {@link #claims} counts the channels open and the dials about to create one: a dial
 * claims a place ({@link #claim}) just before it calls the dialer, and gives it back ({@link
 * #unclaim}) when its channel has been shut down, or as soon as the dial fails (also when it is
 * abandoned past the dial timeout while the dialer hangs: a hung dialer holds no place, and a
 * channel it returns late is shut down at once, briefly past the bound). A place is taken by
 * compare-and-set only below the bound, so racing dials never both take the last place; and the
 * place of a channel is given back only after its shutdown. So the channels that dialers have
 * returned and that have not been shut down never outnumber the bound, as long as idle channels can
 * be found to close: the bound is soft only when they cannot (every channel holds a lease or a
 * call, or none idle is found among the channels examined, see below), and then the dial goes past
 * it, and later dials close more to come back under it.
 *
 * <p>Choosing what to close: the clock algorithm (second chance), as operating systems use for
 * pages, over {@link #ring}, a lock-free queue of the published channels in the order they were
 * created. Each lease sets the channel's RECENT bit in the same compare-and-set that counts the
 * lease (no cost on the hit path; see {@link Entry}); the lease reserved for the caller that dialed
 * a channel does not (callers that waited for the same dial lease it the usual way, and do), so a
 * channel dialed once (one of a burst of distinct addresses) goes before any channel dialed again,
 * and a hot address is not pushed out by a scan. A dial that needs a place takes channels from the
 * head of the ring: a closed one is dropped; one with RECENT set gets its bit cleared and goes to
 * the tail (its second chance); any other is closed if idle ({@code closeIdle}: no lease, no call,
 * no extra channel, under the same CLOSING protocol as expiry, so a lease or a call racing the
 * close either is seen or sees the channel closed and looks again), else it goes to the tail. So a
 * channel is closed only if no lease was taken since the hand last passed it, and channels leased
 * often stay. A dial examines at most {@link #SCAN_LIMIT} channels, and stops early when it meets
 * again the first channel it found in use (a lap with nothing to close): no dial walks the whole
 * cache, and a dial that finds nothing idle in its share goes past the bound rather than wait.
 * While idle channels are there to close, the cost of a place is amortized constant (each
 * examination closes a channel, drops one, or clears a bit that a lease had to set); when every
 * channel is busy, each dial past the bound pays its share of examinations (at most 64) for
 * nothing. The dial that evicts pays for the closes on its own thread: a graceful shutdown() each
 * (idle channels have no call to wait for), and the listeners hear of them once its own dial's
 * outcome is published, never inside it. Detached channels (closeOnRelease, maximum age) count as
 * open until closed, and are closed by the hand as soon as they are idle, whatever their RECENT
 * bit.
 *
 * <p>Why the ring holds no stale entries for long: channels closed elsewhere (expiry, close) stay
 * in it until the hand drops them or {@link #sweep()} does, which each expiry pass calls; so the
 * ring holds the open channels and at most those closed since the last pass.
 */
final class ChannelBound {

  /** Channels a dial examines, at most, to make a place for its own. */
  static final int SCAN_LIMIT = 64;

  /** The most channels open at once, unless every channel is in use. */
  final int maximum;

  /** Channels open, and dials that will create one; see the class comment. */
  private final AtomicInteger claims = new AtomicInteger();

  /** The published channels, in the order the hand visits them. */
  private final ConcurrentLinkedQueue<Entry> ring = new ConcurrentLinkedQueue<>();

  ChannelBound(int maximum) {
    this.maximum = maximum;
  }

  /**
   * Takes a place for a channel about to be dialed, closing idle channels with {@code closeIdle}
   * (which returns whether it closed the channel, and gives its place back by {@link #unclaim}
   * before it returns) while the bound is reached. Always takes the place: past the bound if no
   * idle channel was found among {@link #SCAN_LIMIT}, or in a whole lap of the ring (it met again
   * the first channel it found in use).
   */
  void claim(Predicate<Entry> closeIdle) {
    int examined = 0;
    Entry firstInUse = null; // met again: a whole lap found nothing to close
    for (; ; ) {
      int claimed = claims.get();
      if (claimed < maximum) {
        if (claims.compareAndSet(claimed, claimed + 1)) {
          return;
        }
        continue;
      }
      Entry entry = examined < SCAN_LIMIT ? ring.poll() : null;
      if (entry == null || entry == firstInUse) {
        if (entry != null) {
          ring.offer(entry);
        }
        claims.incrementAndGet(); // nothing idle found: past the bound
        return;
      }
      examined++;
      if (entry.isClosed()) {
        continue; // closed elsewhere: dropped
      }
      if (entry.takeSecondChance()) {
        ring.offer(entry);
        continue;
      }
      if (!closeIdle.test(entry) && !entry.isClosed()) {
        ring.offer(entry); // in use
        if (firstInUse == null) {
          firstInUse = entry;
        }
      }
    }
  }

  /** Gives back the place of a channel that has been shut down, or that the dial never made. */
  void unclaim() {
    claims.decrementAndGet();
  }

  /** Lets the hand find a channel just published. */
  void add(Entry entry) {
    ring.offer(entry);
  }

  /** Drops the closed channels from the ring; by each expiry pass. */
  void sweep() {
    ring.removeIf(Entry::isClosed);
  }
}
