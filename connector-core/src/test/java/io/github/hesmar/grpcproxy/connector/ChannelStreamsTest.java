package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/**
 * {@link ChannelStreams} on its own, driven as a transport drives a stream tracer: which streams
 * count as queued, when a channel's limit is learned, and when it is forgotten. The check runs on a
 * {@link FakeClock}'s scheduler, so "a stream still waits a second later" is a step of the test.
 */
class ChannelStreamsTest {

  private static final Duration CONFIRM = Duration.ofNanos(ChannelStreams.CONFIRM_NANOS);

  final FakeClock clock = new FakeClock();
  final List<String> waits = new CopyOnWriteArrayList<>();
  final ConnectorListener listener =
      new ConnectorListener() {
        @Override
        public void onCallQueued(String address, Duration queued) {
          waits.add(address);
        }
      };
  final ChannelStreams.Watch watch =
      new ChannelStreams.Watch(clock.scheduler(), listener, 100, true, Watches.NEVER_RETIRES);

  Entry published(@Nullable Entry first) {
    Entry entry =
        new Entry("alpha", first == null ? 1 : 2, first, new PendingDial(System.nanoTime()), watch);
    assertThat(entry.publish(new TrackedChannel("alpha", 0, null, false), clock.millis())).isTrue();
    entry.dropReservation();
    return entry;
  }

  /** {@code count} calls counted on {@code entry}, each with its stream created. */
  static List<ClientStreamTracer> startStreams(Entry entry, int count) {
    List<ClientStreamTracer> tracers = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      assertThat(entry.startCall()).isTrue();
      ClientStreamTracer tracer =
          entry.streams.newClientStreamTracer(
              ClientStreamTracer.StreamInfo.newBuilder()
                  .setCallOptions(CallOptions.DEFAULT)
                  .build(),
              new Metadata());
      tracer.streamCreated(Attributes.EMPTY, new Metadata());
      tracers.add(tracer);
    }
    return tracers;
  }

  @Test
  void aStreamIsQueuedFromItsCreationUntilItsHeadersAreWrittenAndIsReportedOnce() {
    Entry entry = published(null);
    List<ClientStreamTracer> streams = startStreams(entry, 3);
    assertThat(entry.streams.queued()).isEqualTo(3);

    streams.get(0).outboundHeaders();
    streams.get(0).streamClosed(Status.OK);
    streams.get(1).streamClosed(Status.CANCELLED); // ended before its headers were written

    assertThat(entry.streams.queued()).isEqualTo(1);
    assertThat(waits).containsExactly("alpha", "alpha");
    assertThat(entry.info()).isNotNull().satisfies(info -> assertThat(info.queued()).isEqualTo(1));
  }

  /** Two checks: a stream created after the first look is looked at by the second. */
  void twoChecks() {
    clock.forward(CONFIRM);
    clock.forward(CONFIRM);
  }

  @Test
  void aStreamStillWaitingAtTheNextCheckTeachesTheCallsTheChannelCarries() {
    Entry entry = published(null);
    List<ClientStreamTracer> streams = startStreams(entry, 11);
    streams.subList(0, 10).forEach(ClientStreamTracer::outboundHeaders); // the 11th waits

    clock.forward(CONFIRM.minusMillis(1));
    assertThat(clock.pendingTasks()).as("one check scheduled for 11 streams").isEqualTo(1);
    clock.forward(Duration.ofMillis(1));
    assertThat(entry.limit())
        .as("the first check looked at the first stream: written")
        .isEqualTo(100);
    clock.forward(CONFIRM);

    assertThat(entry.limit()).isEqualTo(10);
    assertThat(entry.info()).isNotNull().satisfies(info -> assertThat(info.limit()).isEqualTo(10));
  }

  @Test
  void aStreamWrittenWithinTheSecondTeachesNothing() {
    Entry entry = published(null);
    List<ClientStreamTracer> streams = startStreams(entry, 11);
    streams.forEach(ClientStreamTracer::outboundHeaders); // an event loop that caught up

    twoChecks();

    assertThat(entry.limit()).isEqualTo(100);
    assertThat(entry.streams.queued()).isZero();
    assertThat(clock.pendingTasks()).as("nothing waits: no check").isZero();
  }

  @Test
  void aChannelCarryingNothingLearnsNothing() {
    Entry entry = published(null);
    startStreams(entry, 2); // none written: a connection that is not up

    twoChecks();

    assertThat(entry.limit()).isEqualTo(100);
  }

  @Test
  void theAddressesNextChannelsStartFromALimitLearnedOnAnExtraChannel() {
    Entry first = published(null);
    Entry extra = published(first);
    List<ClientStreamTracer> streams = startStreams(extra, 8);
    streams.subList(0, 7).forEach(ClientStreamTracer::outboundHeaders);

    twoChecks();

    assertThat(extra.limit()).isEqualTo(7);
    assertThat(first.limit()).as("the same backend").isEqualTo(7);
    assertThat(published(first).limit()).isEqualTo(7);
  }

  @Test
  void anExpiryPassWithNoQueueingSinceTheLastOneGivesBackTheConfiguredLimit() {
    Entry entry = published(null);
    List<ClientStreamTracer> streams = startStreams(entry, 11);
    streams.subList(0, 10).forEach(ClientStreamTracer::outboundHeaders);
    twoChecks();
    assertThat(entry.limit()).isEqualTo(10);

    entry.streams.pass(); // queueing was confirmed since the last pass: kept
    assertThat(entry.limit()).isEqualTo(10);
    streams.get(10).outboundHeaders();
    entry.streams.pass(); // none since: forgotten (the server may have raised its limit)

    assertThat(entry.limit()).isEqualTo(100);
  }

  @Test
  void theLearnedLimitIsNeverAboveTheConfiguredOne() {
    ChannelStreams.Watch small =
        new ChannelStreams.Watch(clock.scheduler(), null, 5, true, Watches.NEVER_RETIRES);
    Entry entry = new Entry("alpha", 1, null, new PendingDial(System.nanoTime()), small);
    entry.publish(new TrackedChannel("alpha", 0, null, false), clock.millis());
    entry.dropReservation();
    List<ClientStreamTracer> streams = startStreams(entry, 12);
    streams.subList(0, 11).forEach(ClientStreamTracer::outboundHeaders);

    twoChecks();

    assertThat(entry.limit()).isEqualTo(5);
  }

  @Test
  void withOneChannelPerAddressQueueingIsCountedButNoLimitIsLearned() {
    ChannelStreams.Watch single =
        new ChannelStreams.Watch(clock.scheduler(), null, 100, false, Watches.NEVER_RETIRES);
    Entry entry = new Entry("alpha", 1, null, new PendingDial(System.nanoTime()), single);
    entry.publish(new TrackedChannel("alpha", 0, null, false), clock.millis());
    entry.dropReservation();
    List<ClientStreamTracer> streams = startStreams(entry, 11);
    streams.subList(0, 10).forEach(ClientStreamTracer::outboundHeaders);

    assertThat(clock.pendingTasks()).as("no check scheduled").isZero();
    twoChecks();

    assertThat(entry.streams.queued()).isEqualTo(1);
    assertThat(entry.limit()).isEqualTo(100);
  }
}
