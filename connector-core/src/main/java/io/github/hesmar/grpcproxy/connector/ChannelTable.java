package io.github.hesmar.grpcproxy.connector;

import io.github.hesmar.grpcproxy.connector.ChannelCount.Closed;
import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;

/**
 * Where a connector finds its channels: each address's first channel in a map, the detached
 * channels in a set, and whether the connector is closed. Thread-safe, lock-free.
 *
 * <p>An entry is put in the map before its channel exists: winning {@link #putIfAbsent} is the
 * claim to dial that address, so an address has at most one first dial in flight (docs/design.md,
 * "1. Dial and lease"). Extra channels are found through their first channel ({@link AddressPool}),
 * so every walk over the map walks them too. A detached entry (closeOnRelease, a channel found shut
 * down, the maximum age) moves to {@link #detached}, where expiry closes it once its leases and
 * calls end (docs/design.md, "4. Close on release").
 *
 * <p>Every path that adds an entry where the connector's close sweeps (a pending entry in the map,
 * a detach) reads {@link #closed} afterwards, and the close sets it before it sweeps: at least one
 * of the two sees the other, and the entry's CLOSED bit makes sure only one of them closes it
 * (docs/design.md, "close() against publication").
 */
final class ChannelTable {

  private final ConcurrentHashMap<String, Entry> firstChannels = new ConcurrentHashMap<>();
  private final Set<Entry> detached = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean closed = new AtomicBoolean();

  /** The last channel id given out; see {@link ConnectionInfo#id()}. */
  private final AtomicLong channelIds = new AtomicLong();

  private final Drainer drainer;
  private final ChannelCount count;

  /** What every channel's {@link ChannelStreams} shares. */
  private final ChannelStreams.Watch watch;

  ChannelTable(Drainer drainer, ChannelCount count, ChannelStreams.Watch watch) {
    this.drainer = drainer;
    this.count = count;
    this.watch = watch;
  }

  /** The first channel of {@code address}, pending or published, or null. */
  @Nullable Entry get(String address) {
    return firstChannels.get(address);
  }

  /** A new pending entry for {@code address}: its first channel if {@code first} is null. */
  Entry newEntry(String address, @Nullable Entry first) {
    return new Entry(
        address, channelIds.incrementAndGet(), first, new PendingDial(System.nanoTime()), watch);
  }

  /** Puts a pending first channel in the map; returns the entry already there, or null. */
  @Nullable Entry putIfAbsent(Entry fresh) {
    return firstChannels.putIfAbsent(fresh.address, fresh);
  }

  /** The first channels in the map, for a walk (weakly consistent). */
  Collection<Entry> firstChannels() {
    return firstChannels.values();
  }

  /** The detached channels not closed yet, for a walk (weakly consistent). */
  Collection<Entry> detached() {
    return detached;
  }

  /** Forgets a detached entry closed elsewhere. */
  void forget(Entry entry) {
    detached.remove(entry);
  }

  /**
   * Takes an entry out of where attached entries are found: the map for a first channel, its first
   * channel's extra channels for an extra one.
   */
  void unlink(Entry entry) {
    if (entry.firstChannel == null) {
      firstChannels.remove(entry.address, entry);
    } else {
      AddressPool.remove(entry);
    }
  }

  /**
   * Detaches a published entry: from the map (or its first channel's extra channels) to the
   * detached set, with, if it is a first channel, the extra channels it has then; says whether this
   * call detached {@code entry}. If the connector is closed, it closes what it detached and adds it
   * to {@code closes} for the caller to report.
   */
  boolean detach(Entry entry, CloseCause cause, List<Closed> closes) {
    return detach(entry, cause, closes, /* onlyAlone= */ false);
  }

  /**
   * {@link #detach(Entry, CloseCause, List)}; if {@code onlyAlone}, a first channel is detached
   * only while it has no extra channel (see {@link Entry#detachIfAlone}).
   */
  private boolean detach(Entry entry, CloseCause cause, List<Closed> closes, boolean onlyAlone) {
    if (!(onlyAlone ? entry.detachIfAlone(cause) : entry.detach(cause))) {
      return false;
    }
    unlink(entry);
    detached.add(entry);
    if (isClosed() && close(entry, /* force= */ true)) {
      closes.add(new Closed(entry.address, CloseCause.SHUTDOWN));
    }
    if (entry.firstChannel == null) {
      // Read after DETACHED is set: an extra channel pending now detaches itself once published.
      for (Entry extra : AddressPool.extras(entry)) {
        detach(extra, cause, closes);
      }
    }
    return true;
  }

  /**
   * Retires a channel found silent (cause UNHEALTHY) as the maximum age does: detached, closed by
   * expiry once its leases and calls end. An address retires at most half its channels (at least
   * one) for silence between two expiry passes. A first channel with extra channels cannot be
   * detached alone (they hang off it, see AddressPool): it drops its connection instead ({@code
   * enterIdle()}), and its next call opens a new one. Returns whether it retired the channel (not
   * if it only dropped the connection: the channel is then judged afresh).
   */
  boolean retireSilent(Entry entry) {
    Entry first = entry.firstChannel == null ? entry : entry.firstChannel;
    Entry[] extras = AddressPool.extras(first);
    if (!entry.isLeasable()
        || !takeRetirement(entry.address, Math.max(1, (1 + extras.length) / 2))) {
      return false;
    }
    if (entry == first && extras.length > 0) {
      entry.channel().enterIdle();
      return false;
    }
    List<Closed> closes = new ArrayList<>(1);
    try {
      // A first channel read alone may have got an extra channel since: it is then detached only
      // if it still has none, so that the extra channel is not retired with it.
      if (!detach(entry, CloseCause.UNHEALTHY, closes, /* onlyAlone= */ entry == first)) {
        if (entry == first && entry.isLeasable()) {
          entry.channel().enterIdle(); // it has extra channels now: as if it had had them
        }
        return false;
      }
      if (close(entry, /* force= */ false)) {
        closes.add(new Closed(entry.address, CloseCause.UNHEALTHY));
      }
      return true;
    } finally {
      count.reportAll(closes, /* counted= */ false);
    }
  }

  /**
   * Per address, its retirements for silence since the last expiry pass, a dropped connection
   * included: the address's budget, kept apart from its first channel, which may be replaced within
   * the interval (a lone channel retired, closeOnRelease, expiry or eviction).
   */
  private final ConcurrentHashMap<String, Integer> retiredForSilence = new ConcurrentHashMap<>();

  /**
   * Takes one of the {@code allowed} retirements for silence of {@code address}, if one is left.
   */
  private boolean takeRetirement(String address, int allowed) {
    boolean[] taken = {false};
    retiredForSilence.compute(
        address,
        (key, used) -> {
          int now = used == null ? 0 : used;
          if (now >= allowed) {
            return used;
          }
          taken[0] = true;
          return now + 1;
        });
    return taken[0];
  }

  /** An expiry pass: every address's retirements for silence start again from none. */
  void newSilenceInterval() {
    retiredForSilence.clear();
  }

  /** {@link #detach}, then reports what it closed (only if the connector is closed). */
  boolean detachAndReport(Entry entry, CloseCause cause) {
    List<Closed> closes = new ArrayList<>(0);
    try {
      return detach(entry, cause, closes);
    } finally {
      count.reportAll(closes, /* counted= */ false);
    }
  }

  /**
   * Closes a published entry if no one else did: always if {@code force}, else only with no lease,
   * no call and no extra channel. Takes it out of the table and shuts its channel down gracefully.
   * Returns whether this call closed it; the caller counts and reports the close once its own
   * change is complete.
   */
  boolean close(Entry entry, boolean force) {
    if (!entry.close(force)) {
      return false;
    }
    unlink(entry);
    if (entry.isDetached()) {
      detached.remove(entry); // (one added just after this remove goes at the next pass)
    }
    drainer.shutdown(entry.channel());
    return true;
  }

  /**
   * Counts an expiry pass over a live entry, and closes it if this is its second idle pass (see
   * {@link Entry#passAndCloseIfIdle()}): then takes it out and shuts its channel down.
   */
  Entry.Pass closeIfSecondIdlePass(Entry entry) {
    Entry.Pass pass = entry.passAndCloseIfIdle();
    if (pass == Entry.Pass.CLOSED) {
      unlink(entry);
      drainer.shutdown(entry.channel());
    }
    return pass;
  }

  /** Every entry: attached (first channels and their extra channels), then detached. */
  void forEach(Consumer<Entry> action) {
    for (Entry entry : firstChannels.values()) {
      action.accept(entry);
      for (Entry extra : AddressPool.extras(entry)) {
        action.accept(extra);
      }
    }
    detached.forEach(action);
  }

  /** See {@link CachingConnector#connections()}. */
  List<ConnectionInfo> connections() {
    List<ConnectionInfo> infos = new ArrayList<>();
    forEach(
        entry -> {
          ConnectionInfo info = entry.info();
          if (info != null) {
            infos.add(info);
          }
        });
    infos.sort(ChannelTable::byAddressThenId);
    return infos;
  }

  private static int byAddressThenId(ConnectionInfo a, ConnectionInfo b) {
    int byAddress = a.address().compareTo(b.address());
    return byAddress != 0 ? byAddress : Long.compare(a.id(), b.id());
  }

  /** See {@link CachingConnector#leaseCount()}. */
  int leaseCount() {
    long[] leases = {0};
    forEach(entry -> leases[0] += entry.leases());
    return (int) Math.min(Integer.MAX_VALUE, leases[0]);
  }

  /** See {@link CachingConnector#callCount()}. */
  int callCount() {
    long[] calls = {0};
    forEach(entry -> calls[0] += entry.calls());
    return (int) Math.min(Integer.MAX_VALUE, calls[0]);
  }

  /** See {@link CachingConnector#queuedCallCount()}. */
  int queuedCallCount() {
    long[] queued = {0};
    forEach(entry -> queued[0] += entry.streams.queued());
    return (int) Math.min(Integer.MAX_VALUE, queued[0]);
  }

  /**
   * Closes everything for the connector's close, once it is marked closed: fails each dial in
   * flight, forces each channel closed, extra channels before their first channel (one added later
   * reads the mark before it dials, see {@link AddressPool}); adds the closes to {@code closes}.
   */
  @SuppressWarnings("ModifyCollectionInEnhancedForLoop") // concurrent collections
  void closeAll(DialRunner runner, List<Closed> closes) {
    for (Entry entry : firstChannels.values()) {
      for (Entry extra : AddressPool.extras(entry)) {
        if (closeOrFail(extra, runner)) {
          closes.add(new Closed(extra.address, CloseCause.SHUTDOWN));
        }
      }
      if (closeOrFail(entry, runner)) {
        closes.add(new Closed(entry.address, CloseCause.SHUTDOWN));
      }
      unlink(entry);
    }
    for (Entry entry : detached) {
      for (Entry extra : AddressPool.extras(entry)) {
        if (closeOrFail(extra, runner)) { // pending when its first channel was detached
          closes.add(new Closed(extra.address, CloseCause.SHUTDOWN));
        }
      }
      if (close(entry, /* force= */ true)) {
        closes.add(new Closed(entry.address, CloseCause.SHUTDOWN));
      }
    }
  }

  /** Fails {@code entry} if its dial is in flight, else forces it closed; returns if it closed. */
  private boolean closeOrFail(Entry entry, DialRunner runner) {
    for (; ; ) {
      PendingDial pending = entry.pendingDial();
      if (pending == null) {
        return close(entry, /* force= */ true);
      }
      if (runner.fail(entry, pending, closedException())) {
        return false; // nothing was open
      }
    }
  }

  /** Marks the connector closed; returns false if it was already. */
  boolean markClosed() {
    return closed.compareAndSet(false, true);
  }

  boolean isClosed() {
    return closed.get();
  }

  /** Throws {@link IllegalStateException} if the connector is closed. */
  void checkOpen() {
    if (isClosed()) {
      throw closedException();
    }
  }

  static IllegalStateException closedException() {
    return new IllegalStateException("CachingConnector is closed");
  }
}
