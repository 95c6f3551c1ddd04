package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import io.grpc.ConnectivityState;
import io.grpc.Status;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/**
 * A model-based property test of {@link CachingConnector}: random single-threaded sequences of
 * dials, releases, double releases, calls started on held leases and ended later, expiry passes,
 * {@code closeOnRelease} calls and (rarely) {@code close()} over three addresses run against a real
 * connector and against a small reference model, and the two are compared after every step.
 *
 * <p>The model is a direct transcription of the rules of docs/design.md, with no concurrency in it.
 * It knows every channel the dialer created, in creation order; per address the attached channels
 * (the first, then the extra ones of rule 9 in the order they were created), each with its leases,
 * its calls in flight, its count of consecutive idle passes and whether it was dialed since the
 * last pass; the channels detached by {@code closeOnRelease}, with their leases and calls; which
 * channels are open and which are closed; every call, with the lease it started on and how it
 * ended; and which callbacks each step must fire. A call started on a held lease belongs to that
 * lease's channel until it ends, and may outlive the lease (rule 8). An expiry pass that finds an
 * attached channel without leases and without calls counts an idle pass, one that finds either
 * resets the count, and so does a dial; the channel closes at the second consecutive idle pass. A
 * detached channel closes at the first pass that finds it without leases and calls. {@code close()}
 * closes everything, cancelling the calls in flight, after which dials throw, releases do nothing,
 * and a call started on a lease still held fails at once.
 *
 * <p>Rule 9 with small limits: a channel with {@value #MAX_CALLS} calls in flight is full; a dial
 * leases the first channel of its address with room, in creation order, and opens one more channel
 * when all are full, up to {@value #MAX_CHANNELS} (or 1, for every other seed: the Go package's one
 * channel per address), after which it leases the least-loaded full channel. Extra channels expire
 * like any other; the first channel of an address stays while it has others, and {@code
 * closeOnRelease} detaches them all.
 *
 * <p>Rules 10 and 11, by seed: a bound of 2 or 4 channels (or none), and a maximum age of {@value
 * #MAX_AGE_SECONDS} s (or none). The bound is the clock hand of {@link ChannelBound}, transcribed:
 * a ring of the channels in creation order, each with a recent bit that a lease of an existing
 * channel sets (the dial that creates a channel does not); before a dial creates a channel while
 * the open channels reach the bound, the hand takes channels from the ring's head, until it has met
 * {@value ChannelBound#SCAN_LIMIT} in use, or meets again the first it found in use with no bit
 * cleared since: a closed one is dropped, a recent attached one loses its bit and goes to the tail
 * (at most the ring's size plus {@value ChannelBound#SCAN_LIMIT} of these), an idle one (no lease,
 * no call, and for the first channel of an address, no other channel attached) is closed ({@code
 * EVICTED}, or its detach cause if detached), any other goes to the tail; each expiry pass drops
 * the closed ones from the ring. The dial reports its evictions after its own channel is counted,
 * so an eviction and the new channel together may deliver no new count. An expiry pass retires each
 * attached channel past its age, before counting it idle: it is detached ({@code MAX_AGE}), with
 * the other channels of its address if it is their first, and those of them that are idle close at
 * once. The age of each channel with its jitter is read from the connector (its spread is {@link
 * MaxChannelAgeTest}'s business); the model checks it lies within 10 % of the age.
 *
 * <p>Issue 23, retirement for silence: a step asks the connector to retire one channel of an
 * address ({@link CachingConnector#retireSilent(Entry)}, what a channel's health does once it finds
 * it silent), an open one mostly, attached or detached, sometimes one already closed. The model
 * predicts its result: false for a channel detached or closed; false once the address has used its
 * budget, {@code max(1, n / 2)} of its {@code n} attached channels, counted since the last expiry
 * pass; else the budget is used, and a first channel with extra channels drops its connection
 * ({@code enterIdle()}, counted by the fake channel) and stays, while any other channel is detached
 * ({@code UNHEALTHY}) and closes as a channel detached by {@code closeOnRelease} does: at once if
 * idle, else at the first pass after its leases and calls end, or by the bound's hand, with its
 * cause. Apart from the model, each retirement step checks on the connector alone that the channels
 * it took out of the address's attached ones, together with those taken out since the last pass,
 * are at most {@code max(1, n / 2)} of the {@code n} the address had before it, that each is
 * reported {@code UNHEALTHY} (by {@code connections()} while open, by {@code onClose} once closed),
 * and that none under a lease or a call was shut down. Pools of {@value #MAX_CHANNELS} or {@value
 * #LARGER_POOL} channels, so that the budget is one or two channels. Every sequence ends with
 * {@code close()}, after which each channel the dialer created must have been shut down once.
 *
 * <p>Calls are {@link FakeCall}s on the dialer's fake channels, ended by the test; the connector's
 * counting wraps them, so ending one runs the connector's end of the call. Each channel records the
 * calls in flight when it was shut down, which the model predicts: none, except under {@code
 * close()}.
 *
 * <p>Each run checks {@value #FIXED_SEQUENCES} fixed seeds and {@value #RANDOM_SEQUENCES} seeds
 * from a random base printed on standard output, {@value #STEPS} steps each. A failure names its
 * seed and step, prints the history of the run, and a shrunk minimal sequence that still fails;
 * rerun one seed with {@code -Dmodel.seed=N}.
 */
class CachingConnectorModelTest {

  static final int FIXED_SEQUENCES = 400;
  static final int RANDOM_SEQUENCES = 100;
  static final int STEPS = 60;
  private static final long FIXED_BASE = 20_260_101L;
  private static final int IDLE_PASSES_TO_CLOSE = 2;
  private static final Duration TICK = Duration.ofSeconds(1);
  private static final List<String> ADDRESSES =
      List.of("dns:///alpha.test:443", "dns:///beta.test:443", "dns:///gamma.test:443");
  private static final int ALPHA = 0;
  private static final int BETA = 1;
  static final int MAX_CALLS = 2;
  static final int MAX_CHANNELS = 3;

  /** The pool of the other half of the seeds with several channels: a budget of two for silence. */
  static final int LARGER_POOL = 4;

  static final int MAX_AGE_SECONDS = 10;

  /** The connector's limits in one sequence. */
  record Limits(int maxChannels, int maximumChannels, int maxAgeSeconds) {

    static final int NONE = 0;

    @Override
    public String toString() {
      return "maxChannelsPerAddress="
          + maxChannels
          + ", maximumChannels="
          + (maximumChannels == NONE ? "none" : maximumChannels)
          + ", maxChannelAge="
          + (maxAgeSeconds == NONE ? "none" : maxAgeSeconds + "s");
    }
  }

  @Test
  void randomSequencesOfOperationsLeaveTheConnectorInTheStateTheModelPredicts() {
    long started = System.nanoTime();
    long[] seeds = seeds();
    int grew = 0;
    int evicted = 0;
    int retired = 0;
    int releasedUnderCalls = 0;
    int failedStarts = 0;
    int settled = 0;
    int retiredSilent = 0;
    int droppedConnections = 0;
    int refusedRetirements = 0;
    for (long seed : seeds) {
      List<Op> ops = generate(seed, STEPS);
      Limits limits = limits(seed);
      Outcome outcome = run(ops, limits);
      if (outcome.failure() != null) {
        fail(report(seed, ops, limits, outcome), outcome.failure());
      }
      grew += outcome.extraChannels() > 0 ? 1 : 0;
      evicted += outcome.evictions() > 0 ? 1 : 0;
      retired += outcome.retirements() > 0 ? 1 : 0;
      releasedUnderCalls += outcome.releasesUnderCalls() > 0 ? 1 : 0;
      failedStarts += outcome.failedStarts() > 0 ? 1 : 0;
      settled += outcome.settled() > 0 ? 1 : 0;
      retiredSilent += outcome.silentRetirements() > 0 ? 1 : 0;
      droppedConnections += outcome.droppedConnections() > 0 ? 1 : 0;
      refusedRetirements += outcome.refusedRetirements() > 0 ? 1 : 0;
    }
    System.out.printf(
        "CachingConnectorModelTest: %d sequences of %d steps agreed with the model in %d ms;"
            + " %d of them opened extra channels for an address, %d evicted, %d retired,"
            + " %d released leases under calls, %d had calls fail at start, %d settled on a full"
            + " channel, %d retired channels for silence, %d dropped a silent first channel's"
            + " connection, %d were refused a retirement by the budget%n",
        seeds.length,
        STEPS,
        (System.nanoTime() - started) / 1_000_000,
        grew,
        evicted,
        retired,
        releasedUnderCalls,
        failedStarts,
        settled,
        retiredSilent,
        droppedConnections,
        refusedRetirements);
    if (seeds.length > 1) {
      assertThat(grew).as("sequences that exercised rule 9").isGreaterThan(seeds.length / 20);
      assertThat(evicted).as("sequences that exercised rule 10").isGreaterThan(seeds.length / 20);
      assertThat(retired).as("sequences that exercised rule 11").isGreaterThan(seeds.length / 20);
      assertThat(releasedUnderCalls)
          .as("sequences that released a lease with calls running")
          .isGreaterThan(seeds.length / 20);
      assertThat(failedStarts)
          .as("sequences with a call failing at its start")
          .isGreaterThan(seeds.length / 20);
      assertThat(settled)
          .as("sequences that settled on a full channel (all full)")
          .isGreaterThan(seeds.length / 100);
      assertThat(retiredSilent)
          .as("sequences that retired a channel for silence")
          .isGreaterThan(seeds.length / 4);
      assertThat(droppedConnections)
          .as("sequences where a silent first channel with extra channels dropped its connection")
          .isGreaterThan(seeds.length / 50);
      assertThat(refusedRetirements)
          .as("sequences where the budget refused a retirement for silence")
          .isGreaterThan(seeds.length / 20);
    }
  }

  @Test
  void aReleasedChannelClosesAtTheSecondIdlePassAndADialResetsTheCount() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(ALPHA));
      harness.step(Op.release(0, Via.CLOSE));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty();
      assertThat(harness.connector.connections())
          .singleElement()
          .extracting(ConnectionInfo::idlePasses)
          .isEqualTo(1);

      harness.step(Op.dial(ALPHA));
      harness.step(Op.release(0, Via.RELEASE));
      assertThat(harness.connector.connections())
          .singleElement()
          .extracting(ConnectionInfo::idlePasses)
          .isEqualTo(0);
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty();
      harness.step(Op.expire());
      assertThat(harness.lastExpired).containsExactly(ADDRESSES.get(ALPHA));
      assertThat(harness.dialer.created)
          .singleElement()
          .satisfies(channel -> assertThat(channel.shutdowns).hasValue(1));
    }
  }

  @Test
  void aHeldLeaseKeepsItsChannelOpenThroughAnyNumberOfPasses() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(ALPHA));
      for (int i = 0; i < 5; i++) {
        harness.step(Op.expire());
        assertThat(harness.lastExpired).isEmpty();
      }
      harness.step(Op.release(0, Via.SHUTDOWN));
      harness.step(Op.releaseAgain(0, Via.RELEASE));
      harness.step(Op.expire());
      harness.step(Op.expire());
      assertThat(harness.lastExpired).containsExactly(ADDRESSES.get(ALPHA));
    }
  }

  @Test
  void aChannelDetachedByCloseOnReleaseClosesAtTheFirstPassAfterItsLastRelease() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(BETA));
      harness.step(Op.closeOnRelease(BETA));
      assertThat(harness.lastCloseOnRelease).isTrue();
      harness.step(Op.dial(BETA)); // a new channel; the detached one keeps its lease
      assertThat(harness.dialer.created).hasSize(2);
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty();
      harness.step(Op.release(0, Via.CLOSE)); // the lease on the detached channel
      harness.step(Op.expire());
      assertThat(harness.lastExpired).containsExactly(ADDRESSES.get(BETA));
      assertThat(harness.dialer.created.get(0).shutdowns).hasValue(1);
      assertThat(harness.dialer.created.get(1).shutdowns).hasValue(0);
      harness.step(Op.closeOnRelease(ALPHA));
      assertThat(harness.lastCloseOnRelease).isFalse();
    }
  }

  @Test
  void aCallOutlivesItsLeaseAndKeepsItsChannelOpenUntilItEnds() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(ALPHA));
      harness.step(Op.startCall(0));
      harness.step(Op.release(0, Via.CLOSE));
      for (int i = 0; i < 3; i++) {
        harness.step(Op.expire());
        assertThat(harness.lastExpired).isEmpty();
      }
      assertThat(harness.connector.connections())
          .singleElement()
          .satisfies(
              info -> {
                assertThat(info.leases()).isZero();
                assertThat(info.calls()).isEqualTo(1);
                assertThat(info.idlePasses()).isZero();
              });
      assertThat(harness.connector.callCount()).isEqualTo(1);

      harness.step(Op.endCall(0));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty();
      harness.step(Op.expire());
      assertThat(harness.lastExpired).containsExactly(ADDRESSES.get(ALPHA));
      assertThat(harness.dialer.created.get(0).callsAtShutdown).hasValue(0);
    }
  }

  @Test
  void aDetachedChannelClosesAtTheFirstPassAfterItsLeasesAndCallsEnd() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(BETA));
      harness.step(Op.startCall(0));
      harness.step(Op.startCall(0));
      harness.step(Op.closeOnRelease(BETA));
      harness.step(Op.release(0, Via.RELEASE));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty();
      harness.step(Op.endCall(1));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty();
      assertThat(harness.connector.connections())
          .singleElement()
          .satisfies(
              info -> {
                assertThat(info.closing()).isTrue();
                assertThat(info.calls()).isEqualTo(1);
              });
      harness.step(Op.endCall(0));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).containsExactly(ADDRESSES.get(BETA));
      assertThat(harness.connector.callCount()).isZero();
    }
  }

  @Test
  void closeCancelsTheCallsInFlightAndACallStartedAfterwardsFailsAtOnce() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(ALPHA));
      harness.step(Op.startCall(0));
      harness.step(Op.release(0, Via.SHUTDOWN));
      harness.step(Op.dial(ALPHA));
      harness.step(Op.close());
      assertThat(harness.dialer.created.get(0).callsAtShutdown).hasValue(1);
      assertThat(harness.model.calls.get(0).fake.status()).isEqualTo(FakeCall.SHUT_DOWN_NOW);
      harness.step(Op.startCall(0)); // on L1, still held: the channel is closed
      assertThat(harness.model.calls.get(1).fake.status())
          .satisfies(status -> assertThat(status.getCode()).isEqualTo(Status.Code.UNAVAILABLE))
          .satisfies(status -> assertThat(status.getDescription()).contains("was closed by"));
      harness.step(Op.endCall(0)); // none in flight: skipped
      assertThat(harness.connector.callCount()).isZero();
    }
  }

  @Test
  void afterCloseDialsFailEveryChannelIsShutDownAndReleasesAreHarmless() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(ALPHA));
      harness.step(Op.dial(BETA));
      harness.step(Op.closeOnRelease(BETA));
      harness.step(Op.close());
      assertThat(harness.dialer.created)
          .allSatisfy(channel -> assertThat(channel.shutdowns).hasValue(1));
      harness.step(Op.dial(ALPHA)); // expects IllegalStateException
      harness.step(Op.release(0, Via.RELEASE));
      harness.step(Op.release(0, Via.CLOSE));
      harness.step(Op.releaseAgain(0, Via.SHUTDOWN));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty();
      harness.step(Op.close());
    }
  }

  @Test
  void fullChannelsGetASiblingTheLeastLoadedIsLeasedAndTheFirstChannelOutlivesItsSiblings() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(ALPHA)); // L0 on #0
      harness.step(Op.startCall(0));
      harness.step(Op.startCall(0)); // #0 full
      harness.step(Op.dial(ALPHA)); // L1 on a new #1
      harness.step(Op.startCall(1));
      harness.step(Op.dial(ALPHA)); // L2 on #1: one call, #0 has two
      harness.step(Op.startCall(2)); // #1 full
      harness.step(Op.dial(ALPHA)); // L3 on a new #2
      harness.step(Op.startCall(3));
      harness.step(Op.startCall(3)); // all three full, the limit reached
      harness.step(Op.dial(ALPHA)); // L4 on #0, the least loaded full one (a tie: the first)
      assertThat(harness.leases.get(4).expected.id).isZero();
      assertThat(harness.connector.connections())
          .extracting(ConnectionInfo::id)
          .containsExactly(1L, 2L, 3L);
      assertThat(harness.misses).hasSize(3);

      harness.step(Op.endCall(2)); // a call on #1 ends: #1 is the first with room
      harness.step(Op.dial(ALPHA)); // L5 on #1
      assertThat(harness.leases.get(5).expected.id).isEqualTo(1);

      for (int i = 0; i < 6; i++) {
        harness.step(Op.release(0, Via.CLOSE));
      }
      harness.step(Op.endCall(0)); // the calls on #0 end; #1 and #2 keep theirs
      harness.step(Op.endCall(0));
      harness.step(Op.expire());
      harness.step(Op.expire());
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty(); // #0 is idle, but its address has others
      while (harness.connector.callCount() > 0) {
        harness.step(Op.endCall(0));
      }
      harness.step(Op.expire());
      harness.step(Op.expire());
      assertThat(harness.lastExpired).hasSize(3); // the extra channels, then the first, in one pass
      assertThat(harness.connector.connectionCount()).isZero();
    }
  }

  @Test
  void theLoadCountsHeldLeasesAndTheCallsTheyDoNotCover() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dialAndRelease(ALPHA, Via.CLOSE)); // L0 on #0: load 1, then 0
      harness.step(Op.dialFailingCall(ALPHA)); // L1 on #0: its call fails at start, load 1
      Entry first = harness.entries.get(0);
      assertThat(first.load()).isEqualTo(1);
      harness.step(Op.startCall(0)); // C0 on L1: covered by it, load 1
      assertThat(first.load()).isEqualTo(1);
      harness.step(Op.startCall(0)); // C1 on L1: not covered, load 2, #0 full
      assertThat(first.load()).isEqualTo(2);
      harness.step(Op.failingCall(0)); // on L1: counts nowhere
      assertThat(first.load()).isEqualTo(2);
      harness.step(Op.dial(ALPHA)); // L2 on a new #1
      assertThat(harness.leases.get(2).expected.id).isEqualTo(1);
      harness.step(Op.release(0, Via.RELEASE)); // L1, with both its calls: load 2, uncovered
      assertThat(first.load()).isEqualTo(2);
      harness.step(Op.endCall(0)); // C0: load 1, room on #0
      assertThat(first.load()).isEqualTo(1);
      harness.step(Op.dial(ALPHA)); // L3 on #0, the first with room: full again
      assertThat(harness.leases.get(3).expected.id).isZero();
      harness.step(Op.dialCalls(ALPHA)); // L4 on #1 (load 1), with two calls: load 3
      assertThat(harness.leases.get(4).expected.id).isEqualTo(1);
      assertThat(harness.entries.get(1).load()).isEqualTo(3);
      harness.step(Op.dial(ALPHA)); // L5 on a new #2
      harness.step(Op.dial(ALPHA)); // L6 on #2: full
      harness.step(Op.dial(ALPHA)); // L7: all full, no room for a fourth: the least loaded, #0
      assertThat(harness.leases.get(7).expected.id).isZero();
      assertThat(first.load()).isEqualTo(3);
      while (harness.connector.callCount() > 0) {
        harness.step(Op.endCall(0));
      }
      for (int i = 0; i < 6; i++) {
        harness.step(Op.release(0, Via.CLOSE));
      }
      assertThat(harness.entries.values()).allSatisfy(entry -> assertThat(entry.load()).isZero());
    }
  }

  @Test
  void closeOnReleaseDetachesEveryChannelOfTheAddress() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(BETA));
      harness.step(Op.startCall(0));
      harness.step(Op.startCall(0));
      harness.step(Op.dial(BETA)); // a second channel
      harness.step(Op.closeOnRelease(BETA));
      assertThat(harness.connector.connections())
          .hasSize(2)
          .allSatisfy(info -> assertThat(info.closing()).isTrue());
      harness.step(Op.dial(BETA)); // a fresh first channel
      assertThat(harness.dialer.created).hasSize(3);
      harness.step(Op.release(0, Via.CLOSE));
      harness.step(Op.release(0, Via.CLOSE)); // the second channel is unused now
      harness.step(Op.expire());
      assertThat(harness.lastExpired).hasSize(1);
      harness.step(Op.endCall(0));
      harness.step(Op.endCall(0));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).hasSize(1);
    }
  }

  @Test
  void aChannelRetiredForSilenceClosesAsUnhealthyOnlyAfterItsLeaseAndItsCallEnd() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(ALPHA)); // L0 on #0
      harness.step(Op.startCall(0));
      harness.step(Op.retireSilent(ALPHA, 0));
      assertThat(harness.lastRetireSilent).isTrue();
      assertThat(harness.connector.connections())
          .singleElement()
          .satisfies(
              info -> {
                assertThat(info.closing()).isTrue();
                assertThat(info.closeCause()).isEqualTo(ConnectorListener.CloseCause.UNHEALTHY);
              });
      harness.step(Op.dial(ALPHA)); // L1 on a fresh #1
      assertThat(harness.dialer.created).hasSize(2);
      harness.step(Op.release(0, Via.CLOSE)); // L0: #0 keeps its call
      harness.step(Op.expire());
      assertThat(harness.lastExpired).isEmpty();
      harness.step(Op.endCall(0));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).containsExactly(ADDRESSES.get(ALPHA));
      assertThat(harness.closes).containsExactly(ADDRESSES.get(ALPHA) + " UNHEALTHY");
      assertThat(harness.dialer.created.get(0).callsAtShutdown).hasValue(0);
      harness.step(Op.retireSilent(ALPHA, 0)); // #1, under its lease
      assertThat(harness.lastRetireSilent).isTrue();
    }
  }

  @Test
  void anAddressRetiresAtMostHalfItsChannelsForSilenceBetweenTwoPasses() {
    try (Harness harness = new Harness(new Limits(LARGER_POOL, Limits.NONE, Limits.NONE))) {
      for (int i = 0; i < LARGER_POOL; i++) {
        harness.step(Op.dialCalls(ALPHA)); // a lease with two calls fills a channel
      }
      assertThat(harness.connector.connections()).hasSize(4);
      harness.step(Op.retireSilent(ALPHA, 1)); // #1, of four: one of two
      assertThat(harness.lastRetireSilent).isTrue();
      harness.step(Op.dialCalls(ALPHA)); // #4: four again
      harness.step(Op.retireSilent(ALPHA, 1)); // #2, of four: two of two
      assertThat(harness.lastRetireSilent).isTrue();
      harness.step(Op.retireSilent(ALPHA, 2)); // #4, of three now: none left
      assertThat(harness.lastRetireSilent).isFalse();
      harness.step(Op.expire());
      harness.step(Op.retireSilent(ALPHA, 1)); // #3, in a new interval: one of three
      assertThat(harness.lastRetireSilent).isTrue();
      assertThat(harness.connector.connections())
          .extracting(ConnectionInfo::closeCause)
          .containsExactly(
              null,
              ConnectorListener.CloseCause.UNHEALTHY,
              ConnectorListener.CloseCause.UNHEALTHY,
              ConnectorListener.CloseCause.UNHEALTHY,
              null);
    }
  }

  @Test
  void aSilentFirstChannelWithExtraChannelsDropsItsConnectionAndStays() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dialCalls(ALPHA)); // #0 full
      harness.step(Op.dial(ALPHA)); // L1 on a new #1
      harness.step(Op.retireSilent(ALPHA, 0));
      assertThat(harness.lastRetireSilent).isFalse();
      assertThat(harness.dialer.created.get(0).enterIdles).hasValue(1);
      assertThat(harness.connector.connections())
          .allSatisfy(info -> assertThat(info.closing()).isFalse());
      harness.step(Op.retireSilent(ALPHA, 0)); // the budget of one is used
      assertThat(harness.dialer.created.get(0).enterIdles).hasValue(1);
      harness.step(Op.expire());
      harness.step(Op.retireSilent(ALPHA, 1)); // the extra channel leaves, under its lease
      assertThat(harness.lastRetireSilent).isTrue();
      harness.step(Op.release(1, Via.CLOSE));
      harness.step(Op.expire());
      assertThat(harness.lastExpired).containsExactly(ADDRESSES.get(ALPHA));
      harness.step(Op.retireSilent(ALPHA, 0)); // alone now: retired, under its lease and calls
      assertThat(harness.lastRetireSilent).isTrue();
    }
  }

  @Test
  void anAddressWhoseLoneChannelWasRetiredForSilenceRetiresNoOtherUntilThePass() {
    try (Harness harness = new Harness()) {
      harness.step(Op.dial(BETA)); // #0
      harness.step(Op.retireSilent(BETA, 0));
      assertThat(harness.lastRetireSilent).isTrue();
      harness.step(Op.dial(BETA)); // a fresh first channel, #1
      harness.step(Op.retireSilent(BETA, 0)); // the address's budget of one is used
      assertThat(harness.lastRetireSilent).isFalse();
      harness.step(Op.expire());
      harness.step(Op.retireSilent(BETA, 0));
      assertThat(harness.lastRetireSilent).isTrue();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Seeds, generation, running, shrinking, reporting

  private static long[] seeds() {
    String single = System.getProperty("model.seed");
    if (single != null && !single.isBlank()) {
      return new long[] {Long.parseLong(single.trim())};
    }
    long randomBase = new SecureRandom().nextLong();
    System.out.printf(
        "CachingConnectorModelTest: seeds %d..%d, and %d seeds from the random base %d"
            + " (replay one with -Dmodel.seed=N)%n",
        FIXED_BASE, FIXED_BASE + FIXED_SEQUENCES - 1, RANDOM_SEQUENCES, randomBase);
    long[] seeds = new long[FIXED_SEQUENCES + RANDOM_SEQUENCES];
    for (int i = 0; i < FIXED_SEQUENCES; i++) {
      seeds[i] = FIXED_BASE + i;
    }
    for (int i = 0; i < RANDOM_SEQUENCES; i++) {
      seeds[FIXED_SEQUENCES + i] = randomBase + i;
    }
    return seeds;
  }

  /**
   * The limits for a seed: a pool for even seeds ({@value #MAX_CHANNELS} channels, or {@value
   * #LARGER_POOL}), one channel per address for odd ones; a bound of none, 2 or 4 channels in turn;
   * no maximum age, or {@value #MAX_AGE_SECONDS} s. Every combination comes once in 24 seeds.
   */
  static Limits limits(long seed) {
    long n = Math.abs(seed % 1_000_000);
    int[] bounds = {Limits.NONE, 2, 4};
    return new Limits(
        n % 2 == 1 ? 1 : n / 12 % 2 == 0 ? MAX_CHANNELS : LARGER_POOL,
        bounds[(int) (n / 2 % 3)],
        n / 6 % 2 == 0 ? Limits.NONE : MAX_AGE_SECONDS);
  }

  /**
   * The operations of one sequence, {@code steps} random ones and a {@code close()}: a pure
   * function of the seed, so that a seed replays.
   */
  static List<Op> generate(long seed, int steps) {
    Random random = new Random(seed);
    List<Op> ops = new ArrayList<>(steps);
    for (int i = 0; i < steps; i++) {
      int roll = random.nextInt(1000);
      int address = random.nextInt(ADDRESSES.size());
      int pick = random.nextInt(Integer.MAX_VALUE);
      Via via = Via.values()[random.nextInt(Via.values().length)];
      Kind kind;
      if (roll < 6) {
        kind = Kind.CLOSE; // about one sequence in three closes the connector somewhere
      } else if (roll < 240) {
        kind = Kind.DIAL;
      } else if (roll < 270) {
        kind = Kind.DIAL_AND_RELEASE;
      } else if (roll < 290) {
        kind = Kind.DIAL_FAILING_CALL;
      } else if (roll < 315) {
        kind = Kind.DIAL_CALLS;
      } else if (roll < 500) {
        kind = Kind.RELEASE;
      } else if (roll < 540) {
        kind = Kind.RELEASE_AGAIN;
      } else if (roll < 640) {
        kind = Kind.START_CALL;
      } else if (roll < 660) {
        kind = Kind.FAILING_CALL;
      } else if (roll < 750) {
        kind = Kind.END_CALL;
      } else if (roll < 880) {
        kind = Kind.EXPIRE;
      } else if (roll < 950) {
        kind = Kind.RETIRE_SILENT;
      } else {
        kind = Kind.CLOSE_ON_RELEASE;
      }
      ops.add(new Op(kind, address, pick, via));
    }
    ops.add(Op.close()); // every channel must then have been shut down once
    return ops;
  }

  /** Runs {@code ops} on a fresh connector and model; the outcome holds the first failure. */
  static Outcome run(List<Op> ops, Limits limits) {
    Harness harness = new Harness(limits);
    try {
      for (int i = 0; i < ops.size(); i++) {
        try {
          harness.step(ops.get(i));
        } catch (VirtualMachineError e) {
          throw e;
        } catch (Throwable t) {
          return harness.outcome(i, t);
        }
      }
      return harness.outcome(-1, null);
    } finally {
      harness.close();
    }
  }

  /**
   * Shrinks a failing sequence by deleting ever smaller chunks of operations as long as what is
   * left still fails. Releases and calls pick their lease or call by index, so any subsequence
   * replays.
   */
  static List<Op> shrink(List<Op> ops, Limits limits, int failedStep) {
    List<Op> current = List.copyOf(ops.subList(0, failedStep + 1));
    int budget = 3_000;
    boolean progress = true;
    while (progress && budget > 0) {
      progress = false;
      for (int chunk = Math.max(1, current.size() / 2); chunk >= 1 && budget > 0; chunk /= 2) {
        for (int start = 0; start + chunk <= current.size() && budget > 0; ) {
          List<Op> candidate = new ArrayList<>(current.subList(0, start));
          candidate.addAll(current.subList(start + chunk, current.size()));
          budget--;
          Outcome outcome = run(candidate, limits);
          if (outcome.failure() != null) {
            current = List.copyOf(candidate.subList(0, outcome.failedStep() + 1));
            progress = true;
          } else {
            start += chunk;
          }
        }
      }
    }
    return current;
  }

  private static String report(long seed, List<Op> ops, Limits limits, Outcome outcome) {
    Throwable failure = outcome.failure();
    StringBuilder out = new StringBuilder();
    out.append("seed=")
        .append(seed)
        .append(" (replay with -Dmodel.seed=")
        .append(seed)
        .append(", ")
        .append(limits)
        .append("): step ")
        .append(outcome.failedStep())
        .append(" of ")
        .append(ops.size())
        .append(" failed: ")
        .append(failure)
        .append("\nhistory:\n");
    outcome.history().forEach(line -> out.append("  ").append(line).append('\n'));
    List<Op> minimal = shrink(ops, limits, outcome.failedStep());
    Outcome replay = run(minimal, limits);
    out.append("minimal failing sequence (")
        .append(minimal.size())
        .append(" steps), failing with ")
        .append(replay.failure())
        .append(":\n");
    replay.history().forEach(line -> out.append("  ").append(line).append('\n'));
    out.append("as ops: ").append(minimal);
    return out.toString();
  }

  // ---------------------------------------------------------------------------------------------
  // Operations

  enum Kind {
    DIAL,
    /** A dial whose lease is released in the same step, with no call. */
    DIAL_AND_RELEASE,
    /** A dial whose first call fails at its start ({@link FakeCall#startFailingOn}). */
    DIAL_FAILING_CALL,
    /** A dial and two calls on its lease: the second is not covered by the lease. */
    DIAL_CALLS,
    RELEASE,
    RELEASE_AGAIN,
    START_CALL,
    /** A call on a held lease that fails at its start. */
    FAILING_CALL,
    END_CALL,
    EXPIRE,
    CLOSE_ON_RELEASE,
    /** {@link CachingConnector#retireSilent(Entry)} on a channel of the address. */
    RETIRE_SILENT,
    CLOSE
  }

  /** How a lease is given back. */
  enum Via {
    /** {@link LeasedChannel#close()}. */
    CLOSE,
    /** {@link CachingConnector#release(String, io.grpc.ManagedChannel)}. */
    RELEASE,
    /** {@link LeasedChannel#shutdown()}. */
    SHUTDOWN
  }

  /**
   * One step. {@code address} indexes {@link #ADDRESSES}; {@code pick} chooses, modulo their
   * number, among the leases held (for a release or a call's start), the leases already released
   * (for a double release) or the calls in flight (for a call's end); for a retirement for silence,
   * {@code pick / 8} chooses among the address's attached channels (the first, then the extra ones
   * in creation order), or, if {@code pick % 8} is 6, among its open ones (attached or detached, in
   * creation order), if 7, among its closed ones; if there are none, among the open ones, else the
   * closed ones.
   */
  record Op(Kind kind, int address, int pick, Via via) {

    static Op dial(int address) {
      return new Op(Kind.DIAL, address, 0, Via.CLOSE);
    }

    static Op release(int pick, Via via) {
      return new Op(Kind.RELEASE, 0, pick, via);
    }

    static Op dialAndRelease(int address, Via via) {
      return new Op(Kind.DIAL_AND_RELEASE, address, 0, via);
    }

    static Op dialFailingCall(int address) {
      return new Op(Kind.DIAL_FAILING_CALL, address, 0, Via.CLOSE);
    }

    static Op dialCalls(int address) {
      return new Op(Kind.DIAL_CALLS, address, 0, Via.CLOSE);
    }

    static Op failingCall(int pick) {
      return new Op(Kind.FAILING_CALL, 0, pick, Via.CLOSE);
    }

    static Op releaseAgain(int pick, Via via) {
      return new Op(Kind.RELEASE_AGAIN, 0, pick, via);
    }

    static Op startCall(int pick) {
      return new Op(Kind.START_CALL, 0, pick, Via.CLOSE);
    }

    static Op endCall(int pick) {
      return new Op(Kind.END_CALL, 0, pick, Via.CLOSE);
    }

    static Op expire() {
      return new Op(Kind.EXPIRE, 0, 0, Via.CLOSE);
    }

    static Op closeOnRelease(int address) {
      return new Op(Kind.CLOSE_ON_RELEASE, address, 0, Via.CLOSE);
    }

    static Op close() {
      return new Op(Kind.CLOSE, 0, 0, Via.CLOSE);
    }

    /** Retires the {@code index}-th attached channel of {@code address}: 0 for the first. */
    static Op retireSilent(int address, int index) {
      return new Op(Kind.RETIRE_SILENT, address, index * 8, Via.CLOSE);
    }

    @Override
    public String toString() {
      return switch (kind) {
        case DIAL -> "dial(" + address + ")";
        case DIAL_AND_RELEASE -> "dialAndRelease(" + address + ", " + via + ")";
        case DIAL_FAILING_CALL -> "dialFailingCall(" + address + ")";
        case DIAL_CALLS -> "dialCalls(" + address + ")";
        case FAILING_CALL -> "failingCall(" + pick + ")";
        case RELEASE -> "release(" + pick + ", " + via + ")";
        case RELEASE_AGAIN -> "releaseAgain(" + pick + ", " + via + ")";
        case START_CALL -> "startCall(" + pick + ")";
        case END_CALL -> "endCall(" + pick + ")";
        case EXPIRE -> "expire()";
        case CLOSE_ON_RELEASE -> "closeOnRelease(" + address + ")";
        case RETIRE_SILENT -> "retireSilent(" + address + ", " + pick + ")";
        case CLOSE -> "close()";
      };
    }
  }

  record Outcome(
      List<String> history,
      int failedStep,
      @Nullable Throwable failure,
      int extraChannels,
      int evictions,
      int retirements,
      int releasesUnderCalls,
      int failedStarts,
      int settled,
      int silentRetirements,
      int droppedConnections,
      int refusedRetirements) {}

  /** What {@link CachingConnector#connections()} reports of one channel. */
  record Row(
      long id,
      String address,
      int leases,
      int calls,
      int idlePasses,
      boolean closing,
      ConnectorListener.@Nullable CloseCause closeCause,
      @Nullable ConnectivityState state,
      Instant createdAt,
      Instant lastDialedAt) {

    static Row of(ConnectionInfo info) {
      return new Row(
          info.id(),
          info.address(),
          info.leases(),
          info.calls(),
          info.idlePasses(),
          info.closing(),
          info.closeCause(),
          info.state(),
          info.createdAt(),
          info.lastDialedAt());
    }
  }

  /** A lease taken by a step: the real one and the model channel it must be on. */
  static final class Lease {
    final int number;
    final LeasedChannel channel;
    final ModelChannel expected;
    boolean released;

    Lease(int number, LeasedChannel channel, ModelChannel expected) {
      this.number = number;
      this.channel = channel;
      this.expected = expected;
    }

    @Override
    public String toString() {
      return "L" + number + " (" + expected.address + " #" + expected.id + ")";
    }
  }

  /**
   * A call started by a step on a held lease: the fake under the connector's call, the model
   * channel it must hold, and the status code it must have been closed with (null while it must be
   * in flight).
   */
  static final class Call {
    final int number;
    final Lease lease;
    final ModelChannel expected;
    final FakeCall<?, ?> fake;
    Status.@Nullable Code closedWith;

    Call(int number, Lease lease, ModelChannel expected, FakeCall<?, ?> fake) {
      this.number = number;
      this.lease = lease;
      this.expected = expected;
      this.fake = fake;
    }

    boolean inFlight() {
      return closedWith == null;
    }

    @Override
    public String toString() {
      return "C"
          + number
          + " (on L"
          + lease.number
          + ", "
          + expected.address
          + " #"
          + expected.id
          + ")";
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The model

  /** One channel the dialer created, as the model sees it. */
  static final class ModelChannel {
    final int id;
    final String address;
    final Instant createdAt;
    Instant lastDialedAt;
    int leases;
    int calls;
    int idlePasses;
    boolean dialedSincePass = true;
    boolean detached;
    boolean closed;

    /** Leased since the clock hand last passed it (rule 10); not by the dial that created it. */
    boolean recent;

    /** Why it was detached, once detached. */
    ConnectorListener.@Nullable CloseCause detachCause;

    /** When it passes its maximum age with its jitter, in the clock's millis (rule 11). */
    long retireAtMillis = Long.MAX_VALUE;

    /** The calls in flight when it was shut down; -1 while open. */
    int callsAtShutdown = -1;

    /** How often it dropped its connection, found silent as a first channel with others. */
    int enterIdles;

    ModelChannel(int id, String address, Instant now) {
      this.id = id;
      this.address = address;
      this.createdAt = now;
      this.lastDialedAt = now;
    }

    Row row() {
      return new Row(
          id + 1L, // the connector numbers its channels from 1
          address,
          leases,
          calls,
          idlePasses,
          detached,
          detached ? detachCause : null,
          ConnectivityState.IDLE,
          createdAt,
          lastDialedAt);
    }

    @Override
    public String toString() {
      return "#"
          + id
          + " "
          + address
          + (closed ? " closed" : detached ? " detached" : "")
          + " leases="
          + leases
          + " calls="
          + calls
          + " idle="
          + idlePasses;
    }
  }

  /** The reference model: what the connector must look like after each step. */
  static final class Model {
    final List<ModelChannel> created = new ArrayList<>();
    final Limits limits;
    final int maxChannels;

    /** The clock hand's ring (rule 10): channels in creation order, closed ones until dropped. */
    final ArrayDeque<ModelChannel> ring = new ArrayDeque<>();

    /** Per address, its attached channels: the first, then the extra ones in creation order. */
    final Map<String, List<ModelChannel>> attached = new LinkedHashMap<>();

    final List<ModelChannel> detached = new ArrayList<>();
    final List<Call> calls = new ArrayList<>();
    final List<String> connects = new ArrayList<>();
    final List<String> misses = new ArrayList<>();

    /** Values onConnectionCountUpdate must deliver during the current step, in order. */
    final List<Integer> stepCountUpdates = new ArrayList<>();

    /** "address CAUSE" of the onClose calls the current step must make, in any order. */
    final List<String> stepCloses = new ArrayList<>();

    boolean closed;

    /** How many extra channels (rule 9) the sequence opened. */
    int extraChannels;

    /** The last count onConnectionCountUpdate delivered (0 before any). */
    int deliveredCount;

    /** How many channels the bound evicted (rule 10) and the maximum age retired (rule 11). */
    int evictions;

    int retirements;

    /**
     * Per address, its retirements for silence since the last expiry pass, a dropped connection
     * included: its budget used (issue 23).
     */
    final Map<String, Integer> silenceBudgetUsed = new LinkedHashMap<>();

    /**
     * Channels retired for silence, silent first channels that dropped their connection instead,
     * and retirements the budget refused.
     */
    int silentRetirements;

    int droppedConnections;
    int refusedRetirements;

    /** Leases released with calls of theirs in flight. */
    int releasesUnderCalls;

    /** Dials that leased a full channel: all the address's channels full, and no room for one. */
    int settled;

    Model(Limits limits) {
      this.limits = limits;
      this.maxChannels = limits.maxChannels();
    }

    List<ModelChannel> attachedChannels() {
      List<ModelChannel> channels = new ArrayList<>();
      attached.values().forEach(channels::addAll);
      return channels;
    }

    void beginStep() {
      stepCountUpdates.clear();
      stepCloses.clear();
    }

    int openCount() {
      int open = 0;
      for (ModelChannel channel : created) {
        if (!channel.closed) {
          open++;
        }
      }
      return open;
    }

    int leaseCount() {
      int leases = 0;
      for (ModelChannel channel : attachedChannels()) {
        leases += channel.leases;
      }
      for (ModelChannel channel : detached) {
        leases += channel.leases;
      }
      return leases;
    }

    int callCount() {
      int count = 0;
      for (ModelChannel channel : attachedChannels()) {
        count += channel.calls;
      }
      for (ModelChannel channel : detached) {
        count += channel.calls;
      }
      return count;
    }

    /**
     * The load of {@code channel} ("Load counted at the pick"): its leases held, plus its calls in
     * flight that no held lease covers. A held lease covers one of its calls; every call of a
     * released lease, and every further call of a held one, counts.
     */
    int load(ModelChannel channel) {
      Map<Lease, Integer> callsPerLease = new LinkedHashMap<>();
      for (Call call : calls) {
        if (call.expected == channel && call.inFlight()) {
          callsPerLease.merge(call.lease, 1, Integer::sum);
        }
      }
      int uncovered = 0;
      for (Map.Entry<Lease, Integer> perLease : callsPerLease.entrySet()) {
        uncovered += perLease.getKey().released ? perLease.getValue() : perLease.getValue() - 1;
      }
      return channel.leases + uncovered;
    }

    /** Calls in flight started on {@code lease}. */
    int callsOf(Lease lease) {
      int count = 0;
      for (Call call : calls) {
        if (call.lease == lease && call.inFlight()) {
          count++;
        }
      }
      return count;
    }

    /** Whether {@code lease} is released and every call started on it has ended. */
    boolean terminated(Lease lease) {
      if (!lease.released) {
        return false;
      }
      for (Call call : calls) {
        if (call.lease == lease && call.inFlight()) {
          return false;
        }
      }
      return true;
    }

    List<Row> rows() {
      List<Row> rows = new ArrayList<>();
      attachedChannels().forEach(channel -> rows.add(channel.row()));
      detached.forEach(channel -> rows.add(channel.row()));
      return rows;
    }

    /**
     * Rule 1: a lease on the attached channel, created on a miss. Only while open: a dial after
     * {@code close()} is refused before it counts as a connect.
     */
    ModelChannel dial(String address, Instant now) {
      connects.add(address);
      List<ModelChannel> channels = attached.computeIfAbsent(address, a -> new ArrayList<>());
      ModelChannel channel = null; // rule 9: the first with room, else the least load
      for (ModelChannel candidate : channels) {
        if (channel == null || (load(channel) >= MAX_CALLS && load(candidate) < load(channel))) {
          channel = candidate;
        }
      }
      boolean full = channel == null || (maxChannels > 1 && load(channel) >= MAX_CALLS);
      if (full && channel != null && channels.size() >= maxChannels) {
        settled++; // every channel of the address full, and no room for another one
      }
      if (full && channels.size() < maxChannels) {
        misses.add(address);
        makeRoom();
        channel = new ModelChannel(created.size(), address, now);
        created.add(channel);
        channels.add(channel);
        ring.addLast(channel);
        extraChannels += channels.size() > 1 ? 1 : 0;
        deliverCount(); // the evictions' and the new channel's, together: maybe no change at all
      } else {
        if (!channel.dialedSincePass) {
          channel.lastDialedAt = now; // the first dial between two passes is recorded
        }
        channel.recent = true;
      }
      channel.dialedSincePass = true;
      channel.idlePasses = 0;
      channel.leases++;
      return channel;
    }

    /**
     * Rule 10: before a channel is created while the open channels reach the bound, the clock hand
     * closes idle channels (see the class comment).
     */
    private void makeRoom() {
      if (limits.maximumChannels() == Limits.NONE) {
        return;
      }
      int inUse = 0;
      int secondChances = 0;
      int secondChanceLimit = ring.size() + ChannelBound.SCAN_LIMIT;
      ModelChannel firstInUse = null;
      boolean clearedSinceFirstInUse = false;
      while (openCount() >= limits.maximumChannels()
          && inUse < ChannelBound.SCAN_LIMIT
          && secondChances < secondChanceLimit
          && !ring.isEmpty()) {
        ModelChannel channel = ring.pollFirst();
        if (channel == firstInUse) {
          if (clearedSinceFirstInUse) {
            clearedSinceFirstInUse = false; // another lap: the channels passed over get their look
          } else {
            ring.addLast(channel); // a lap with nothing to close: to the tail, and the hand stops
            break;
          }
        }
        if (channel.closed) {
          continue;
        }
        if (channel.recent && !channel.detached) {
          channel.recent = false;
          secondChances++;
          clearedSinceFirstInUse = true;
          ring.addLast(channel);
        } else if (channel.leases == 0 && channel.calls == 0 && !isFirstOfSeveral(channel)) {
          if (channel.detached) {
            detached.remove(channel);
            closeUncounted(channel, requireNonNull(channel.detachCause));
          } else {
            List<ModelChannel> channels = requireNonNull(attached.get(channel.address));
            channels.remove(channel);
            if (channels.isEmpty()) {
              attached.remove(channel.address);
            }
            evictions++;
            closeUncounted(channel, ConnectorListener.CloseCause.EVICTED);
          }
        } else {
          ring.addLast(channel);
          inUse++;
          if (firstInUse == null) {
            firstInUse = channel;
            clearedSinceFirstInUse = false;
          }
        }
      }
    }

    /** Whether {@code channel} is the first attached channel of its address, which has others. */
    private boolean isFirstOfSeveral(ModelChannel channel) {
      List<ModelChannel> channels = attached.get(channel.address);
      return !channel.detached
          && channels != null
          && channels.size() > 1
          && channels.get(0) == channel;
    }

    /**
     * Rules 2 and 7: the first release of a lease gives it back, unless closed; later ones don't.
     */
    void release(Lease lease) {
      if (lease.released) {
        return;
      }
      lease.released = true;
      if (!closed) {
        lease.expected.leases--;
        if (callsOf(lease) > 0) {
          releasesUnderCalls++;
        }
      }
    }

    /**
     * Rule 8: a call started on a held lease holds the lease's channel until it ends. After {@code
     * close()} the channel is shut down, and the call closes at once with {@code UNAVAILABLE}.
     */
    void startCall(Call call) {
      calls.add(call);
      if (closed) {
        call.closedWith = Status.Code.UNAVAILABLE;
      } else {
        call.expected.calls++;
      }
    }

    /** Rule 8: the end of a call in flight gives its channel back. */
    void endCall(Call call) {
      if (!call.inFlight()) {
        return;
      }
      call.closedWith = Status.Code.OK;
      call.expected.calls--;
    }

    /**
     * Rules 3 and 8: a channel is idle only with no lease and no call in flight. Passes no longer
     * count for a detached channel: it keeps the idle count it had when it was detached until it
     * closes.
     */
    List<String> expire(long nowMillis) {
      List<String> expired = new ArrayList<>();
      if (closed) {
        return expired;
      }
      silenceBudgetUsed.clear(); // each address's budget for silence, afresh for the next interval
      for (Iterator<List<ModelChannel>> addresses = attached.values().iterator();
          addresses.hasNext(); ) {
        List<ModelChannel> channels = addresses.next();
        // The extra channels first, in creation order; the first channel stays, idle, while the
        // address has others.
        List<ModelChannel> order = new ArrayList<>(channels.subList(1, channels.size()));
        order.add(channels.get(0));
        for (ModelChannel channel : order) {
          if (channel.closed || channel.detached) {
            continue;
          }
          if (limits.maxAgeSeconds() != Limits.NONE && nowMillis >= channel.retireAtMillis) {
            retire(channel, channels, expired);
            continue;
          }
          channel.dialedSincePass = false;
          boolean idle = channel.leases == 0 && channel.calls == 0;
          channel.idlePasses = idle ? channel.idlePasses + 1 : 0;
          if (channel == channels.get(0) && channels.size() > 1) {
            channel.idlePasses = Math.min(channel.idlePasses, IDLE_PASSES_TO_CLOSE - 1);
          }
          if (channel.idlePasses >= IDLE_PASSES_TO_CLOSE) {
            channels.remove(channel);
            shut(channel, ConnectorListener.CloseCause.EXPIRED);
            expired.add(channel.address);
          }
        }
        if (channels.isEmpty()) {
          addresses.remove();
        }
      }
      for (Iterator<ModelChannel> it = detached.iterator(); it.hasNext(); ) {
        ModelChannel channel = it.next();
        if (channel.leases == 0 && channel.calls == 0) {
          it.remove();
          shut(channel, requireNonNull(channel.detachCause));
          expired.add(channel.address);
        }
      }
      ring.removeIf(channel -> channel.closed);
      return expired;
    }

    /**
     * Rule 11: detaches a channel past its age, with the other channels of its address if it is
     * their first, and closes those that are idle.
     */
    private void retire(ModelChannel channel, List<ModelChannel> channels, List<String> expired) {
      retirements++;
      List<ModelChannel> going =
          channels.get(0) == channel ? new ArrayList<>(channels) : List.of(channel);
      channels.removeAll(going);
      for (ModelChannel leaving : going) {
        leaving.detached = true;
        leaving.detachCause = ConnectorListener.CloseCause.MAX_AGE;
        if (leaving.leases == 0 && leaving.calls == 0) {
          shut(leaving, ConnectorListener.CloseCause.MAX_AGE);
          expired.add(leaving.address);
        } else {
          detached.add(leaving);
        }
      }
    }

    /**
     * Issue 23: a channel found silent. A channel detached or closed stays as it is. Else the
     * address's budget, {@code max(1, n / 2)} of its {@code n} attached channels since the last
     * pass, is used by one, if any is left; a first channel with extra channels then drops its
     * connection and stays, any other is detached ({@code UNHEALTHY}), and closed at once if idle.
     * Returns whether the channel was retired.
     */
    boolean retireSilent(ModelChannel channel) {
      if (closed || channel.closed || channel.detached) {
        return false;
      }
      List<ModelChannel> channels = requireNonNull(attached.get(channel.address));
      int used = silenceBudgetUsed.getOrDefault(channel.address, 0);
      if (used >= Math.max(1, channels.size() / 2)) {
        refusedRetirements++;
        return false;
      }
      silenceBudgetUsed.put(channel.address, used + 1);
      if (channel == channels.get(0) && channels.size() > 1) {
        channel.enterIdles++;
        droppedConnections++;
        return false;
      }
      silentRetirements++;
      channels.remove(channel);
      if (channels.isEmpty()) {
        attached.remove(channel.address);
      }
      channel.detached = true;
      channel.detachCause = ConnectorListener.CloseCause.UNHEALTHY;
      if (channel.leases == 0 && channel.calls == 0) {
        shut(channel, ConnectorListener.CloseCause.UNHEALTHY);
      } else {
        detached.add(channel);
      }
      return true;
    }

    /** Rule 4. */
    boolean closeOnRelease(String address) {
      if (closed) {
        return false;
      }
      List<ModelChannel> channels = attached.remove(address);
      if (channels == null) {
        return false;
      }
      for (ModelChannel channel : channels) { // every channel of the address
        channel.detached = true;
        channel.detachCause = ConnectorListener.CloseCause.RELEASED;
        detached.add(channel);
      }
      return true;
    }

    /**
     * Rules 7 and 8: only {@code close()} forces channels with calls; with no grace period it
     * cancels them at once.
     */
    void close() {
      if (closed) {
        return;
      }
      closed = true;
      attachedChannels().forEach(channel -> shut(channel, ConnectorListener.CloseCause.SHUTDOWN));
      detached.forEach(channel -> shut(channel, ConnectorListener.CloseCause.SHUTDOWN));
      attached.clear();
      detached.clear();
      for (Call call : calls) {
        if (call.inFlight()) {
          call.closedWith = Status.Code.UNAVAILABLE;
          call.expected.calls--;
        }
      }
    }

    private void shut(ModelChannel channel, ConnectorListener.CloseCause cause) {
      closeUncounted(channel, cause);
      deliverCount(); // rule 5: every change, down as well as up
    }

    /** Closes {@code channel}, reported without its count: an eviction, delivered with the dial. */
    private void closeUncounted(ModelChannel channel, ConnectorListener.CloseCause cause) {
      channel.closed = true;
      channel.callsAtShutdown = channel.calls;
      stepCloses.add(channel.address + " " + cause);
    }

    /** Rule 5: delivers the count if it differs from the last one delivered. */
    private void deliverCount() {
      int count = openCount();
      if (count != deliveredCount) {
        stepCountUpdates.add(count);
        deliveredCount = count;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The harness: a real connector and the model, stepped together and compared

  static final class Harness implements AutoCloseable {
    final FakeClock clock = new FakeClock();
    final TrackingDialer dialer = TrackingDialer.fake();
    final List<String> connects = new ArrayList<>();
    final List<String> misses = new ArrayList<>();
    final List<Integer> countUpdates = new ArrayList<>();
    final List<String> closes = new ArrayList<>();
    final CachingConnector connector;
    final Model model;
    final List<Lease> leases = new ArrayList<>();
    final List<String> history = new ArrayList<>();
    private final Instant start = clock.instant();
    List<String> lastExpired = List.of();
    boolean lastCloseOnRelease;
    boolean lastRetireSilent;

    /** The connector's entry of each channel, by the model's channel id: set by its first lease. */
    final Map<Integer, Entry> entries = new LinkedHashMap<>();

    /** Calls that failed at their start (their fake threw). */
    int failedStarts;

    /**
     * Per address, the channels retirements for silence took out of its attached ones since the
     * last {@code expire()}, as the connector showed them: checked against the budget apart from
     * the model.
     */
    final Map<String, Integer> retiredSinceLastPass = new LinkedHashMap<>();

    Harness() {
      this(new Limits(MAX_CHANNELS, Limits.NONE, Limits.NONE));
    }

    Harness(Limits limits) {
      model = new Model(limits);
      CachingConnector.Builder builder = CachingConnector.builder();
      if (limits.maximumChannels() != Limits.NONE) {
        builder.maximumChannels(limits.maximumChannels());
      }
      if (limits.maxAgeSeconds() != Limits.NONE) {
        builder.maxChannelAge(Duration.ofSeconds(limits.maxAgeSeconds()));
      }
      connector =
          builder
              .maxCallsPerChannel(MAX_CALLS)
              .maxChannelsPerAddress(limits.maxChannels())
              .dialer(dialer)
              .dialExecutor(Runnable::run)
              .scheduler(clock.scheduler())
              .clock(clock)
              .shutdownGracePeriod(Duration.ZERO)
              .onConnect(connects::add)
              .onCacheMiss(misses::add)
              .onConnectionCountUpdate(countUpdates::add)
              .listener(
                  new ConnectorListener() {
                    @Override
                    public void onClose(String address, CloseCause cause) {
                      closes.add(address + " " + cause);
                    }
                  })
              .build();
    }

    Outcome outcome(int failedStep, @Nullable Throwable failure) {
      return new Outcome(
          List.copyOf(history),
          failedStep,
          failure,
          model.extraChannels,
          model.evictions,
          model.retirements,
          model.releasesUnderCalls,
          failedStarts,
          model.settled,
          model.silentRetirements,
          model.droppedConnections,
          model.refusedRetirements);
    }

    /** Applies {@code op} to the connector and the model, then compares them. */
    void step(Op op) {
      clock.forward(TICK);
      model.beginStep();
      int updatesBefore = countUpdates.size();
      int closesBefore = closes.size();
      int index = history.size();
      String prefix =
          String.format(
              "%2d t=%-4s ", index, Duration.between(start, clock.instant()).toSeconds() + "s");
      history.add(prefix + op + " ...");
      String result =
          switch (op.kind()) {
            case DIAL -> dial(ADDRESSES.get(op.address()));
            case DIAL_AND_RELEASE -> dialAndRelease(op);
            case DIAL_FAILING_CALL -> dialFailingCall(op);
            case DIAL_CALLS -> dialCalls(op);
            case FAILING_CALL -> failingCall(op);
            case RELEASE -> release(op);
            case RELEASE_AGAIN -> releaseAgain(op);
            case START_CALL -> startCall(op);
            case END_CALL -> endCall(op);
            case EXPIRE -> expire();
            case CLOSE_ON_RELEASE -> closeOnRelease(ADDRESSES.get(op.address()));
            case RETIRE_SILENT -> retireSilent(op);
            case CLOSE -> closeConnector();
          };
      history.set(index, prefix + result);
      check(updatesBefore, closesBefore);
    }

    private String dial(String address) {
      if (model.closed) {
        assertThatThrownBy(() -> connector.dial(address))
            .as("dial after close()")
            .isInstanceOf(IllegalStateException.class);
        return "dial(" + address + ") -> IllegalStateException, as the connector is closed";
      }
      int missesBefore = model.misses.size();
      Map<Entry, Long> loadsBefore = attachedLoads(address);
      ModelChannel expected = model.dial(address, clock.instant());
      boolean miss = model.misses.size() > missesBefore;
      LeasedChannel channel = connector.dial(address);
      Lease lease = new Lease(leases.size(), channel, expected);
      leases.add(lease);
      Entry known = entries.putIfAbsent(expected.id, channel.entry);
      assertThat(known == null ? channel.entry : known)
          .as("the entry of channel #%d", expected.id)
          .isSameAs(channel.entry);
      checkPick(address, loadsBefore, channel.entry);
      assertThat(channel.address()).as("address of the lease").isEqualTo(address);
      assertThat(channel.isShutdown()).as("a fresh lease is released").isFalse();
      assertThat(channel.getState(false))
          .as("state of the channel a dial handed out")
          .isNotEqualTo(ConnectivityState.SHUTDOWN);
      assertThat(dialer.created)
          .as("channels created by the dialer")
          .hasSizeGreaterThan(expected.id);
      assertThat(channel.entry.channel())
          .as("the channel %s is on", lease)
          .isSameAs(dialer.created.get(expected.id));
      int maxAge = model.limits.maxAgeSeconds();
      if (miss && maxAge != Limits.NONE) {
        long created = expected.createdAt.toEpochMilli();
        expected.retireAtMillis = connector.retireAt(channel.entry);
        assertThat(expected.retireAtMillis)
            .as("when %s passes its age", lease)
            .isBetween(created + maxAge * 900L, created + maxAge * 1_100L);
      }
      return "dial(" + address + ") -> " + lease + (miss ? ", a miss" : "");
    }

    /** The load of each attached channel of {@code address}, read from the connector. */
    private Map<Entry, Long> attachedLoads(String address) {
      Map<Entry, Long> loads = new LinkedHashMap<>();
      for (ModelChannel channel : model.attached.getOrDefault(address, List.of())) {
        Entry entry = requireNonNull(entries.get(channel.id), "entry of an attached channel");
        loads.put(entry, entry.load());
      }
      return loads;
    }

    /**
     * With several channels an address, a dial never leases a full channel (its load at its limit
     * before the dial) while another channel of the address has room or the address may open one
     * more; it opens one only when all are full. Checked on the connector's own loads, apart from
     * the model's choice.
     */
    private void checkPick(String address, Map<Entry, Long> loadsBefore, Entry picked) {
      if (model.limits.maxChannels() == 1) {
        return;
      }
      Long before = loadsBefore.get(picked);
      boolean allFull = loadsBefore.values().stream().allMatch(load -> load >= MAX_CALLS);
      if (before == null) {
        assertThat(allFull)
            .as("a new channel for %s opened while all were full: %s", address, loadsBefore)
            .isTrue();
      } else if (before >= MAX_CALLS) {
        assertThat(allFull && loadsBefore.size() == model.limits.maxChannels())
            .as(
                "the full channel %s of %s leased only when every channel is full and no other"
                    + " may open: loads before the dial %s",
                picked.id, address, loadsBefore)
            .isTrue();
      }
    }

    private String dialAndRelease(Op op) {
      String dialed = dial(ADDRESSES.get(op.address()));
      if (model.closed) {
        return dialed;
      }
      checkLoads();
      Lease lease = leases.get(leases.size() - 1);
      String how = giveBack(lease, op.via());
      model.release(lease);
      return dialed + ", released at once by " + how;
    }

    private String dialFailingCall(Op op) {
      String dialed = dial(ADDRESSES.get(op.address()));
      if (model.closed) {
        return dialed;
      }
      checkLoads();
      return dialed + ", " + failingCallOn(leases.get(leases.size() - 1));
    }

    private String dialCalls(Op op) {
      String dialed = dial(ADDRESSES.get(op.address()));
      if (model.closed) {
        return dialed;
      }
      Lease lease = leases.get(leases.size() - 1);
      StringBuilder result = new StringBuilder(dialed);
      for (int i = 0; i < 2; i++) {
        checkLoads();
        result.append(", ").append(startCallOn(lease));
      }
      return result.toString();
    }

    private String failingCall(Op op) {
      List<Lease> held = leases.stream().filter(lease -> !lease.released).toList();
      if (held.isEmpty()) {
        return "start a failing call: no lease held, skipped";
      }
      return failingCallOn(held.get(op.pick() % held.size()));
    }

    /**
     * Starts a call on {@code lease} whose start throws: the caller gets the exception, and the
     * call counts nowhere (its lease, its channel's calls and load are as before). After {@code
     * close()} the connector refuses the call before its start, as any other.
     */
    private String failingCallOn(Lease lease) {
      if (model.closed) {
        Status status = FakeCall.startFailingOn(lease.channel);
        assertThat(status.getCode()).as("a call after close()").isEqualTo(Status.Code.UNAVAILABLE);
        return "a failing call on " + lease + " refused, as the connector is closed";
      }
      assertThatThrownBy(() -> FakeCall.startFailingOn(lease.channel))
          .as("a call whose start throws, on %s", lease)
          .isInstanceOf(FakeCall.StartRefused.class);
      failedStarts++;
      return "a call on " + lease + " failed at its start";
    }

    private String release(Op op) {
      List<Lease> held = leases.stream().filter(lease -> !lease.released).toList();
      if (held.isEmpty()) {
        return "release: no lease held, skipped";
      }
      Lease lease = held.get(op.pick() % held.size());
      String how = giveBack(lease, op.via());
      model.release(lease);
      return "release " + lease + " by " + how;
    }

    private String releaseAgain(Op op) {
      List<Lease> released = leases.stream().filter(lease -> lease.released).toList();
      if (released.isEmpty()) {
        return "release again: no lease released yet, skipped";
      }
      Lease lease = released.get(op.pick() % released.size());
      String how = giveBack(lease, op.via());
      model.release(lease); // a no-op in the model
      return "release " + lease + " again by " + how + " (must be a no-op)";
    }

    private String startCall(Op op) {
      List<Lease> held = leases.stream().filter(lease -> !lease.released).toList();
      if (held.isEmpty()) {
        return "start a call: no lease held, skipped";
      }
      return startCallOn(held.get(op.pick() % held.size()));
    }

    private String startCallOn(Lease lease) {
      FakeCall<?, ?> fake = FakeCall.startOn(lease.channel);
      Call call = new Call(model.calls.size(), lease, lease.expected, fake);
      model.startCall(call);
      assertThat(fake.channel)
          .as("the channel %s is on", call)
          .isSameAs(dialer.created.get(call.expected.id));
      return "start " + call + (call.inFlight() ? "" : ", closed at once: " + fake.status());
    }

    private String endCall(Op op) {
      List<Call> inFlight = model.calls.stream().filter(Call::inFlight).toList();
      if (inFlight.isEmpty()) {
        return "end a call: no call in flight, skipped";
      }
      Call call = inFlight.get(op.pick() % inFlight.size());
      boolean ended = call.fake.end();
      model.endCall(call);
      assertThat(ended).as("%s was in flight until its end", call).isTrue();
      return "end " + call;
    }

    private String giveBack(Lease lease, Via via) {
      switch (via) {
        case CLOSE -> lease.channel.close();
        case RELEASE -> connector.release(lease.expected.address, lease.channel);
        case SHUTDOWN -> lease.channel.shutdown();
      }
      return switch (via) {
        case CLOSE -> "lease.close()";
        case RELEASE -> "connector.release(address, lease)";
        case SHUTDOWN -> "lease.shutdown()";
      };
    }

    private String expire() {
      List<String> expected = model.expire(clock.millis());
      List<String> actual = connector.expire();
      lastExpired = actual;
      retiredSinceLastPass.clear();
      assertThat(actual)
          .as("addresses returned by expire()")
          .containsExactlyInAnyOrderElementsOf(expected);
      return "expire() -> " + actual;
    }

    private String closeOnRelease(String address) {
      boolean expected = model.closeOnRelease(address);
      boolean actual = connector.closeOnRelease(address);
      lastCloseOnRelease = actual;
      assertThat(actual).as("closeOnRelease(%s)", address).isEqualTo(expected);
      return "closeOnRelease(" + address + ") -> " + actual;
    }

    /**
     * Asks the connector to retire a channel found silent, and checks on the connector alone,
     * before the model's prediction: the channels of the address that this took out of its attached
     * ones, with those taken out since the last pass, are at most {@code max(1, n / 2)} of the
     * {@code n} it had before; each is reported {@code UNHEALTHY}, by {@code connections()} if it
     * is still open, else by {@code onClose} in this step; and a channel under a lease or a call is
     * not shut down.
     */
    private String retireSilent(Op op) {
      String address = ADDRESSES.get(op.address());
      List<ModelChannel> open = new ArrayList<>();
      List<ModelChannel> gone = new ArrayList<>();
      for (ModelChannel channel : model.created) {
        if (channel.address.equals(address)) {
          (channel.closed ? gone : open).add(channel);
        }
      }
      List<ModelChannel> candidates =
          switch (op.pick() % 8) {
            case 6 -> open;
            case 7 -> gone;
            default -> model.attached.getOrDefault(address, List.of());
          };
      if (candidates.isEmpty()) {
        candidates = open.isEmpty() ? gone : open;
      }
      if (candidates.isEmpty()) {
        return "retireSilent: no channel of " + address + " yet, skipped";
      }
      ModelChannel target = candidates.get(op.pick() / 8 % candidates.size());
      String was = target.toString();
      Entry entry = requireNonNull(entries.get(target.id), "entry of a channel");
      TrackedChannel channel = dialer.created.get(target.id);
      Set<Long> attachedBefore = attachedIds(address);
      long leasesBefore = entry.leases();
      long callsBefore = entry.calls();
      int closesBefore = closes.size();
      boolean expected = model.retireSilent(target);
      boolean actual = connector.retireSilent(entry);

      Set<Long> retired = new HashSet<>(attachedBefore);
      retired.removeAll(attachedIds(address));
      int n = attachedBefore.size();
      if (!retired.isEmpty()) {
        int sinceLastPass = retiredSinceLastPass.merge(address, retired.size(), Integer::sum);
        assertThat(sinceLastPass)
            .as(
                "channels of %s retired for silence since the last expire(), now %s of the %d it"
                    + " had",
                address, retired, n)
            .isLessThanOrEqualTo(Math.max(1, n / 2));
      }
      Map<Long, ConnectionInfo> after = new LinkedHashMap<>();
      connector.connections().forEach(info -> after.put(info.id(), info));
      int closedAtOnce = 0;
      for (long id : retired) {
        ConnectionInfo info = after.get(id);
        if (info == null) {
          closedAtOnce++;
        } else {
          assertThat(info.closeCause())
              .as("closeCause of channel %d, retired for silence", id)
              .isEqualTo(ConnectorListener.CloseCause.UNHEALTHY);
        }
      }
      assertThat(closes.subList(closesBefore, closes.size()))
          .as("onClose calls of a retirement for silence")
          .isEqualTo(
              Collections.nCopies(
                  closedAtOnce, address + " " + ConnectorListener.CloseCause.UNHEALTHY));
      if (leasesBefore + callsBefore > 0) {
        assertThat(channel.shutdowns)
            .as(
                "shutdown() calls on %s, retired for silence under %d leases and %d calls",
                target, leasesBefore, callsBefore)
            .hasValue(0);
      }
      lastRetireSilent = actual;
      assertThat(actual).as("retireSilent(%s)", target).isEqualTo(expected);
      return "retireSilent("
          + was
          + ") -> "
          + actual
          + (retired.isEmpty() ? "" : ", retired " + retired)
          + (closedAtOnce > 0 ? ", closed at once" : "");
    }

    /** The ids of the channels of {@code address} that the connector lists as attached. */
    private Set<Long> attachedIds(String address) {
      Set<Long> ids = new HashSet<>();
      for (ConnectionInfo info : connector.connections()) {
        if (info.address().equals(address) && !info.closing()) {
          ids.add(info.id());
        }
      }
      return ids;
    }

    private String closeConnector() {
      model.close();
      connector.close();
      return "close()";
    }

    /**
     * The load of every open channel, as the connector counts it ({@link Entry#load()}), is the
     * model's: its leases held plus its calls no held lease covers.
     */
    void checkLoads() {
      if (model.closed) {
        return;
      }
      for (ModelChannel channel : model.created) {
        if (!channel.closed) {
          Entry entry = requireNonNull(entries.get(channel.id), "entry of an open channel");
          assertThat(entry.load())
              .as("load of channel %s (leases + uncovered calls)", channel)
              .isEqualTo(model.load(channel));
        }
      }
    }

    /** Compares everything observable of the connector with the model. */
    private void check(int updatesBefore, int closesBefore) {
      checkLoads();
      assertThat(connector.connections().stream().map(Row::of).toList())
          .as("connections(), expected from the model %s %s", model.attached, model.detached)
          .containsExactlyInAnyOrderElementsOf(model.rows());
      assertThat(connector.connectionCount()).as("connectionCount()").isEqualTo(model.openCount());
      assertThat(connector.leaseCount()).as("leaseCount()").isEqualTo(model.leaseCount());
      assertThat(connector.callCount()).as("callCount()").isEqualTo(model.callCount());

      assertThat(dialer.dials).as("dialer calls").hasValue(model.created.size());
      assertThat(dialer.created).as("channels created by the dialer").hasSize(model.created.size());
      for (int i = 0; i < model.created.size(); i++) {
        TrackedChannel channel = dialer.created.get(i);
        ModelChannel expected = model.created.get(i);
        assertThat(channel.address).as("address of channel #%d", i).isEqualTo(expected.address);
        assertThat(channel.shutdowns)
            .as("shutdown() calls on channel %s", expected)
            .hasValue(expected.closed ? 1 : 0);
        assertThat(channel.callsAtShutdown)
            .as("calls in flight when channel %s was shut down (-1: open)", expected)
            .hasValue(expected.callsAtShutdown);
        assertThat(channel.callsInFlight)
            .as("fake calls in flight on channel %s", expected)
            .hasSize(expected.calls);
        assertThat(channel.enterIdles)
            .as("enterIdle() calls on channel %s", expected)
            .hasValue(expected.enterIdles);
        if (expected.closed) {
          assertThat(channel.shutdownNows.get())
              .as("shutdownNow() calls on channel %s, with a zero grace period", expected)
              .isPositive();
        } else {
          assertThat(channel.shutdownNows)
              .as("shutdownNow() calls on channel %s", expected)
              .hasValue(0);
        }
      }

      assertThat(connects).as("onConnect calls").isEqualTo(model.connects);
      assertThat(misses).as("onCacheMiss calls").isEqualTo(model.misses);
      assertThat(countUpdates.subList(updatesBefore, countUpdates.size()))
          .as("onConnectionCountUpdate values in this step")
          .isEqualTo(model.stepCountUpdates);
      if (!countUpdates.isEmpty()) {
        assertThat(countUpdates.get(countUpdates.size() - 1))
            .as("last onConnectionCountUpdate value")
            .isEqualTo(model.openCount());
      }
      assertThat(closes.subList(closesBefore, closes.size()))
          .as("onClose calls in this step")
          .containsExactlyInAnyOrderElementsOf(model.stepCloses);

      for (Call call : model.calls) {
        Status status = call.fake.status();
        assertThat(status == null ? null : status.getCode())
            .as("status %s was closed with (null: in flight)", call)
            .isEqualTo(call.closedWith);
      }

      for (Lease lease : leases) {
        assertThat(lease.channel.isShutdown())
            .as("%s is released", lease)
            .isEqualTo(lease.released);
        assertThat(lease.channel.isTerminated())
            .as("%s is released and its calls ended", lease)
            .isEqualTo(model.terminated(lease));
        if (!lease.released && !model.closed) {
          assertThat(lease.channel.getState(false))
              .as("state of the channel under the held %s", lease)
              .isNotEqualTo(ConnectivityState.SHUTDOWN);
        }
      }
    }

    @Override
    public void close() {
      try {
        connector.close();
      } catch (RuntimeException e) {
        // The run already failed or is over; a failing close() must not hide its outcome.
      }
    }
  }
}
