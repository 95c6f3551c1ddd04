package io.github.hesmar.grpcproxy.connector;

import java.util.Arrays;
import org.jspecify.annotations.Nullable;

/**
 * The channels of one address (rule 9 of DESIGN.md): which one a dial leases, and when the address
 * gets one more. Thread-safe, lock-free; the connector holds one, with its limits.
 *
 * <p>Why. A grpc-java channel to one address carries every call on one HTTP/2 connection, and
 * servers and the proxies in front of them cap the concurrent streams of a connection (commonly
 * 100); past the cap grpc-java queues calls inside the channel, silently. So a channel whose calls
 * in flight reach {@link #maxCalls} is full, and a dial of an address whose channels are all full
 * opens one more, up to {@link #maxChannels}.
 *
 * <p>Structure. The address's first channel (the primary) is the entry in the connector's map, as
 * with one channel per address: the hit path reads it, finds its calls below the limit, and leases
 * it, at the cost of one more load from the entry it reads anyway (the count of calls sits next to
 * the state word). The extra channels are the primary's {@link Entry#siblings}: an array replaced
 * whole by compare-and-set (copy on write: at most {@code maxChannels - 1} elements, changed only
 * when a channel is added or closed, read on every dial of a busy address). Each extra channel is
 * an {@link Entry} of its own, with its own state word, leases, calls and dial: everything that
 * holds for one channel holds for each. At most one sibling is pending at a time, so an address has
 * at most one dial in flight, whether its first or an extra one.
 *
 * <p>Choice. A dial leases the first channel with room, in the order the channels were created (the
 * primary first): calls never queue while a channel of the address has room, and when the load
 * falls, the newest channels are the first to go idle and expire, so an address returns to one
 * channel and to the hit path. (Leasing the least-loaded channel, as rule 9 first said, spreads any
 * two concurrent calls over two channels, which then never expire, and keeps a busy address off the
 * hit path for good.) Load is read, not reserved: dials racing for one address may all pick the
 * same channel before their calls start, and overshoot its limit by the number of racers; the next
 * dials see the calls. When every channel is full, the dial opens a new sibling (if the address has
 * fewer than {@code maxChannels} and none pending) and waits for it like a dial of a new address;
 * dials that find a sibling pending wait for it too, each within its own bound; all others lease at
 * once. A dial that cannot get a new channel (the limit reached, the extra dial failed or did not
 * come in time) leases the least-loaded full channel (the first on a tie), where grpc-java queues
 * its call: never worse than one channel per address.
 *
 * <p>Closing. An idle extra channel expires like any other channel and leaves the array. The
 * primary does not expire while it has siblings: {@link Entry#closeIfIdle} reads {@link
 * Entry#siblings} under CLOSING, and the dial that adds a sibling reads the primary's state after
 * its compare-and-set (writes before reads on both sides: at least one sees the other): either the
 * close sees the sibling and gives up, or the adder sees the primary CLOSING (and waits for the
 * outcome) or closed, and takes its pending sibling back before it dials. A detach of the primary
 * (closeOnRelease, a channel found shut down) detaches every sibling it reads afterwards; a sibling
 * still pending then reads the primary's state after it is published and detaches itself (the same
 * pairing). Until then it stays in the detached primary's array, which keeps the primary open, and
 * where expire() (abandoning it past the dial timeout) and close() (failing it) look for it. So no
 * channel of an address is ever left where neither expire() nor close() finds it.
 */
final class AddressPool {

  /** Calls in flight at which a channel is full. */
  final int maxCalls;

  /** Channels an address may have, its primary included. */
  final int maxChannels;

  AddressPool(int maxCalls, int maxChannels) {
    this.maxCalls = maxCalls;
    this.maxChannels = maxChannels;
  }

  /** Whether {@code entry} has {@link #maxCalls} calls in flight or more. */
  boolean isFull(Entry entry) {
    return entry.calls() >= maxCalls;
  }

  /**
   * The channel a dial of the address leases, among those that can be leased now (published, not
   * detached, not closed): the first with room, in creation order; if all are full, the one with
   * the fewest calls (the first on a tie); null if there is none.
   */
  @Nullable Entry choose(Entry primary) {
    Entry best = null;
    long bestCalls = Long.MAX_VALUE;
    if (primary.isLeasable()) {
      best = primary;
      bestCalls = primary.calls();
    }
    Entry[] siblings = primary.siblings;
    if (siblings != null) {
      for (Entry sibling : siblings) {
        if (bestCalls < maxCalls) {
          break; // the first with room
        }
        if (sibling.isLeasable()) {
          long calls = sibling.calls();
          if (calls < bestCalls) {
            best = sibling;
            bestCalls = calls;
          }
        }
      }
    }
    return best;
  }

  /** The sibling of {@code primary} whose dial is in flight, if any. */
  static @Nullable Entry growing(Entry primary) {
    Entry[] siblings = primary.siblings;
    return siblings == null ? null : growing(siblings);
  }

  private static @Nullable Entry growing(Entry[] siblings) {
    for (Entry sibling : siblings) {
      if (sibling.isPending()) {
        return sibling;
      }
    }
    return null;
  }

  /** Whether the address of {@code primary} has fewer than {@link #maxChannels} channels. */
  boolean hasRoom(Entry primary) {
    Entry[] siblings = primary.siblings;
    return 1 + (siblings == null ? 0 : siblings.length) < maxChannels;
  }

  /**
   * Adds the pending {@code sibling} to {@code primary}'s channels, unless the address has {@link
   * #maxChannels} already or a sibling pending; returns whether it did. The caller then reads the
   * primary's state (see the class comment).
   */
  boolean add(Entry primary, Entry sibling) {
    for (; ; ) {
      Entry[] current = primary.siblings;
      int count = current == null ? 0 : current.length;
      if (1 + count >= maxChannels || (current != null && growing(current) != null)) {
        return false;
      }
      Entry[] next = current == null ? new Entry[1] : Arrays.copyOf(current, count + 1);
      next[count] = sibling;
      if (primary.casSiblings(current, next)) {
        return true;
      }
    }
  }

  /** Takes {@code sibling} out of its primary's channels, if it is there. */
  static void remove(Entry sibling) {
    Entry primary = sibling.primary;
    if (primary == null) {
      return;
    }
    for (; ; ) {
      Entry[] current = primary.siblings;
      int index = current == null ? -1 : indexOf(current, sibling);
      if (current == null || index < 0) {
        return;
      }
      Entry[] next;
      if (current.length == 1) {
        next = null;
      } else {
        next = new Entry[current.length - 1];
        System.arraycopy(current, 0, next, 0, index);
        System.arraycopy(current, index + 1, next, index, current.length - index - 1);
      }
      if (primary.casSiblings(current, next)) {
        return;
      }
    }
  }

  private static int indexOf(Entry[] entries, Entry entry) {
    for (int i = 0; i < entries.length; i++) {
      if (entries[i] == entry) {
        return i;
      }
    }
    return -1;
  }

  /** The siblings of {@code primary} now: an array never changed once published. */
  static Entry[] siblings(Entry primary) {
    Entry[] siblings = primary.siblings;
    return siblings == null ? NONE : siblings;
  }

  private static final Entry[] NONE = new Entry[0];
}
