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
 * <p>Structure. The address's first channel is the entry in the connector's map, as with one
 * channel per address: the hit path reads it, finds its calls below the limit, and leases it, at
 * the cost of one more load from the entry it reads anyway (the count of calls sits next to the
 * state word). The extra channels are the first channel's {@link Entry#extras}: an array replaced
 * whole by compare-and-set (copy on write: at most {@code maxChannels - 1} elements, changed only
 * when a channel is added or closed, read on every dial of a busy address). Each extra channel is
 * an {@link Entry} of its own, with its own state word, leases, calls and dial: everything that
 * holds for one channel holds for each. At most one extra channel is pending at a time, so an
 * address has at most one dial in flight, whether its first or an extra one.
 *
 * <p>Choice. A dial leases the first channel with room, in the order the channels were created (the
 * first channel first): calls never queue while a channel of the address has room, and when the
 * load falls, the newest channels are the first to go idle and expire, so an address returns to one
 * channel and to the hit path. (Leasing the least-loaded channel, as rule 9 first said, spreads any
 * two concurrent calls over two channels, which then never expire, and keeps a busy address off the
 * hit path for good.) Load is read, not reserved: dials racing for one address may all pick the
 * same channel before their calls start, and overshoot its limit by the number of racers; the next
 * dials see the calls. When every channel is full, the dial opens a new extra channel (if the
 * address has fewer than {@code maxChannels} and none pending) and waits for it like a dial of a
 * new address; dials that find an extra channel pending wait for it too, each within its own bound;
 * all others lease at once. A dial that cannot get a new channel (the limit reached, the extra dial
 * failed or did not come in time) leases the least-loaded full channel (the first on a tie), where
 * grpc-java queues its call: never worse than one channel per address.
 *
 * <p>Closing. An idle extra channel expires like any other channel and leaves the array. The first
 * channel does not expire while it has extra channels: {@link Entry#closeIfIdle} reads {@link
 * Entry#extras} under CLOSING, and the dial that adds an extra channel reads the first channel's
 * state after its compare-and-set (writes before reads on both sides: at least one sees the other):
 * either the close sees the extra channel and gives up, or the adder sees the first channel CLOSING
 * (and waits for the outcome) or closed, and takes its pending extra channel back before it dials.
 * A detach of the first channel (closeOnRelease, a channel found shut down) detaches every extra
 * channel it reads afterwards; an extra channel still pending then reads the first channel's state
 * after it is published and detaches itself (the same pairing). Until then it stays in the detached
 * first channel's array, which keeps the first channel open, and where expire() (abandoning it past
 * the dial timeout) and close() (failing it) look for it. So no channel of an address is ever left
 * where neither expire() nor close() finds it.
 */
final class AddressPool {

  /** Calls in flight at which a channel is full. */
  final int maxCalls;

  /** Channels an address may have, its first channel included. */
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
  @Nullable Entry choose(Entry first) {
    Entry best = null;
    long bestCalls = Long.MAX_VALUE;
    if (first.isLeasable()) {
      best = first;
      bestCalls = first.calls();
    }
    Entry[] extras = first.extras;
    if (extras != null) {
      for (Entry extra : extras) {
        if (bestCalls < maxCalls) {
          break; // the first with room
        }
        if (extra.isLeasable()) {
          long calls = extra.calls();
          if (calls < bestCalls) {
            best = extra;
            bestCalls = calls;
          }
        }
      }
    }
    return best;
  }

  /** The extra channel of {@code first} whose dial is in flight, if any. */
  static @Nullable Entry growing(Entry first) {
    Entry[] extras = first.extras;
    return extras == null ? null : growing(extras);
  }

  private static @Nullable Entry growing(Entry[] extras) {
    for (Entry extra : extras) {
      if (extra.isPending()) {
        return extra;
      }
    }
    return null;
  }

  /** Whether the address of {@code first} has fewer than {@link #maxChannels} channels. */
  boolean hasRoom(Entry first) {
    Entry[] extras = first.extras;
    return 1 + (extras == null ? 0 : extras.length) < maxChannels;
  }

  /**
   * Adds the pending {@code extra} to {@code first}'s channels, unless the address has {@link
   * #maxChannels} already or an extra channel pending; returns whether it did. The caller then
   * reads the first channel's state (see the class comment).
   */
  boolean add(Entry first, Entry extra) {
    for (; ; ) {
      Entry[] current = first.extras;
      int count = current == null ? 0 : current.length;
      if (1 + count >= maxChannels || (current != null && growing(current) != null)) {
        return false;
      }
      Entry[] next = current == null ? new Entry[1] : Arrays.copyOf(current, count + 1);
      next[count] = extra;
      if (first.casExtras(current, next)) {
        return true;
      }
    }
  }

  /** Takes {@code extra} out of its first channel's channels, if it is there. */
  static void remove(Entry extra) {
    Entry first = extra.firstChannel;
    if (first == null) {
      return;
    }
    for (; ; ) {
      Entry[] current = first.extras;
      int index = current == null ? -1 : indexOf(current, extra);
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
      if (first.casExtras(current, next)) {
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

  /** The extra channels of {@code first} now: an array never changed once published. */
  static Entry[] extras(Entry first) {
    Entry[] extras = first.extras;
    return extras == null ? NONE : extras;
  }

  private static final Entry[] NONE = new Entry[0];
}
