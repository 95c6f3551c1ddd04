package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.github.hesmar.grpcproxy.connector.ConnectorListener.CloseCause;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Several threads dial and release (sometimes twice) over 1 or 16 addresses, starting calls on some
 * of the leases they hold, while another runs {@code expire()} and {@code closeOnRelease()} in a
 * loop. A call outlives its lease: it goes into a queue shared by the workers, and any worker ends
 * it later, after its lease was released or not. Each run is bounded to 8 seconds and 150,000
 * leases per worker. Invariants: no dial returns a lease on a channel that is shut down; no call
 * started on a held lease fails at its start; no channel is shut down while a call is in flight on
 * it (rule 8: only {@code close()} may, and it is not called here); counts never go negative; once
 * all leases are released, the calls still in flight keep their channels open through two passes;
 * once they have ended too, {@code callCount()} is 0 and two passes shut every channel the dialer
 * created down exactly once, and the count (and its last callback) is 0. And {@code close()} racing
 * expiry and dials, with calls that outlive their leases: every channel is shut down once and
 * forced once, and every call in flight is cancelled by it.
 *
 * <p>Both run with small pool limits (rule 9: two calls fill a channel in the first, one in the
 * second), so that addresses get extra channels, which expiry closes, closeOnRelease detaches and
 * close() forces while dials lease them; the first checks that some address had several channels.
 * The first runs once more with a bound of 6 channels over its 16 addresses and a maximum age of 5
 * seconds on a clock that the churning thread moves by a second a pass (rules 10 and 11), so that
 * dials evict idle channels while other threads lease them and start calls on them, and passes
 * retire channels under leases and calls; it checks that both happened, and the same invariants: no
 * lease on a channel shut down, no channel shut down under a call. It runs once more with a dialer
 * that refuses one dial in four (issue 21: callers of a full address whose extra dial fails settle
 * on a full channel): a dial then returns a lease or fails with {@code UNAVAILABLE} carrying the
 * dialer's cause, never anything else, and the same invariants hold.
 *
 * <p>In every run the workers also retire channels for silence (issue 23: {@link
 * CachingConnector#retireSilent(Entry)}, which a channel's health calls from the transport's
 * thread): the channel of a lease just taken, under that lease; the channel a call just started on,
 * under the call; the channel of a lease just released, maybe under its calls, maybe idle; so
 * retirements race leases, calls, expiry, closeOnRelease, eviction, the maximum age and the growth
 * of an address's pool. Invariants ({@link Retirements}): no channel is shut down while a lease is
 * held on it (read at each release and right after each retirement under a lease); the connector
 * reports exactly one {@code UNHEALTHY} close per channel it said it retired, and {@code
 * connections()} lists each channel retired before it as closing with cause {@code UNHEALTHY}, and
 * none as {@code UNHEALTHY} that nobody asked to retire; retirements of one address that certainly
 * fell between the same two passes (the pass before had ended when the call began, the next had not
 * begun when it returned) are at most half the channels an address may have ({@code max(1, 4 / 2)}:
 * how many it had at each retirement is the model test's business, CachingConnectorModelTest). And
 * {@code close()} races retirements in the last test.
 */
class StressTest {

  static final int WORKERS = 3;
  static final int LEASES_PER_WORKER = 150_000;
  static final long BUDGET_NANOS = TimeUnit.SECONDS.toNanos(8);
  static final int CLOSE_ROUNDS = 200;

  /** Channels an address may have in the first test. */
  static final int MAX_CHANNELS_PER_ADDRESS = 4;

  /**
   * A worker retires the channel of the lease it just took, or of one it just released, once in
   * this many; the channel of a call it just started, four times as often (one dial in three makes
   * a call).
   */
  static final int RETIRE_ONE_IN = 96;

  @ParameterizedTest(name = "{0} addresses, bounded and aging: {1}, failing dials: {2}")
  @CsvSource({"1, false, false", "16, false, false", "16, true, false", "4, false, true"})
  void invariantsHoldUnderConcurrentDialReleaseExpireAndCloseOnRelease(
      int addresses, boolean bounded, boolean failing) throws Exception {
    TrackingDialer dialer = TrackingDialer.fake();
    AtomicLong dialsRefused = new AtomicLong();
    AtomicLong dialsFailed = new AtomicLong();
    AtomicLong unexpectedFailures = new AtomicLong();
    if (failing) {
      dialer.behaviour =
          address -> {
            if (ThreadLocalRandom.current().nextInt(4) == 0) {
              dialsRefused.incrementAndGet();
              throw new IOException("refused by the stress test");
            }
          };
    }
    AtomicInteger lastCount = new AtomicInteger(-1);
    AtomicInteger minCount = new AtomicInteger();
    FakeClock clock = new FakeClock();
    AtomicLong evicted = new AtomicLong();
    AtomicLong retired = new AtomicLong();
    Retirements retirements = new Retirements();
    CachingConnector.Builder builder = CachingConnector.builder();
    if (bounded) {
      builder.maximumChannels(6).maxChannelAge(Duration.ofSeconds(5)).clock(clock);
    }
    CachingConnector connector =
        builder
            .dialer(dialer)
            .shutdownGracePeriod(Duration.ZERO)
            .maxCallsPerChannel(2)
            .maxChannelsPerAddress(MAX_CHANNELS_PER_ADDRESS)
            .onConnectionCountUpdate(
                count -> {
                  lastCount.set(count);
                  minCount.accumulateAndGet(count, Math::min);
                })
            .listener(
                new ConnectorListener() {
                  @Override
                  public void onClose(String address, CloseCause cause) {
                    if (cause == CloseCause.EVICTED) {
                      evicted.incrementAndGet();
                    } else if (cause == CloseCause.MAX_AGE) {
                      retired.incrementAndGet();
                    } else if (cause == CloseCause.UNHEALTHY) {
                      retirements.closedUnhealthy(address);
                    }
                  }
                })
            .build();
    ExecutorService threads = Executors.newFixedThreadPool(WORKERS + 1);
    AtomicLong closedHandedOut = new AtomicLong();
    AtomicLong negativeSeen = new AtomicLong();
    AtomicLong leasesTaken = new AtomicLong();
    AtomicLong callsStarted = new AtomicLong();
    AtomicLong failedAtStart = new AtomicLong();
    AtomicLong leasesReleasedUnderCalls = new AtomicLong();
    AtomicLong shutDownUnderCall = new AtomicLong();
    Queue<FakeCall<?, ?>> calls = new ConcurrentLinkedQueue<>();
    AtomicInteger queuedCalls = new AtomicInteger();
    AtomicBoolean workersDone = new AtomicBoolean();
    AtomicInteger mostChannelsPerAddress = new AtomicInteger();
    long deadline = System.nanoTime() + BUDGET_NANOS;
    try {
      List<Future<?>> workers = new ArrayList<>();
      for (int w = 0; w < WORKERS; w++) {
        workers.add(
            threads.submit(
                () -> {
                  ThreadLocalRandom random = ThreadLocalRandom.current();
                  Deque<LeasedChannel> held = new ArrayDeque<>();
                  for (int i = 0; i < LEASES_PER_WORKER && System.nanoTime() < deadline; i++) {
                    String address = "backend-" + random.nextInt(addresses);
                    LeasedChannel lease;
                    try {
                      lease = connector.dial(address, Duration.ofSeconds(30));
                    } catch (StatusRuntimeException e) {
                      if (failing
                          && e.getStatus().getCode() == Status.Code.UNAVAILABLE
                          && e.getCause() instanceof IOException) {
                        dialsFailed.incrementAndGet();
                      } else {
                        unexpectedFailures.incrementAndGet();
                      }
                      continue;
                    }
                    leasesTaken.incrementAndGet();
                    if (((TrackedChannel) lease.entry.channel()).isShutdown()) {
                      closedHandedOut.incrementAndGet();
                    }
                    held.add(lease);
                    if (random.nextInt(RETIRE_ONE_IN) == 0) {
                      retirements.retire(connector, lease.entry, /* underLease= */ true);
                    }
                    if (random.nextInt(3) == 0) {
                      // on the lease just taken, or on an older one this worker still holds
                      LeasedChannel on = random.nextBoolean() ? lease : held.peekFirst();
                      FakeCall<?, ?> call = FakeCall.startOn(on);
                      callsStarted.incrementAndGet();
                      if (call.status() != null) {
                        failedAtStart.incrementAndGet();
                      }
                      calls.add(call);
                      queuedCalls.incrementAndGet();
                      if (random.nextInt(RETIRE_ONE_IN / 4) == 0) {
                        retirements.retire(connector, on.entry, /* underLease= */ true);
                      }
                    }
                    while (held.size() > random.nextInt(4)) {
                      LeasedChannel done =
                          random.nextBoolean() ? held.pollFirst() : held.pollLast();
                      retirements.releasing(done);
                      if (random.nextInt(8) == 0) {
                        connector.release(done.address(), done);
                      } else {
                        done.close();
                      }
                      if (!done.isTerminated()) {
                        leasesReleasedUnderCalls.incrementAndGet();
                      }
                      if (random.nextInt(16) == 0) {
                        done.close(); // a second release: must be a no-op
                      }
                      if (random.nextInt(RETIRE_ONE_IN) == 0) {
                        retirements.retire(connector, done.entry, /* underLease= */ false);
                      }
                    }
                    // End calls, whoever started them, until at most a few are left in flight.
                    int keep = random.nextInt(24);
                    while (queuedCalls.get() > keep) {
                      FakeCall<?, ?> call = calls.poll();
                      if (call == null) {
                        break;
                      }
                      queuedCalls.decrementAndGet();
                      end(call, shutDownUnderCall);
                    }
                  }
                  held.forEach(
                      lease -> {
                        retirements.releasing(lease);
                        lease.close();
                      });
                  return null;
                }));
      }
      Future<?> churn =
          threads.submit(
              () -> {
                ThreadLocalRandom random = ThreadLocalRandom.current();
                for (int pass = 0; !workersDone.get(); pass++) {
                  if (pass % 16 == 0) {
                    retirements.checkConnections(connector);
                    int most =
                        connector.connections().stream()
                            .collect(
                                Collectors.groupingBy(
                                    ConnectionInfo::address, Collectors.counting()))
                            .values()
                            .stream()
                            .mapToInt(Long::intValue)
                            .max()
                            .orElse(0);
                    mostChannelsPerAddress.accumulateAndGet(most, Math::max);
                  }
                  if (bounded) {
                    clock.forward(Duration.ofSeconds(1));
                  }
                  retirements.passesStarted.incrementAndGet();
                  connector.expire();
                  retirements.passesEnded.incrementAndGet();
                  connector.closeOnRelease("backend-" + random.nextInt(addresses));
                  if (connector.connectionCount() < 0
                      || connector.leaseCount() < 0
                      || connector.callCount() < 0) {
                    negativeSeen.incrementAndGet();
                  }
                }
                return null;
              });
      for (Future<?> worker : workers) {
        worker.get(60, TimeUnit.SECONDS);
      }
      workersDone.set(true);
      churn.get(60, TimeUnit.SECONDS);

      assertThat(connector.leaseCount()).isZero();
      List<FakeCall<?, ?>> outliving = new ArrayList<>(calls);
      assertThat(connector.callCount())
          .as("calls in flight after every lease was released")
          .isEqualTo(outliving.size());
      connector.expire();
      connector.expire();
      assertThat(outliving)
          .as("calls that outlived every lease keep their channels open through two passes")
          .allSatisfy(call -> assertThat(call.channel.isShutdown()).as("%s", call).isFalse());
      outliving.forEach(call -> end(call, shutDownUnderCall));
      assertThat(connector.callCount()).as("calls in flight once all ended").isZero();
      connector.expire();
      connector.expire();

      assertThat(closedHandedOut).as("leases handed out on shut-down channels").hasValue(0);
      assertThat(unexpectedFailures)
          .as("dials that failed other than as the dialer did")
          .hasValue(0);
      if (failing) {
        assertThat(dialsRefused).as("dials the dialer refused").hasPositiveValue();
        assertThat(dialsFailed)
            .as("callers failed by a refused first dial (an extra one fails nobody)")
            .hasPositiveValue();
      }
      assertThat(negativeSeen).as("negative counts observed").hasValue(0);
      assertThat(minCount).as("smallest count delivered").hasValueGreaterThanOrEqualTo(0);
      assertThat(leasesTaken).hasPositiveValue();
      assertThat(mostChannelsPerAddress)
          .as("most channels seen for one address (rule 9 exercised)")
          .hasValueGreaterThan(1);
      if (bounded) {
        assertThat(evicted).as("channels evicted (rule 10 exercised)").hasPositiveValue();
        assertThat(retired).as("channels retired (rule 11 exercised)").hasPositiveValue();
      }
      assertThat(failedAtStart).as("calls on held leases that failed at start").hasValue(0);
      System.out.printf(
          "StressTest.invariantsHoldUnderConcurrentDialReleaseExpireAndCloseOnRelease(%d, %b, %b):"
              + " %d leases, %s%n",
          addresses, bounded, failing, leasesTaken.get(), retirements.summary(dialer));
      assertThat(retirements.violations).as("retirements for silence").isEmpty();
      assertThat(retirements.shutDownUnderLease)
          .as("channels shut down under a lease held on them")
          .hasValue(0);
      assertThat(retirements.retired).as("channels retired for silence").isNotEmpty();
      assertThat(retirements.misreported())
          .as(
              "per address, channels retired for silence less UNHEALTHY closes reported (%d"
                  + " retired, %d reported)",
              retirements.retired.size(), retirements.unhealthyCloses.get())
          .isEmpty();
      assertThat(retirements.mostInOneInterval)
          .as("most retirements of one address between two passes")
          .hasValueLessThanOrEqualTo(Math.max(1, MAX_CHANNELS_PER_ADDRESS / 2));
      assertThat(shutDownUnderCall).as("calls whose channel was shut down under them").hasValue(0);
      assertThat(callsStarted).hasPositiveValue();
      assertThat(leasesReleasedUnderCalls)
          .as("leases released while their calls still ran")
          .hasPositiveValue();
      assertThat(dialer.created)
          .as("every channel created is shut down exactly once, with no call in flight")
          .allSatisfy(
              channel -> {
                assertThat(channel.shutdowns).as("%s", channel).hasValue(1);
                assertThat(channel.callsAtShutdown).as("%s", channel).hasValue(0);
              });
      assertThat(connector.connectionCount()).isZero();
      assertThat(connector.connections()).isEmpty();
      await().untilAsserted(() -> assertThat(lastCount).hasValue(0));
    } finally {
      threads.shutdownNow();
      connector.close();
    }
  }

  /**
   * Threads dial one address (a fresh one each round, so that each round starts with its first
   * channel's dial in flight), hold the lease for a moment with a call or two on it or none, and
   * give it back, ending the calls before or after the release ("Load counted at the pick").
   * Channels are full at {@code maxCalls} and an address may have more channels than the threads
   * could ever fill ({@value #POOL_ROOM}), so a dial never settles on a full channel: each lease is
   * taken with room, and the leases on a channel, with the calls of released ones, never pass its
   * limit. Each thread counts its lease on its channel from the moment the dial returns until the
   * lease is released and its calls have ended (one, however many calls: only the first is covered
   * by the lease, but further calls do not come from a dial), so that the counts never exceed the
   * channel's load; a count past the limit is a lease taken without room. Once every thread is done
   * every channel has no lease, no call and a load of 0.
   */
  @ParameterizedTest(name = "limit {0}, {1} threads, {2} rounds")
  @CsvSource({"3, 6, 1", "1, 4, 400", "3, 8, 200"})
  void racingDialsNeverLeaseAChannelPastItsLimit(int maxCalls, int threadCount, int rounds)
      throws Exception {
    long seed = Long.getLong("stress.seed", new SecureRandom().nextLong()).longValue();
    String replay = "seed " + seed + " (replay with -Dstress.seed=" + seed + ")";
    System.out.println("StressTest.racingDialsNeverLeaseAChannelPastItsLimit: " + replay);
    TrackingDialer dialer = TrackingDialer.fake();
    CachingConnector connector =
        CachingConnector.builder()
            .dialer(dialer)
            .shutdownGracePeriod(Duration.ZERO)
            .maxCallsPerChannel(maxCalls)
            .maxChannelsPerAddress(POOL_ROOM)
            .build();
    Map<Entry, AtomicInteger> counted = new ConcurrentHashMap<>();
    Set<Entry> entries = ConcurrentHashMap.newKeySet();
    Queue<String> violations = new ConcurrentLinkedQueue<>();
    AtomicLong leases = new AtomicLong();
    AtomicLong releasedUnderCalls = new AtomicLong();
    AtomicLong secondCalls = new AtomicLong();
    AtomicInteger mostCounted = new AtomicInteger();
    long budgetPerRound = BUDGET_NANOS / 2 / rounds;
    int leasesPerRound = Math.max(50, LEASES_PER_WORKER / 10 / rounds);
    ExecutorService threads = Executors.newFixedThreadPool(threadCount);
    try {
      for (int round = 0; round < rounds && violations.isEmpty(); round++) {
        String address = "backend-" + round;
        CountDownLatch go = new CountDownLatch(1);
        long deadline = System.nanoTime() + budgetPerRound;
        List<Future<?>> workers = new ArrayList<>();
        for (int t = 0; t < threadCount; t++) {
          Random random = new Random(seed * 31 + round * 1_000L + t);
          workers.add(
              threads.submit(
                  () -> {
                    go.await();
                    for (int i = 0; i < leasesPerRound && System.nanoTime() < deadline; i++) {
                      LeasedChannel lease = connector.dial(address, Duration.ofSeconds(30));
                      leases.incrementAndGet();
                      Entry entry = lease.entry;
                      entries.add(entry);
                      AtomicInteger count =
                          counted.computeIfAbsent(entry, e -> new AtomicInteger());
                      int now = count.incrementAndGet();
                      mostCounted.accumulateAndGet(now, Math::max);
                      if (now > entry.limit()) {
                        violations.add(
                            String.format(
                                "channel %d of %s: %d leases counted by the threads, limit %d,"
                                    + " load now %d",
                                entry.id, address, now, entry.limit(), entry.load()));
                      }
                      int calls = random.nextInt(4) == 0 ? 0 : random.nextInt(8) == 0 ? 2 : 1;
                      List<FakeCall<?, ?>> started = new ArrayList<>();
                      for (int c = 0; c < calls; c++) {
                        started.add(FakeCall.startOn(lease));
                      }
                      secondCalls.addAndGet(Math.max(0, calls - 1));
                      pause(random);
                      boolean releaseFirst = !started.isEmpty() && random.nextInt(3) == 0;
                      if (releaseFirst) {
                        lease.close();
                        releasedUnderCalls.incrementAndGet();
                        pause(random);
                        for (int c = 0; c < started.size(); c++) {
                          if (c == started.size() - 1) {
                            count.decrementAndGet(); // before the last of its calls ends
                          }
                          started.get(c).end();
                        }
                      } else {
                        started.forEach(FakeCall::end);
                        pause(random);
                        count.decrementAndGet(); // before the release
                        lease.close();
                      }
                    }
                    return null;
                  }));
        }
        go.countDown();
        for (Future<?> worker : workers) {
          worker.get(60, TimeUnit.SECONDS);
        }
      }
      String summary =
          String.format(
              "%s: %d leases over %d channels, at most %d counted on one, %d released under"
                  + " calls, %d second calls",
              replay,
              leases.get(),
              entries.size(),
              mostCounted.get(),
              releasedUnderCalls.get(),
              secondCalls.get());
      System.out.println("StressTest.racingDialsNeverLeaseAChannelPastItsLimit: " + summary);
      assertThat(violations).as("leases past a channel's limit; " + summary).isEmpty();
      assertThat(
              entries.stream()
                  .collect(Collectors.groupingBy(entry -> entry.address, Collectors.counting()))
                  .values()
                  .stream()
                  .mapToLong(Long::longValue)
                  .max()
                  .orElse(0))
          .as("most channels of one address, below the pool's room (no dial settled); " + summary)
          .isLessThan(POOL_ROOM);
      assertThat(entries)
          .as("every channel once all is done; " + summary)
          .allSatisfy(
              entry -> {
                assertThat(entry.leases()).as("leases of %s", entry.id).isZero();
                assertThat(entry.calls()).as("calls of %s", entry.id).isZero();
                assertThat(entry.load()).as("load of %s", entry.id).isZero();
              });
      assertThat(connector.leaseCount()).isZero();
      assertThat(connector.callCount()).isZero();
      assertThat(mostCounted.get()).as(summary).isEqualTo(maxCalls);
      assertThat(releasedUnderCalls).as(summary).hasPositiveValue();
      assertThat(secondCalls).as(summary).hasPositiveValue();
    } finally {
      threads.shutdownNow();
      connector.close();
    }
  }

  /**
   * A dial that meets an address's first channel while its dial is in flight, just as it is
   * published: the channel is full at one lease, and its dialing caller holds the lease its dial
   * reserved, so the other dial must open a channel of its own (an address may have {@value
   * #POOL_ROOM} channels and they are dialed at once, so no dial settles on a full one). Each round
   * a new address: the test's thread dials it, and its dialer spins until the other thread, which
   * dials the address in a loop with a timeout of a nanosecond (each attempt meets the pending
   * entry and gives up), has tried a few times; then it publishes the channel, and the other
   * thread's next attempt gets a lease, which must be on another channel. The window: a dial that
   * read the entry pending, and takes its lease once it is published. (One other thread only: a
   * second would wait for the first one's extra channel with its nanosecond, and settle on the full
   * one.)
   */
  @Test
  void aDialMeetingAFirstChannelsPublicationNeverLeasesItPastItsLimit() throws Exception {
    long seed = Long.getLong("stress.seed", new SecureRandom().nextLong());
    Random random = new Random(seed);
    TrackingDialer dialer = TrackingDialer.fake();
    AtomicLong attempts = new AtomicLong();
    AtomicLong publishAfter = new AtomicLong();
    dialer.behaviour =
        address -> {
          if (dialer.dialsOf(address) == 1) { // the first channel: published after a few attempts
            while (attempts.get() < publishAfter.get()) {
              Thread.onSpinWait();
            }
          }
        };
    CachingConnector connector =
        dialer
            .inlineConnector()
            .maxCallsPerChannel(1)
            .maxChannelsPerAddress(POOL_ROOM)
            .dialTimeout(Duration.ofMinutes(1))
            .build();
    AtomicReference<String> address = new AtomicReference<>();
    AtomicInteger started = new AtomicInteger(-1); // the round the other thread may start
    AtomicInteger leased = new AtomicInteger(-1); // the round in which it got its lease
    Queue<String> slips = new ConcurrentLinkedQueue<>();
    ExecutorService thread = Executors.newSingleThreadExecutor();
    int rounds = 0;
    long deadline = System.nanoTime() + BUDGET_NANOS / 2;
    try {
      Future<?> other =
          thread.submit(
              () -> {
                for (int round = 0; ; round++) {
                  while (started.get() < round) {
                    Thread.onSpinWait();
                  }
                  String target = address.get();
                  if (target == null) {
                    return null; // stopped
                  }
                  while (connector.table.get(target) == null) {
                    Thread.onSpinWait(); // the round's first dial is the test thread's
                  }
                  LeasedChannel lease = null;
                  while (lease == null) {
                    try {
                      lease = connector.dial(target, Duration.ofNanos(1));
                    } catch (StatusRuntimeException e) {
                      if (e.getStatus().getCode() != Status.Code.DEADLINE_EXCEEDED) {
                        throw e;
                      }
                      attempts.incrementAndGet();
                    }
                  }
                  if (lease.entry.firstChannel == null) {
                    slips.add(
                        String.format(
                            "%s: a second lease on its first channel, load %d, limit %d",
                            target, lease.entry.load(), lease.entry.limit()));
                  }
                  lease.close();
                  leased.set(round);
                }
              });
      for (; rounds < 100_000 && System.nanoTime() < deadline && slips.isEmpty(); rounds++) {
        address.set("first-" + rounds);
        publishAfter.set(attempts.get() + 1 + random.nextInt(3));
        started.set(rounds);
        try (LeasedChannel first = connector.dial(address.get())) {
          assertThat(first.entry.firstChannel).as("the test thread's channel").isNull();
          while (leased.get() < rounds) { // the first channel stays full until then
            if (other.isDone()) {
              other.get();
            }
            Thread.onSpinWait();
          }
        }
      }
      address.set(null);
      started.set(Integer.MAX_VALUE);
      other.get(30, TimeUnit.SECONDS);
      String summary =
          String.format(
              "seed %d (replay with -Dstress.seed=%d): %d rounds, %d attempts on a pending first"
                  + " channel, %d leases past the limit",
              seed, seed, rounds, attempts.get(), slips.size());
      System.out.println(
          "StressTest.aDialMeetingAFirstChannelsPublicationNeverLeasesItPastItsLimit: " + summary);
      assertThat(slips).as("leases on a full first channel just published; " + summary).isEmpty();
      assertThat(connector.leaseCount()).isZero();
    } finally {
      thread.shutdownNow();
      connector.close();
    }
  }

  /**
   * The retirements for silence the workers ask for, and their invariants: see the class comment.
   * Thread-safe.
   */
  static final class Retirements {
    /** Expiry passes begun and ended: a retirement between the same two passes reads both equal. */
    final AtomicLong passesStarted = new AtomicLong();

    final AtomicLong passesEnded = new AtomicLong();

    /** The channels a retirement was asked for, by id, added before the call. */
    final Set<Long> asked = ConcurrentHashMap.newKeySet();

    /** The channels retired, by id, with the ticket taken once the retirement had returned. */
    final Map<Long, Long> retired = new ConcurrentHashMap<>();

    private final AtomicLong tickets = new AtomicLong();
    final AtomicLong refused = new AtomicLong();
    final AtomicLong shutDownUnderLease = new AtomicLong();
    final AtomicLong unhealthyCloses = new AtomicLong();

    /** Per address: channels retired, less UNHEALTHY closes reported; 0 for each in the end. */
    private final Map<String, AtomicInteger> unreported = new ConcurrentHashMap<>();

    /** Retirements per address and interval, of those certainly within one interval. */
    private final Map<String, AtomicInteger> perInterval = new ConcurrentHashMap<>();

    final AtomicInteger mostInOneInterval = new AtomicInteger();
    final AtomicLong withinOneInterval = new AtomicLong();
    final Queue<String> violations = new ConcurrentLinkedQueue<>();

    /** Asks the connector to retire {@code entry}, as its health would, and checks the outcome. */
    void retire(CachingConnector connector, Entry entry, boolean underLease) {
      asked.add(entry.id);
      long ended = passesEnded.get();
      long started = passesStarted.get();
      boolean done = connector.retireSilent(entry);
      boolean oneInterval = started == ended && passesStarted.get() == started;
      if (underLease && entry.channel().isShutdown()) {
        shutDownUnderLease.incrementAndGet();
        violations.add("channel " + entry.id + " shut down by its retirement under a lease");
      }
      if (!done) {
        refused.incrementAndGet();
        return;
      }
      retired.put(entry.id, tickets.incrementAndGet());
      unreported.computeIfAbsent(entry.address, a -> new AtomicInteger()).incrementAndGet();
      if (oneInterval) {
        withinOneInterval.incrementAndGet();
        int count =
            perInterval
                .computeIfAbsent(entry.address + " after pass " + ended, k -> new AtomicInteger())
                .incrementAndGet();
        mostInOneInterval.accumulateAndGet(count, Math::max);
      }
    }

    /** The listener heard of a channel of {@code address} closed with cause UNHEALTHY. */
    void closedUnhealthy(String address) {
      unhealthyCloses.incrementAndGet();
      unreported.computeIfAbsent(address, a -> new AtomicInteger()).decrementAndGet();
    }

    /**
     * The addresses whose channels retired and UNHEALTHY closes reported differ, and by how much.
     */
    Map<String, Integer> misreported() {
      Map<String, Integer> differing = new TreeMap<>();
      unreported.forEach(
          (address, difference) -> {
            if (difference.get() != 0) {
              differing.put(address, difference.get());
            }
          });
      return differing;
    }

    /** Before a worker releases {@code lease}: its channel must not have been shut down. */
    void releasing(LeasedChannel lease) {
      if (lease.entry.channel().isShutdown()) {
        shutDownUnderLease.incrementAndGet();
        violations.add(
            "channel " + lease.entry.id + " of " + lease.address() + " shut down under a lease");
      }
    }

    /**
     * Each channel retired before {@code connections()} is read that it lists is closing with cause
     * UNHEALTHY, and each it lists with cause UNHEALTHY was asked to retire.
     */
    void checkConnections(CachingConnector connector) {
      long before = tickets.get();
      for (ConnectionInfo info : connector.connections()) {
        Long ticket = retired.get(info.id());
        if (ticket != null
            && ticket <= before
            && !(info.closing() && info.closeCause() == CloseCause.UNHEALTHY)) {
          violations.add("retired for silence, but listed as " + info);
        }
        if (info.closeCause() == CloseCause.UNHEALTHY && !asked.contains(info.id())) {
          violations.add("listed as retired for silence, but never asked to retire: " + info);
        }
      }
    }

    String summary(TrackingDialer dialer) {
      long enterIdles = 0;
      for (TrackedChannel channel : dialer.created) {
        enterIdles += channel.enterIdles.get();
      }
      return String.format(
          "%d channels of %d retired for silence (%d of them certainly between the same two"
              + " passes, at most %d of one address there), %d retirements refused, %d silent"
              + " first channels dropped their connection",
          retired.size(),
          dialer.created.size(),
          withinOneInterval.get(),
          mostInOneInterval.get(),
          refused.get(),
          enterIdles);
    }
  }

  /** Channels an address may have in {@link #racingDialsNeverLeaseAChannelPastItsLimit}. */
  static final int POOL_ROOM = 64;

  /** A moment: a few spins, maybe a yield, never a sleep. */
  private static void pause(Random random) {
    int spins = random.nextInt(4) == 0 ? random.nextInt(100) : 0;
    for (int i = 0; i < spins; i++) {
      Thread.onSpinWait();
    }
    if (random.nextInt(16) == 0) {
      Thread.yield();
    }
  }

  /** Ends a call a worker started; counts it if its channel was shut down while it ran. */
  private static void end(FakeCall<?, ?> call, AtomicLong shutDownUnderCall) {
    if (call.channel.isShutdown() || !call.end()) {
      shutDownUnderCall.incrementAndGet();
    }
  }

  /**
   * Rounds of {@code close()} while one thread runs expiry passes and another dials and releases
   * over 16 addresses, starting calls on some leases that outlive them, with channels that keep
   * draining until forced and a grace period of an hour: {@code close()} must force every channel,
   * those that expiry shut down before and during it included, exactly once, and not leave that to
   * a task an hour later. Before {@code close()} no channel is shut down under a call; after it,
   * every call has ended, those still in flight cancelled by it. Channels are retired for silence
   * meanwhile, under their lease or after it, and close() races those retirements too.
   */
  @Test
  void closeRacingExpiryAndDialsForcesEveryDrainingChannelExactlyOnce() throws Exception {
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      for (int round = 0; round < CLOSE_ROUNDS; round++) {
        TrackingDialer dialer = TrackingDialer.lingering();
        CountDownLatch expiredSome = new CountDownLatch(4);
        CachingConnector connector =
            CachingConnector.builder()
                .dialer(dialer)
                .dialExecutor(Runnable::run)
                .shutdownGracePeriod(Duration.ofHours(1))
                .maxCallsPerChannel(1)
                .listener(
                    new ConnectorListener() {
                      @Override
                      public void onClose(String address, CloseCause cause) {
                        expiredSome.countDown();
                      }
                    })
                .build();
        AtomicBoolean closed = new AtomicBoolean();
        AtomicBoolean closing = new AtomicBoolean();
        AtomicLong shutDownUnderCall = new AtomicLong();
        Queue<FakeCall<?, ?>> calls = new ConcurrentLinkedQueue<>();
        Future<?> expiry =
            threads.submit(
                () -> {
                  while (!closed.get()) {
                    connector.expire();
                  }
                  return null;
                });
        Future<?> dials =
            threads.submit(
                () -> {
                  Deque<FakeCall<?, ?>> inFlight = new ArrayDeque<>();
                  for (int i = 0; ; i++) {
                    Entry used;
                    try (LeasedChannel lease = connector.dial("backend-" + i % 16)) {
                      used = lease.entry;
                      if (i % 3 == 0) {
                        FakeCall<?, ?> call = FakeCall.startOn(lease);
                        calls.add(call);
                        inFlight.add(call);
                      }
                      if (i % 5 == 0) {
                        connector.retireSilent(used); // under the lease, and maybe a call
                      }
                    } catch (IllegalStateException e) {
                      return null; // closed
                    }
                    if (i % 7 == 0) {
                      connector.retireSilent(used); // released, maybe under a call
                    }
                    if (inFlight.size() > 8) {
                      FakeCall<?, ?> call = inFlight.removeFirst();
                      // Read before closing is: a channel shut down then was not shut by close().
                      boolean shutDown = call.channel.isShutdown();
                      if (shutDown && !closing.get()) {
                        shutDownUnderCall.incrementAndGet();
                      }
                      call.end();
                    }
                  }
                });
        assertThat(expiredSome.await(30, TimeUnit.SECONDS)).isTrue();

        closing.set(true);
        connector.close();
        closed.set(true);
        expiry.get(30, TimeUnit.SECONDS);
        dials.get(30, TimeUnit.SECONDS);

        int r = round;
        assertThat(dialer.created)
            .as("round %d: every channel shut down once and forced once", r)
            .allSatisfy(
                channel -> {
                  assertThat(channel.shutdowns).as("%s", channel).hasValue(1);
                  assertThat(channel.shutdownNows).as("%s", channel).hasValue(1);
                });
        assertThat(connector.connectionCount()).isZero();
        assertThat(shutDownUnderCall)
            .as("round %d: calls whose channel was shut down under them before close()", r)
            .hasValue(0);
        assertThat(calls)
            .as("round %d: every call ended, by its caller or cancelled by close()", r)
            .isNotEmpty()
            .allSatisfy(call -> assertThat(call.status()).as("%s", call).isNotNull());
        assertThat(connector.callCount()).isZero();
      }
    } finally {
      threads.shutdownNow();
    }
  }
}
