package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** {@link Drainer} on its own, on a scheduler run by hand: what it keeps, and for how long. */
class DrainerTest {

  final FakeClock clock = new FakeClock();
  final Drainer drainer = new Drainer(Duration.ofSeconds(30), clock.scheduler());

  @Test
  void aChannelThatHasTerminatedWhenItIsShutDownIsNotKept() {
    TrackedChannel idle = new TrackedChannel("alpha", 0, null, false);

    drainer.shutdown(idle);

    assertThat(idle.isTerminated()).isTrue();
    assertThat(drainer.drainingCount()).isZero();
    assertThat(clock.pendingTasks()).as("nothing scheduled for it").isZero();
  }

  @Test
  void aChannelWithACallIsKeptUntilItsCallEndsNotForTheWholeGrace() {
    TrackedChannel busy = new TrackedChannel("alpha", 0, null, false);
    FakeCall<?, ?> call = FakeCall.startOn(busy);

    drainer.shutdown(busy);
    assertThat(drainer.drainingCount()).isEqualTo(1);
    clock.forward(Drainer.FIRST_CHECK.multipliedBy(3));
    assertThat(drainer.drainingCount()).as("still busy").isEqualTo(1);
    call.end();
    clock.forward(Drainer.FIRST_CHECK.multipliedBy(4));

    assertThat(drainer.drainingCount()).isZero();
    assertThat(clock.pendingTasks()).isZero();
    assertThat(busy.shutdownNows).as("never forced").hasValue(0);
  }

  @Test
  void aChannelStillBusyWhenTheGraceEndsIsForcedOnceThenLetGo() {
    TrackedChannel busy = new TrackedChannel("alpha", 0, null, false);
    FakeCall<?, ?> call = FakeCall.startOn(busy);
    drainer.shutdown(busy);

    clock.forward(Duration.ofSeconds(30).minusMillis(1));
    assertThat(busy.shutdownNows).as("before the grace").hasValue(0);
    clock.forward(Duration.ofMillis(1));

    assertThat(busy.shutdownNows).hasValue(1);
    assertThat(drainer.drainingCount()).isZero();
    assertThat(clock.pendingTasks()).isZero();
    clock.forward(Duration.ofMinutes(1));
    assertThat(busy.shutdownNows).hasValue(1);
    call.end();
  }

  @Test
  void closeForcesWhatIsStillDrainingAndTheLaterLookDoesNothing() {
    TrackedChannel lingering = new TrackedChannel("alpha", 0, null, true);
    drainer.shutdown(lingering);

    drainer.forceAll();

    assertThat(lingering.shutdownNows).hasValue(1);
    assertThat(drainer.drainingCount()).isZero();
    clock.forward(Duration.ofSeconds(30));
    assertThat(lingering.shutdownNows).hasValue(1);
  }

  @Test
  void terminatedChannelsAreLetGoEvenIfTheSchedulerNeverRuns() {
    TrackedChannel busy = new TrackedChannel("alpha", 0, null, false);
    FakeCall<?, ?> call = FakeCall.startOn(busy);
    drainer.shutdown(busy);
    call.end();

    drainer.letGoTerminated();

    assertThat(drainer.drainingCount()).isZero();
  }
}
