package io.github.hesmar.grpcproxy.connector;

import java.util.Arrays;
import org.jspecify.annotations.Nullable;

/**
 * The channels of one address: which one a dial leases, and when the address gets one more.
 * Thread-safe, lock-free; a connector holds one, with its limits.
 *
 * <p>The address's first channel is the entry in the table, so the hit path reads it as with one
 * channel per address. Its extra channels are {@link Entry#extras}: an array replaced whole by
 * compare-and-set (copy on write: small, changed only when a channel is added or closed, read on
 * every dial of a busy address), each an {@link Entry} with its own state word, leases, calls and
 * dial, at most one of them pending. A dial leases the first channel with room in creation order,
 * so that a falling load leaves the newest channels idle to expire (docs/design.md, "9. The pool of
 * an address"). A first channel neither expires while it has extra channels nor is detached without
 * them; how an extra channel added while its first channel closes or detaches is never lost is in
 * docs/design.md, "The pool and its first channel".
 */
final class AddressPool {

  /** Channels an address may have, its first channel included. */
  final int maxChannels;

  AddressPool(int maxChannels) {
    this.maxChannels = maxChannels;
  }

  /**
   * The channel a dial of the address leases, among those that can be leased now (published, not
   * detached, not closed): the first with room (its load below its limit, see {@link
   * Entry#load()}), in creation order; if all are full, the one with the least load (the first on a
   * tie); null if there is none.
   */
  @Nullable Entry choose(Entry first) {
    Entry best = null;
    long bestLoad = Long.MAX_VALUE;
    boolean room = false;
    if (first.isLeasable()) {
      best = first;
      bestLoad = first.load();
      room = bestLoad < first.limit();
    }
    Entry[] extras = first.extras;
    if (extras != null && !room) {
      for (Entry extra : extras) {
        if (extra.isLeasable()) {
          long load = extra.load();
          if (load < extra.limit()) {
            return extra; // the first with room
          }
          if (load < bestLoad) {
            best = extra;
            bestLoad = load;
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
   * reads the first channel's state (docs/design.md, "The pool and its first channel").
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
