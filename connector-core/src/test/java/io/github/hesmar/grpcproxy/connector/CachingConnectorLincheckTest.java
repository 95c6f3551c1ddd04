package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
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
 * connectionCount} calls on two addresses return, some sequential order of the same calls that
 * respects their real-time order returns too. Lincheck runs the operations of {@link
 * ConnectorUnderTest} from two threads, under its model checker (which explores thread switches at
 * every shared-memory access) and under stress (real threads), and compares the results with every
 * sequential order.
 *
 * <p>The connector dials fake channels inline ({@code dialExecutor(Runnable::run)}), so the only
 * threads are Lincheck's, and its expiry scheduler and clock are a {@link FakeClock}. A dial
 * returns the address and per-address generation of the channel it leased ({@code a#0} for the
 * first channel dialed for {@code a}), so a lease on a replaced or closed channel shows up as a
 * different result. Each Lincheck thread holds its own leases, so which lease a release gives back
 * depends only on that thread's history.
 *
 * <p>{@link CachingConnector#leaseCount()} is not an operation: it sums the leases of every entry
 * one after the other, a gauge that is exact only when nothing runs (Lincheck shows it returning 2
 * while one lease is held, for example while {@code closeOnRelease} moves that lease's entry
 * between its two collections). It is checked, with the other counts, when no operation runs, by
 * {@link ConnectorUnderTest#quiescentStateIsConsistent()}.
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

  @Test
  void sequentialHistoryGivesTheResultsOfTheContract() {
    ConnectorUnderTest test = new ConnectorUnderTest();

    assertThat(test.dialAndHold(1, 0)).isEqualTo("a#0");
    assertThat(test.dialAndHold(2, 0)).isEqualTo("a#0");
    assertThat(test.closeOnRelease(0)).isTrue();
    assertThat(test.dialAndHold(2, 0)).isEqualTo("a#1");
    assertThat(test.connectionCount()).isEqualTo(2);
    assertThat(test.releaseOneHeld(1, 0)).isTrue();
    assertThat(test.releaseOneHeld(1, 0)).isFalse();
    assertThat(test.expire()).isEmpty(); // a#0 still leased by thread 2
    test.quiescentStateIsConsistent();

    assertThat(test.releaseOneHeld(2, 0)).isTrue(); // a#1
    assertThat(test.releaseOneHeld(2, 0)).isTrue(); // a#0
    assertThat(test.expire()).containsExactly("a"); // a#0, detached; a#1 idle pass 1
    assertThat(test.expire()).containsExactly("a"); // a#1, idle pass 2
    assertThat(test.connectionCount()).isZero();
    assertThat(test.dialAndHold(1, 1)).isEqualTo("b#0");
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
   * The state Lincheck drives: a connector and the leases each Lincheck thread holds. Public, with
   * a public constructor, because Lincheck instantiates it reflectively, once per run of a scenario
   * and once per sequential order it tries.
   */
  public static final class ConnectorUnderTest {

    private static final String[] ADDRESSES = {"a", "b"};

    /** Lincheck thread ids: 0 for the init part, 1 and 2 in parallel, 3 for the post part. */
    private static final int THREAD_IDS = 4;

    private final FakeClock clock = new FakeClock();
    private final TrackingDialer dialer = TrackingDialer.fake();
    private final CachingConnector connector =
        CachingConnector.builder()
            .dialer(dialer)
            .dialExecutor(Runnable::run)
            .scheduler(clock.scheduler())
            .clock(clock)
            .shutdownGracePeriod(Duration.ZERO)
            .build();

    /** held.get(thread).get(address): the leases a thread holds, most recent last. */
    private final List<List<Deque<LeasedChannel>>> held = new ArrayList<>();

    public ConnectorUnderTest() {
      for (int thread = 0; thread < THREAD_IDS; thread++) {
        List<Deque<LeasedChannel>> perAddress = new ArrayList<>();
        for (int address = 0; address < ADDRESSES.length; address++) {
          perAddress.add(new ArrayDeque<>());
        }
        held.add(perAddress);
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
      ManagedChannel channel = lease.entry.channel();
      int generation = dialer.createdFor(ADDRESSES[address]).indexOf(channel);
      return ADDRESSES[address] + "#" + generation + (channel.isShutdown() ? "!shut" : "");
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
      connector.release(ADDRESSES[address], lease);
      return true;
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
     * hold, none of them on a shut-down channel; the connection count is the number of channels
     * created and not shut down; no channel was shut down twice.
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
      check(
          connector.connectionCount() == dialer.open().size(),
          "connectionCount() != open channels " + dialer.open(),
          connector);
      for (TrackedChannel channel : dialer.created) {
        check(channel.shutdowns.get() <= 1, "channel shut down twice", channel);
      }
    }

    /** Plain checks: Lincheck reports an AssertionError thrown here with the failing scenario. */
    private static void check(boolean condition, String message, Object subject) {
      if (!condition) {
        throw new AssertionError(message + ": " + subject);
      }
    }
  }
}
