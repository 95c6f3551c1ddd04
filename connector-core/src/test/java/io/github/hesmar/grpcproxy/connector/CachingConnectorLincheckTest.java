package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;
import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.List;
import org.jetbrains.kotlinx.lincheck.Actor;
import org.jetbrains.kotlinx.lincheck.execution.ExecutionScenario;
import org.jetbrains.lincheck.datastructures.IntGen;
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.jetbrains.lincheck.datastructures.StressOptions;
import org.jetbrains.lincheck.datastructures.ThreadIdGen;
import org.jetbrains.lincheck.datastructures.Validate;
import org.junit.jupiter.api.Test;

/**
 * Checks with Lincheck that {@link CachingConnector}'s operations are linearizable: whatever
 * concurrent {@code dial}, {@code release}, {@code expire}, {@code closeOnRelease} and {@code
 * connectionCount} calls on two addresses, and starts and ends of calls on leases, return, some
 * sequential order of the same calls that respects their real-time order returns too. Lincheck runs
 * the operations of {@link ConnectorUnderTest} from two threads, under its model checker (which
 * explores thread switches at every shared-memory access) and under stress (real threads), and
 * compares the results with every sequential order.
 *
 * <p>The connector dials fake channels inline ({@code dialExecutor(Runnable::run)}), so the only
 * threads are Lincheck's, and its expiry scheduler and clock are a {@link FakeClock}. A dial
 * returns the address and per-address generation of the channel it leased ({@code a#0} for the
 * first channel dialed for {@code a}), so a lease on a replaced or closed channel shows up as a
 * different result. Each Lincheck thread holds its own leases and calls, so which lease a release
 * gives back, which lease a call starts on and which call ends depend only on that thread's
 * history. Calls are {@link FakeCall}s under the connector's counting, ended by the test; a call
 * may outlive the lease it started on, and holds its channel open until it ends (rule 8). One lease
 * (with the call it covers) or one call of a released lease fills a channel, and an address may
 * have two ({@code maxCallsPerChannel(1)}, {@code maxChannelsPerAddress(2)}), so a dial of an
 * address whose channel is leased or carries a call opens a second one (rule 9, the load counted at
 * the pick), and expiry, closeOnRelease and close race with that second dial too.
 *
 * <p>{@link CachingConnector#leaseCount()} and {@link CachingConnector#callCount()} are not
 * operations: they sum the leases or calls of every entry one after the other, gauges that are
 * exact only when nothing runs (Lincheck shows {@code leaseCount()} returning 2 while one lease is
 * held, for example while {@code closeOnRelease} moves that lease's entry between its two
 * collections). They are checked, with the other counts and with "no channel with a call in flight
 * is shut down", when no operation runs, by {@link
 * ConnectorUnderTest#quiescentStateIsConsistent()}.
 */
final class CachingConnectorLincheckTest {

  @Test
  void randomScenariosAreLinearizableUnderModelChecking() {
    new ModelCheckingOptions()
        .iterations(6)
        .invocationsPerIteration(150)
        .threads(2)
        .actorsPerThread(3)
        .actorsBefore(2)
        .actorsAfter(1)
        .check(ConnectorUnderTest.class);
  }

  @Test
  void randomScenariosAreLinearizableUnderStress() {
    new StressOptions()
        .iterations(10)
        .invocationsPerIteration(1_000)
        .threads(2)
        .actorsPerThread(3)
        .actorsBefore(2)
        .actorsAfter(1)
        .check(ConnectorUnderTest.class);
  }

  /**
   * The race Lincheck found: closeOnRelease detached the channel of a dial in flight after its dial
   * completed but before its caller took a lease, so that caller dialed a second channel ({@code
   * b#1} while closeOnRelease returned true), a result no sequential order gives.
   */
  @Test
  void firstDialRacingCloseOnReleaseAndExpireIsLinearizable() {
    new ModelCheckingOptions()
        .iterations(0)
        .invocationsPerIteration(300)
        .addCustomScenario(
            scenario(
                List.of(),
                List.of(op("dialAndHold", 1, 1)),
                List.of(op("closeOnRelease", 1), op("expire"))))
        .check(ConnectorUnderTest.class);
  }

  /**
   * A call that outlives its lease, racing {@code closeOnRelease} and an expiry pass: whatever the
   * interleaving, the detached channel stays open until the call ends. (A pass that ignores the
   * calls of a detached channel fails here within the first ten interleavings.)
   */
  @Test
  void aCallOutlivingItsLeaseRacingCloseOnReleaseAndExpireIsLinearizable() {
    new ModelCheckingOptions()
        .iterations(0)
        .invocationsPerIteration(40)
        .addCustomScenario(
            scenario(
                List.of(),
                List.of(
                    op("dialAndHold", 1, 0), op("startCallAndHold", 1), op("releaseOneHeld", 1, 0)),
                List.of(op("closeOnRelease", 0), op("expire"))))
        .check(ConnectorUnderTest.class);
  }

  /**
   * A second channel of an address (its first carries a call) dialed while the address is detached
   * and expired: the new channel is detached with it or dialed under a fresh first channel, never
   * left where neither expiry nor close() finds it.
   */
  @Test
  void aSecondChannelRacingCloseOnReleaseAndExpireIsLinearizable() {
    new ModelCheckingOptions()
        .iterations(0)
        .invocationsPerIteration(300)
        .addCustomScenario(
            scenario(
                List.of(op("dialAndHold", 0, 0), op("startCallAndHold", 0)),
                List.of(op("dialAndHold", 1, 0), op("releaseOneHeld", 1, 0)),
                List.of(op("closeOnRelease", 0), op("endOneHeldCall", 0), op("expire"))))
        .check(ConnectorUnderTest.class);
  }

  /** Two dials racing for the second channel of an address: one dial, and both get a lease. */
  @Test
  void twoDialsRacingForASecondChannelAreLinearizable() {
    new ModelCheckingOptions()
        .iterations(0)
        .invocationsPerIteration(300)
        .addCustomScenario(
            scenario(
                List.of(op("dialAndHold", 0, 1), op("startCallAndHold", 0)),
                List.of(op("dialAndHold", 1, 1), op("expire")),
                List.of(op("dialAndHold", 2, 1), op("releaseOneHeld", 2, 1))))
        .check(ConnectorUnderTest.class);
  }

  /**
   * An eviction racing a lease of the channel it evicts: the dial of b's second channel (b's first
   * carries a call) finds the bound of 2 reached and evicts idle a#0, while the other thread dials
   * a: it leases a#0 before the eviction (which then passes it over, and the bound is exceeded) or
   * gets a new channel after it; never a lease on a closed channel.
   */
  @Test
  void anEvictionRacingALeaseOfItsChannelIsLinearizable() {
    new ModelCheckingOptions()
        .iterations(0)
        .invocationsPerIteration(200)
        .addCustomScenario(
            scenario(
                List.of(
                    op("dialAndHold", 0, 0),
                    op("releaseOneHeld", 0, 0),
                    op("dialAndHold", 0, 1),
                    op("startCallAndHold", 0)),
                List.of(op("dialAndHold", 1, 1), op("connectionCount")),
                List.of(op("dialAndHold", 2, 0), op("expire"))))
        .check(BoundedConnectorUnderTest.class);
  }

  /**
   * The first two dials of an address ("Load counted at the pick"): the one that dials holds the
   * lease its dial reserved, which fills the channel, so the other opens a second channel; never do
   * both lease {@code a#0}, whether the second meets the first's dial in flight or just published.
   */
  @Test
  void twoFirstDialsOfAnAddressNeverShareItsOnlyRoom() {
    new ModelCheckingOptions()
        .iterations(0)
        .invocationsPerIteration(150)
        .addCustomScenario(
            scenario(List.of(), List.of(op("dialAndHold", 1, 0)), List.of(op("dialAndHold", 2, 0))))
        .check(ConnectorUnderTest.class);
  }

  /**
   * Two dials racing for the last room on a channel full at two leases, one of them held: one
   * leases it, the other opens a second channel; never do both lease it.
   */
  @Test
  void twoDialsRacingForTheLastRoomOfAChannelNeverBothGetIt() {
    new ModelCheckingOptions()
        .iterations(0)
        .invocationsPerIteration(120)
        .addCustomScenario(
            scenario(
                List.of(op("dialAndHold", 0, 0)),
                List.of(op("dialAndHold", 1, 0)),
                List.of(op("dialAndHold", 2, 0))))
        .check(TwoCallsConnectorUnderTest.class);
  }

  /**
   * A lease released with its call in flight, racing a dial: the call, no longer covered by the
   * lease, counts in the load before the lease stops counting, so the channel stays full and the
   * dial opens a second channel whatever the interleaving.
   */
  @Test
  void aLeaseReleasedUnderItsCallKeepsItsChannelFullForARacingDial() {
    new ModelCheckingOptions()
        .iterations(0)
        .invocationsPerIteration(60)
        .addCustomScenario(
            scenario(
                List.of(op("dialAndHold", 0, 0), op("startCallAndHold", 0)),
                List.of(op("releaseOneHeld", 0, 0)),
                List.of(op("dialAndHold", 2, 0))))
        .check(ConnectorUnderTest.class);
  }

  @Test
  void randomScenariosOnABoundedConnectorAreLinearizableUnderModelChecking() {
    new ModelCheckingOptions()
        .iterations(3)
        .invocationsPerIteration(150)
        .threads(2)
        .actorsPerThread(3)
        .actorsBefore(2)
        .actorsAfter(1)
        .check(BoundedConnectorUnderTest.class);
  }

  @Test
  void sequentialHistoryGivesTheResultsOfTheContract() {
    ConnectorUnderTest test = new ConnectorUnderTest();

    assertThat(test.dialAndHold(1, 0)).isEqualTo("a#0");
    assertThat(test.dialAndHold(2, 0)).isEqualTo("a#1"); // a#0 is full: its lease is its load
    assertThat(test.closeOnRelease(0)).isTrue(); // a#0 and a#1
    assertThat(test.dialAndHold(2, 0)).isEqualTo("a#2");
    assertThat(test.connectionCount()).isEqualTo(3);
    assertThat(test.releaseOneHeld(1, 0)).isTrue();
    assertThat(test.releaseOneHeld(1, 0)).isFalse();
    assertThat(test.expire()).containsExactly("a"); // a#0; a#1 still leased by thread 2
    test.quiescentStateIsConsistent();

    assertThat(test.releaseOneHeld(2, 0)).isTrue(); // a#2
    assertThat(test.releaseOneHeld(2, 0)).isTrue(); // a#1
    assertThat(test.expire()).containsExactly("a"); // a#1, detached; a#2 idle pass 1
    assertThat(test.expire()).containsExactly("a"); // a#2, idle pass 2
    assertThat(test.connectionCount()).isZero();
    assertThat(test.dialAndHold(1, 1)).isEqualTo("b#0");
    test.quiescentStateIsConsistent();

    assertThat(test.startCallAndHold(2)).isEqualTo("none");
    assertThat(test.startCallAndHold(1)).isEqualTo("b#0"); // on the lease thread 1 holds
    assertThat(test.closeOnRelease(1)).isTrue();
    assertThat(test.releaseOneHeld(1, 1)).isTrue();
    assertThat(test.expire()).isEmpty(); // b#0: no lease, but a call in flight
    assertThat(test.connectionCount()).isEqualTo(1);
    test.quiescentStateIsConsistent();
    assertThat(test.endOneHeldCall(2)).isEqualTo("none");
    assertThat(test.endOneHeldCall(1)).isEqualTo("ended");
    assertThat(test.expire()).containsExactly("b");
    assertThat(test.connectionCount()).isZero();
    test.quiescentStateIsConsistent();

    assertThat(test.dialAndHold(1, 1)).isEqualTo("b#1");
    assertThat(test.startCallAndHold(1)).isEqualTo("b#1"); // covered by the lease: b#1 full
    assertThat(test.dialAndHold(2, 1)).isEqualTo("b#2"); // a second channel for b
    assertThat(test.startCallAndHold(2)).isEqualTo("b#2");
    assertThat(test.dialAndHold(2, 1)).isEqualTo("b#1"); // both full, two at most: the first
    assertThat(test.connectionCount()).isEqualTo(2);
    assertThat(test.releaseOneHeld(1, 1)).isTrue();
    assertThat(test.releaseOneHeld(2, 1)).isTrue();
    assertThat(test.releaseOneHeld(2, 1)).isTrue();
    assertThat(test.endOneHeldCall(2)).isEqualTo("ended"); // b#2 is idle, b#1 has a call
    assertThat(test.expire()).isEmpty();
    assertThat(test.expire()).containsExactly("b"); // b#2
    assertThat(test.connectionCount()).isEqualTo(1);
    test.quiescentStateIsConsistent();
  }

  private static ExecutionScenario scenario(
      List<Actor> init, List<Actor> thread1, List<Actor> thread2) {
    return new ExecutionScenario(init, List.of(thread1, thread2), List.of(), null);
  }

  /** An operation of {@link ConnectorUnderTest} with its arguments, thread ids included. */
  private static Actor op(String name, Object... arguments) {
    for (Method method : ConnectorUnderTest.class.getMethods()) {
      if (method.getName().equals(name)) {
        return new Actor(method, Arrays.asList(arguments));
      }
    }
    throw new IllegalArgumentException("no operation " + name);
  }

  /**
   * The state Lincheck drives: a connector and the leases and calls each Lincheck thread holds.
   * Public, with a public constructor, because Lincheck instantiates it reflectively, once per run
   * of a scenario and once per sequential order it tries.
   */
  public static class ConnectorUnderTest {

    private static final String[] ADDRESSES = {"a", "b"};

    /** Lincheck thread ids: 0 for the init part, 1 and 2 in parallel, 3 for the post part. */
    private static final int THREAD_IDS = 4;

    private final FakeClock clock = new FakeClock();
    private final TrackingDialer dialer = TrackingDialer.fake();
    private final CachingConnector connector;

    /** held.get(thread).get(address): the leases a thread holds, most recent last. */
    private final List<List<Deque<LeasedChannel>>> held = new ArrayList<>();

    /** leases.get(thread): the leases a thread holds, of any address, most recent last. */
    private final List<Deque<LeasedChannel>> leases = new ArrayList<>();

    /** calls.get(thread): the calls a thread started and has not ended, oldest first. */
    private final List<Deque<FakeCall<?, ?>>> calls = new ArrayList<>();

    public ConnectorUnderTest() {
      this(CachingConnector.builder());
    }

    ConnectorUnderTest(CachingConnector.Builder builder) {
      this(builder, 1);
    }

    ConnectorUnderTest(CachingConnector.Builder builder, int maxCallsPerChannel) {
      connector =
          builder
              .dialer(dialer)
              .dialExecutor(Runnable::run)
              .scheduler(clock.scheduler())
              .clock(clock)
              .shutdownGracePeriod(Duration.ZERO)
              .maxCallsPerChannel(maxCallsPerChannel)
              .maxChannelsPerAddress(2)
              .build();
      for (int thread = 0; thread < THREAD_IDS; thread++) {
        List<Deque<LeasedChannel>> perAddress = new ArrayList<>();
        for (int address = 0; address < ADDRESSES.length; address++) {
          perAddress.add(new ArrayDeque<>());
        }
        held.add(perAddress);
        leases.add(new ArrayDeque<>());
        calls.add(new ArrayDeque<>());
      }
    }

    /**
     * Dials {@code address} and holds the lease. Returns the channel leased, as {@code a#0} for the
     * first channel dialed for {@code a}, with {@code !shut} appended if it was already shut down;
     * or, if the dial threw, its status code or {@code ISE}.
     */
    @Operation
    public String dialAndHold(
        @Param(gen = ThreadIdGen.class) int thread,
        @Param(gen = IntGen.class, conf = "0:1") int address) {
      LeasedChannel lease;
      try {
        lease = connector.dial(ADDRESSES[address]);
      } catch (StatusRuntimeException e) {
        return e.getStatus().getCode().name();
      } catch (IllegalStateException e) {
        return "ISE";
      }
      held.get(thread).get(address).addLast(lease);
      leases.get(thread).addLast(lease);
      return name(lease.entry.channel());
    }

    /** {@code a#0} for the first channel dialed for {@code a}, {@code !shut} if shut down. */
    private String name(ManagedChannel channel) {
      TrackedChannel tracked = (TrackedChannel) channel;
      int generation = dialer.createdFor(tracked.address).indexOf(tracked);
      return tracked.address + "#" + generation + (tracked.isShutdown() ? "!shut" : "");
    }

    /** Releases the lease this thread took last on {@code address}; false if it holds none. */
    @Operation
    public boolean releaseOneHeld(
        @Param(gen = ThreadIdGen.class) int thread,
        @Param(gen = IntGen.class, conf = "0:1") int address) {
      LeasedChannel lease = held.get(thread).get(address).pollLast();
      if (lease == null) {
        return false;
      }
      leases.get(thread).removeLastOccurrence(lease);
      connector.release(ADDRESSES[address], lease);
      return true;
    }

    /**
     * Starts a call on the lease this thread took last, of any address, and holds the call. Returns
     * the channel it runs on, as {@link #dialAndHold} names it, with the status appended if the
     * call closed at once; or {@code none} if this thread holds no lease.
     */
    @Operation
    public String startCallAndHold(@Param(gen = ThreadIdGen.class) int thread) {
      LeasedChannel lease = leases.get(thread).peekLast();
      if (lease == null) {
        return "none";
      }
      FakeCall<?, ?> call = FakeCall.startOn(lease);
      Status status = call.status();
      if (status != null) {
        return name(call.channel) + " closed at once: " + status.getCode();
      }
      calls.get(thread).addLast(call);
      return name(call.channel);
    }

    /**
     * Ends the oldest call this thread holds: {@code ended}, or the status it was closed with
     * before (cancelled under it), or {@code none} if this thread holds no call.
     */
    @Operation
    public String endOneHeldCall(@Param(gen = ThreadIdGen.class) int thread) {
      FakeCall<?, ?> call = calls.get(thread).pollFirst();
      if (call == null) {
        return "none";
      }
      if (call.end()) {
        return "ended";
      }
      return "closed before its end: " + requireNonNull(call.status()).getCode();
    }

    /** Runs one expiry pass; returns the addresses of the channels it closed, sorted. */
    @Operation
    public List<String> expire() {
      List<String> expired = new ArrayList<>(connector.expire());
      Collections.sort(expired);
      return expired;
    }

    @Operation
    public boolean closeOnRelease(@Param(gen = IntGen.class, conf = "0:1") int address) {
      return connector.closeOnRelease(ADDRESSES[address]);
    }

    @Operation
    public int connectionCount() {
      return connector.connectionCount();
    }

    /**
     * Run by Lincheck when no operation runs: the lease count is the number of leases the threads
     * hold, none of them on a shut-down channel; the call count is the number of calls the threads
     * hold, none of them closed or on a shut-down channel, and {@code connections()} counts them on
     * their addresses; the connection count is the number of channels created and not shut down; no
     * channel was shut down twice, nor with a call in flight.
     */
    @Validate
    public void quiescentStateIsConsistent() {
      int heldLeases = 0;
      for (List<Deque<LeasedChannel>> perAddress : held) {
        for (Deque<LeasedChannel> leases : perAddress) {
          heldLeases += leases.size();
          for (LeasedChannel lease : leases) {
            check(!lease.entry.channel().isShutdown(), "held lease on a shut-down channel", lease);
          }
        }
      }
      check(connector.leaseCount() == heldLeases, "leaseCount() != " + heldLeases, connector);
      int heldCalls = 0;
      int[] heldCallsPerAddress = new int[ADDRESSES.length];
      for (Deque<FakeCall<?, ?>> threadCalls : calls) {
        heldCalls += threadCalls.size();
        for (FakeCall<?, ?> call : threadCalls) {
          check(!call.channel.isShutdown(), "held call on a shut-down channel", call);
          check(call.status() == null, "held call closed", call);
          heldCallsPerAddress[List.of(ADDRESSES).indexOf(call.channel.address)]++;
        }
      }
      check(connector.callCount() == heldCalls, "callCount() != " + heldCalls, connector);
      int[] reportedCalls = new int[ADDRESSES.length];
      for (ConnectionInfo info : connector.connections()) {
        reportedCalls[List.of(ADDRESSES).indexOf(info.address())] += info.calls();
      }
      check(
          Arrays.equals(reportedCalls, heldCallsPerAddress),
          "calls of connections() per address != " + Arrays.toString(heldCallsPerAddress),
          connector.connections());
      check(
          connector.connectionCount() == dialer.open().size(),
          "connectionCount() != open channels " + dialer.open(),
          connector);
      check(
          connector.connections().size() == dialer.open().size(),
          "connections() does not list every open channel " + dialer.open(),
          connector.connections());
      for (TrackedChannel channel : dialer.created) {
        check(channel.shutdowns.get() <= 1, "channel shut down twice", channel);
        check(
            channel.callsAtShutdown.get() <= 0, "channel shut down with a call in flight", channel);
      }
    }

    /** The connector's channels, open or not, for subclasses' checks. */
    List<TrackedChannel> created() {
      return dialer.created;
    }

    /** Plain checks: Lincheck reports an AssertionError thrown here with the failing scenario. */
    private static void check(boolean condition, String message, Object subject) {
      if (!condition) {
        throw new AssertionError(message + ": " + subject);
      }
    }
  }

  /** The same operations on a connector whose channels are full at two (leases and calls). */
  public static final class TwoCallsConnectorUnderTest extends ConnectorUnderTest {

    public TwoCallsConnectorUnderTest() {
      super(CachingConnector.builder(), 2);
    }
  }

  /**
   * The same operations on a connector bounded to 2 channels (rule 10), while the two addresses may
   * have 4: a dial that creates a channel evicts an idle one, racing the other thread's leases,
   * calls, releases, closeOnRelease and expiry.
   */
  public static final class BoundedConnectorUnderTest extends ConnectorUnderTest {

    public BoundedConnectorUnderTest() {
      super(CachingConnector.builder().maximumChannels(2));
    }
  }
}
