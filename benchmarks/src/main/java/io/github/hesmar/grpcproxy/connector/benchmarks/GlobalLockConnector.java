package io.github.hesmar.grpcproxy.connector.benchmarks;

import static java.util.Objects.requireNonNull;

import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.ManagedChannel;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The {@code globalLockPort} baseline: the Go {@code CachingConnector} ported the way a first port
 * would be. One lock guards everything: the lookup and lease of a cached channel, the reservation
 * of a dial (a per-address map of dials in flight, waited on outside the lock), the release, and
 * the whole {@link #expire()} scan. It returns the cached channel itself (no lease object) and
 * keeps the seed's semantics, including its defects that cost nothing (an extra release drives a
 * count below zero); it exists to be measured, not used.
 *
 * <p>Thread-safe.
 */
final class GlobalLockConnector {

  private final ReentrantLock lock = new ReentrantLock();
  private final Dialer dialer;

  /** Guarded by {@link #lock}. */
  private final Map<String, Conn> conns = new HashMap<>();

  /** Dials in flight, completed when their channel is in {@link #conns}. Guarded by lock. */
  private final Map<String, CompletableFuture<Void>> inFlight = new HashMap<>();

  /** Channels detached by {@link #closeOnRelease}, closed at zero references. Guarded by lock. */
  private final List<Conn> cleanup = new ArrayList<>();

  GlobalLockConnector(Dialer dialer) {
    this.dialer = requireNonNull(dialer, "dialer");
  }

  /** Returns the cached channel of {@code address}, dialing it on a miss; release it once. */
  ManagedChannel dial(String address) throws Exception {
    for (; ; ) {
      CompletableFuture<Void> waitFor;
      CompletableFuture<Void> mine = null;
      lock.lock();
      try {
        Conn conn = conns.get(address);
        if (conn != null) {
          conn.refs++;
          conn.idlePasses = 0;
          return conn.channel;
        }
        waitFor = inFlight.get(address);
        if (waitFor == null) {
          mine = new CompletableFuture<>();
          inFlight.put(address, mine);
        }
      } finally {
        lock.unlock();
      }
      if (mine == null) {
        try {
          requireNonNull(waitFor, "either waitFor or mine is set").get();
        } catch (ExecutionException e) {
          // the dialer failed for the caller that reserved the dial; try again
        }
        continue;
      }
      ManagedChannel channel;
      try {
        channel = dialer.dial(address);
      } catch (Exception e) {
        lock.lock();
        try {
          inFlight.remove(address);
        } finally {
          lock.unlock();
        }
        mine.completeExceptionally(e);
        throw e;
      }
      lock.lock();
      try {
        Conn conn = new Conn(address, channel);
        conn.refs = 1;
        conns.put(address, conn);
        inFlight.remove(address);
      } finally {
        lock.unlock();
      }
      mine.complete(null);
      return channel;
    }
  }

  /** Releases one lease on {@code channel}, dialed for {@code address}. */
  void release(String address, ManagedChannel channel) {
    lock.lock();
    try {
      Conn conn = conns.get(address);
      if (conn != null && conn.channel == channel) {
        conn.refs--;
        return;
      }
      for (Conn detached : cleanup) {
        if (detached.channel == channel) {
          detached.refs--;
          return;
        }
      }
    } finally {
      lock.unlock();
    }
  }

  /** Moves the channel of {@code address} to the cleanup list; returns whether there was one. */
  boolean closeOnRelease(String address) {
    lock.lock();
    try {
      Conn conn = conns.remove(address);
      if (conn == null) {
        return false;
      }
      cleanup.add(conn);
      return true;
    } finally {
      lock.unlock();
    }
  }

  /** Closes channels idle at two passes, and detached ones at zero references, under the lock. */
  List<String> expire() {
    List<String> expired = new ArrayList<>();
    lock.lock();
    try {
      for (Iterator<Conn> it = conns.values().iterator(); it.hasNext(); ) {
        Conn conn = it.next();
        if (conn.refs > 0) {
          conn.idlePasses = 0;
        } else if (++conn.idlePasses >= 2) {
          it.remove();
          conn.channel.shutdown();
          expired.add(conn.address);
        }
      }
      for (Iterator<Conn> it = cleanup.iterator(); it.hasNext(); ) {
        Conn conn = it.next();
        if (conn.refs <= 0) {
          it.remove();
          conn.channel.shutdown();
          expired.add(conn.address);
        }
      }
    } finally {
      lock.unlock();
    }
    return expired;
  }

  /** Returns the number of cached channels. */
  int size() {
    lock.lock();
    try {
      return conns.size() + cleanup.size();
    } finally {
      lock.unlock();
    }
  }

  /** One cached channel. Fields guarded by the connector's lock. */
  private static final class Conn {
    final String address;
    final ManagedChannel channel;
    int refs;
    int idlePasses;

    Conn(String address, ManagedChannel channel) {
      this.address = address;
      this.channel = channel;
    }
  }
}
