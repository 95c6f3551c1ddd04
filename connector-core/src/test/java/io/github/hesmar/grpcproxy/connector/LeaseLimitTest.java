package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;

import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link Entry#lease} with a limit, on one published entry (docs/design.md, "Load counted at the
 * pick"): leases racing for the last room never pass the limit together, whether they are counted
 * in the state word or in cells, and a lease is refused only when the load would pass the limit.
 *
 * <p>Each racing thread takes a few leases, one at a time, and gives them back. After each lease it
 * adds one to a shared count of the leases held, and it takes one off before each release, so that
 * the count never exceeds the leases the entry holds: a count past the limit is a load past it.
 * Threads outnumber the cores (so that a thread is preempted between its add and its read) and
 * share the cells two by two. The limits are chosen around the cells' shares: below twice the cells
 * (every cell lease moves to the state word), just around a share of one, and large (most leases
 * stay in their cells).
 */
class LeaseLimitTest {

  static final int THREADS = 8;
  static final long BUDGET_NANOS = TimeUnit.MILLISECONDS.toNanos(400);

  final FakeClock clock = new FakeClock();
  final TrackedChannel channel = new TrackedChannel("alpha", 0, null, false);

  /** A published entry, with no lease, striped if {@code striped}. */
  Entry published(int limit, boolean striped) {
    Entry entry =
        new Entry("alpha", 1, null, new PendingDial(System.nanoTime()), Watches.of(limit));
    assertThat(entry.publish(channel, clock.millis())).isTrue();
    entry.dropReservation();
    if (striped) {
      entry.stripe();
    }
    return entry;
  }

  static int cellCount(Entry entry) {
    return entry.cells.length() / 16 - 1;
  }

  /**
   * {@code perThread} is how many leases a thread holds at most at once: {@code THREADS *
   * perThread} is the demand, above the limit (the race for the last room) or not (then no lease
   * may be refused).
   */
  @ParameterizedTest(name = "limit {0}, up to {1} leases a thread, striped from the start: {2}")
  @CsvSource({
    "1, 1, true",
    "2, 1, true",
    "5, 1, true",
    "5, 3, false",
    "7, 2, true",
    "8, 2, true",
    "9, 4, true",
    "16, 4, true",
    "33, 8, true",
    "100, 20, true",
    "100, 20, false",
    "1000, 200, true",
    "64, 8, true",
    "200, 16, true"
  })
  void racingLeasesNeverHoldMoreThanTheLimit(int limit, int perThread, boolean striped)
      throws Exception {
    long seed = seed();
    Entry entry = published(limit, striped);
    AtomicInteger held = new AtomicInteger();
    AtomicInteger mostHeld = new AtomicInteger();
    AtomicLong taken = new AtomicLong();
    AtomicLong inCells = new AtomicLong();
    AtomicLong refused = new AtomicLong();
    AtomicReference<String> violation = new AtomicReference<>();
    CountDownLatch start = new CountDownLatch(1);
    long deadline = System.nanoTime() + BUDGET_NANOS;
    List<Thread> threads = new ArrayList<>();
    List<Throwable> failures = new ArrayList<>();
    for (int t = 0; t < THREADS; t++) {
      Random random = new Random(seed + t);
      Thread thread =
          new Thread(
              () -> {
                Deque<Integer> slots = new ArrayDeque<>();
                try {
                  start.await();
                  while (System.nanoTime() < deadline && violation.get() == null) {
                    int want = random.nextBoolean() ? perThread : 1 + random.nextInt(perThread);
                    while (slots.size() < want) {
                      int slot = entry.lease(clock, limit);
                      if (slot == Entry.FULL) {
                        refused.incrementAndGet();
                        spin(random); // lets a holder run on a busy machine
                        break;
                      }
                      if (slot < Entry.BASE) {
                        violation.compareAndSet(null, "lease returned " + slot);
                        return;
                      }
                      slots.push(slot);
                      taken.incrementAndGet();
                      if (slot != Entry.BASE) {
                        inCells.incrementAndGet();
                      }
                      int now = held.incrementAndGet();
                      mostHeld.accumulateAndGet(now, Math::max);
                      if (now > limit) {
                        violation.compareAndSet(
                            null,
                            now
                                + " leases held at once, load "
                                + entry.load()
                                + ", limit "
                                + limit);
                      }
                      spin(random);
                    }
                    while (!slots.isEmpty()) {
                      held.decrementAndGet();
                      entry.release(slots.pop());
                      spin(random);
                    }
                  }
                } catch (Throwable e) {
                  synchronized (failures) {
                    failures.add(e);
                  }
                } finally {
                  while (!slots.isEmpty()) {
                    held.decrementAndGet();
                    entry.release(slots.pop());
                  }
                }
              },
              "lease-limit-" + t);
      threads.add(thread);
      thread.start();
    }
    start.countDown();
    for (Thread thread : threads) {
      thread.join(TimeUnit.SECONDS.toMillis(30));
      assertThat(thread.isAlive()).as("%s finished", thread.getName()).isFalse();
    }
    String where =
        String.format(
            "seed %d, limit %d, %d cells, up to %d leases a thread: %d taken (%d in cells),"
                + " %d refused, at most %d held",
            seed,
            limit,
            entry.cells == null ? 0 : cellCount(entry),
            perThread,
            taken.get(),
            inCells.get(),
            refused.get(),
            mostHeld.get());
    System.out.println("LeaseLimitTest: " + where);
    assertThat(failures).as(where).isEmpty();
    assertThat(violation.get()).as(where).isNull();
    assertThat(mostHeld.get()).as(where).isLessThanOrEqualTo(limit);
    assertThat(entry.leases()).as("leases once all released; " + where).isZero();
    assertThat(entry.load()).as("load once all released; " + where).isZero();
    assertThat(taken.get()).as(where).isPositive();
    if ((long) THREADS * perThread <= limit) {
      // Each thread holds at most perThread leases, plus one being added: the load never passes
      // the limit, so a refusal would be a lease refused with room.
      assertThat(refused.get()).as("leases refused with room; " + where).isZero();
    } else {
      assertThat(refused.get()).as("leases refused at the limit; " + where).isPositive();
    }
  }

  /** A few spins, or none: a thread holds a lease for a moment, never sleeps. */
  private static void spin(Random random) {
    int spins = random.nextInt(4) == 0 ? random.nextInt(64) : 0;
    for (int i = 0; i < spins; i++) {
      Thread.onSpinWait();
    }
    if (random.nextInt(64) == 0) {
      Thread.yield();
    }
  }

  private static long seed() {
    String fixed = System.getProperty("lease.seed");
    long seed =
        fixed != null && !fixed.isBlank()
            ? Long.parseLong(fixed.trim())
            : new SecureRandom().nextLong();
    System.out.println("LeaseLimitTest: seed " + seed + " (replay with -Dlease.seed=" + seed + ")");
    return seed;
  }

  /** A lease refused its cell's share moves to the state word, where the check is exact. */
  @Test
  void aLeaseOverItsCellsShareIsCountedInTheStateWord() throws Exception {
    Entry entry = published(8, true);
    int cells = cellCount(entry);
    long share = (8 >> 1) / cells; // 4 cells: 1 a cell
    List<Integer> slots = new ArrayList<>();
    onThread(
        () -> {
          for (int i = 0; i < 8; i++) {
            slots.add(entry.lease(clock, 8));
          }
          slots.add(entry.lease(clock, 8));
        });
    assertThat(slots.subList(0, 8)).as("8 leases within the limit").allMatch(s -> s >= Entry.BASE);
    assertThat(slots.subList(0, (int) share)).allMatch(s -> s > Entry.BASE);
    assertThat(slots.subList((int) share, 8)).allMatch(s -> s == Entry.BASE);
    assertThat(slots.get(8)).as("the ninth").isEqualTo(Entry.FULL);
    assertThat(entry.load()).isEqualTo(8);
  }

  /**
   * The limit lowered while a cell holds leases taken under the higher one, as when {@link
   * ChannelStreams} learns a lower limit from streams queued in the transport (the leases stay):
   * each lease taken afterwards, with the lower limit, must leave the load within it. The cell
   * leases taken under the higher limit may each hold the higher share, more than the lower share
   * {@code withinShare} assumes for every cell.
   */
  @Test
  void leasesTakenAfterTheLimitWasLoweredNeverPassTheLowerLimit() throws Exception {
    int high = 100;
    int low = 50;
    Entry entry = published(high, true);
    int cells = cellCount(entry);
    int shift = Integer.numberOfTrailingZeros(cells);
    int highShare = (high >> 1) >> shift;
    int lowShare = (low >> 1) >> shift;
    assertThat(highShare).as("shares with %d cells", cells).isGreaterThan(lowShare);
    List<Integer> slots = new ArrayList<>();
    List<Long> loadsAfter = new ArrayList<>();

    // Cell 0 fills its share of the high limit.
    inCell(entry, 0, () -> leaseRepeatedly(entry, high, highShare, slots, new ArrayList<>()));
    assertThat(slots).hasSize(highShare).allMatch(slot -> slot > Entry.BASE);
    assertThat(entry.load()).isEqualTo(highShare);

    entry.setLimit(low);
    // From cell 0 (over its lower share, so counted in the state word, exactly): as many as the
    // cells' lower shares leave to the state word.
    int wordLeases = low - cells * lowShare;
    inCell(entry, 0, () -> leaseRepeatedly(entry, entry.limit(), wordLeases, slots, loadsAfter));
    // From each other cell: its lower share.
    for (int cell = 1; cell < cells; cell++) {
      inCell(entry, cell, () -> leaseRepeatedly(entry, entry.limit(), lowShare, slots, loadsAfter));
    }

    assertThat(Collections.max(loadsAfter))
        .as(
            "highest load after a lease taken with the lowered limit %d (%d cells, cell 0 holding"
                + " %d leases taken under %d); the load after each: %s; their slots: %s",
            low, cells, highShare, high, loadsAfter, slots.subList(highShare, slots.size()))
        .isLessThanOrEqualTo(low);
    for (int slot : slots) {
      entry.release(slot);
    }
    assertThat(entry.load()).isZero();
  }

  /**
   * Takes up to {@code times} leases with {@code limit} on the calling thread, stopping at the
   * first refusal; records each slot, and the load after each lease.
   */
  private void leaseRepeatedly(
      Entry entry, long limit, int times, List<Integer> slots, List<Long> loadsAfter) {
    for (int i = 0; i < times; i++) {
      int slot = entry.lease(clock, limit);
      if (slot < Entry.BASE) {
        return;
      }
      slots.add(slot);
      loadsAfter.add(entry.load());
    }
  }

  /** Runs {@code task} on a new thread whose leases go to cell {@code cell} of {@code entry}. */
  @SuppressWarnings("deprecation") // Thread.getId(), as Entry's own choice of a cell
  private static void inCell(Entry entry, int cell, Runnable task) throws InterruptedException {
    int cells = cellCount(entry);
    for (; ; ) {
      Thread thread = new Thread(task, "cell-" + cell);
      if ((thread.getId() & (cells - 1)) == cell) {
        thread.start();
        thread.join();
        return;
      }
    }
  }

  private static void onThread(Runnable task) throws InterruptedException {
    Thread thread = new Thread(task);
    thread.start();
    thread.join();
  }
}
