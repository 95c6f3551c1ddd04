package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.openjdk.jol.info.ClassLayout;
import org.openjdk.jol.info.GraphLayout;
import org.openjdk.jol.vm.VM;

/**
 * Retained heap of idle cached addresses, measured with JOL ({@code org.openjdk.jol:jol-core}), not
 * a JMH benchmark: JOL walks the object graph reachable from the connector and adds up the exact
 * sizes of the objects, as laid out by the running JVM (compressed references and object alignment
 * included), so the result is exact for this JVM and heap size, with no GC noise.
 *
 * <p>It builds a connector, measures its graph, dials and releases {@code N} distinct addresses
 * (10,000 by default) and runs one expiry pass, so that every entry is idle and cached as it is
 * between passes, and measures the graph again. The difference is the retained heap of {@code N}
 * idle cached addresses; without the channels ({@link FakeChannel}s here, all sharing one authority
 * string, so a channel is one object) and without the address strings (which a caller may also
 * hold, for example in a route table), divided by {@code N}, it is the cost of one cache entry. The
 * same is printed for {@link GlobalLockConnector} for comparison, and the per-class breakdown of
 * the connector's difference.
 *
 * <p>Last, the same for a connector with a bound ({@code maximumChannels}, 2 × N by default, so
 * that nothing is evicted), with the same N idle entries: the bound keeps each channel in the queue
 * its clock hand walks (see {@code ChannelBound}), one queue node per channel, and its by-class
 * breakdown shows them. The output before it is that of an unbounded connector, as it always was.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.github.hesmar.grpcproxy.connector.benchmarks.MemoryFootprint [N [maximumChannels]]
 * </pre>
 */
public final class MemoryFootprint {

  private MemoryFootprint() {}

  /**
   * Prints the retained heap of {@code args[0]} (default 10,000) idle cached addresses, without a
   * bound and with {@code maximumChannels(args[1])} (default twice as many).
   *
   * @param args optionally, the number of addresses, then the bound (at least that number)
   * @throws Exception if a dial fails
   */
  public static void main(String[] args) throws Exception {
    int n = args.length > 0 ? Integer.parseInt(args[0]) : 10_000;
    int maximum = args.length > 1 ? Integer.parseInt(args[1]) : 2 * n;
    if (maximum < n) {
      throw new IllegalArgumentException(
          "maximumChannels must be at least the number of addresses ("
              + n
              + "), so that no entry is evicted, was "
              + maximum);
    }
    // The connector's thread factories are lambdas, whose hidden classes Unsafe cannot lay out.
    System.setProperty("jol.magicFieldOffset", "true");
    String[] keys = Addresses.of(n);
    long channelSize = ClassLayout.parseClass(FakeChannel.class).instanceSize();
    long addressBytes =
        GraphLayout.parseInstance((Object[]) keys).totalSize()
            - ClassLayout.parseInstance(keys).instanceSize();

    System.out.println(VM.current().details());
    System.out.printf(
        Locale.ROOT,
        "%,d addresses; one FakeChannel: %d bytes; the address strings: %,d bytes (%.1f each)%n%n",
        n,
        channelSize,
        addressBytes,
        (double) addressBytes / n);

    Layouts unbounded = fill(newBuilder().build(), keys);
    report(
        "CachingConnector",
        unbounded.empty().totalSize(),
        unbounded.full().totalSize(),
        n,
        channelSize,
        addressBytes);
    System.out.println("What the idle entries added, by class:");
    System.out.println(unbounded.full().subtract(unbounded.empty()).toFootprint());

    GlobalLockConnector globalLock = new GlobalLockConnector(address -> FakeChannel.create("fake"));
    long globalEmpty = GraphLayout.parseInstance(globalLock).totalSize();
    List<ManagedChannel> channels = new ArrayList<>(n);
    for (String key : keys) {
      ManagedChannel channel = globalLock.dial(key);
      globalLock.release(key, channel);
      channels.add(channel);
    }
    globalLock.expire();
    long globalFull = GraphLayout.parseInstance(globalLock).totalSize();
    report("GlobalLockConnector (baseline)", globalEmpty, globalFull, n, channelSize, addressBytes);

    Layouts bounded = fill(newBuilder().maximumChannels(maximum).build(), keys);
    report(
        String.format(Locale.ROOT, "CachingConnector with maximumChannels(%,d)", maximum),
        bounded.empty().totalSize(),
        bounded.full().totalSize(),
        n,
        channelSize,
        addressBytes);
    System.out.println("What the idle entries added, by class:");
    System.out.println(bounded.full().subtract(bounded.empty()).toFootprint());
  }

  private static CachingConnector.Builder newBuilder() {
    return CachingConnector.builder()
        .dialer(address -> FakeChannel.create("fake"))
        .dialExecutor(Runnable::run)
        .shutdownGracePeriod(Duration.ZERO);
  }

  /** The graph of a connector before and after it cached {@code keys}. */
  private record Layouts(GraphLayout empty, GraphLayout full) {}

  /**
   * Dials and releases every key, then runs one expiry pass, so that every entry is idle and
   * cached; returns the graphs before and after, and closes the connector.
   */
  private static Layouts fill(CachingConnector connector, String[] keys) {
    GraphLayout empty = GraphLayout.parseInstance(connector);
    for (String key : keys) {
      connector.dial(key).close();
    }
    List<String> expired = connector.expire();
    if (!expired.isEmpty() || connector.connectionCount() != keys.length) {
      throw new IllegalStateException("expected " + keys.length + " idle cached channels");
    }
    GraphLayout full = GraphLayout.parseInstance(connector);
    connector.close();
    return new Layouts(empty, full);
  }

  private static void report(
      String name, long empty, long full, int n, long channelSize, long addressBytes) {
    long added = full - empty;
    long entries = added - n * channelSize - addressBytes;
    System.out.printf(
        Locale.ROOT,
        "%s: empty %,d bytes; with %,d idle cached addresses %,d bytes%n"
            + "  %,d idle cached addresses retain %,d bytes (%.1f per address, channel and address"
            + " string included)%n"
            + "  per cache entry, excluding the channel and the address string: %.1f bytes%n%n",
        name,
        empty,
        n,
        full,
        n,
        added,
        (double) added / n,
        (double) entries / n);
  }
}
