package io.github.hesmar.grpcproxy.connector.benchmarks;

import static java.util.Objects.requireNonNull;

import io.grpc.ManagedChannel;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The least a lease on a cached channel can cost: one {@link ConcurrentHashMap#get} and an atomic
 * increment of a counter on the entry, then an atomic decrement to release. No lease object, no
 * double-release guard, no expiry, no miss path: a lower bound, not a usable connector.
 *
 * <p>Thread-safe.
 */
final class LimitBaseline {

  private final ConcurrentHashMap<String, Slot> slots = new ConcurrentHashMap<>();

  /** Adds {@code channel} for {@code address}; setup only. */
  void put(String address, ManagedChannel channel) {
    slots.put(address, new Slot(channel));
  }

  /** Counts one more lease on the slot of {@code address} and returns the slot. */
  Slot acquire(String address) {
    Slot slot = requireNonNull(slots.get(address), address);
    Slot.LEASES.getAndAdd(slot, 1);
    return slot;
  }

  /** Counts one lease less on {@code slot}. */
  void release(Slot slot) {
    Slot.LEASES.getAndAdd(slot, -1);
  }

  /** One cached channel and its lease count, updated in place like the connector's state word. */
  static final class Slot {

    static final VarHandle LEASES;

    static {
      try {
        LEASES = MethodHandles.lookup().findVarHandle(Slot.class, "leases", int.class);
      } catch (ReflectiveOperationException e) {
        throw new ExceptionInInitializerError(e);
      }
    }

    final ManagedChannel channel;

    @SuppressWarnings("unused") // updated through LEASES
    private volatile int leases;

    Slot(ManagedChannel channel) {
      this.channel = channel;
    }
  }
}
