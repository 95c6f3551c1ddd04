package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;

/**
 * A call on a bare fake {@link TrackedChannel}, which the test ends by hand: it records the
 * listener given to {@link #start}, and {@link #end()} closes it with {@code OK}, as a server's
 * response would. Like a call of grpc-java, it closes at once with {@code UNAVAILABLE} if it starts
 * on a channel that is shut down, and {@link TrackedChannel#shutdownNow()} cancels it with {@code
 * UNAVAILABLE}; a graceful {@link TrackedChannel#shutdown()} lets it run. Its channel counts it as
 * in flight from its start until it closes, and records how many calls were in flight when it was
 * shut down.
 *
 * <p>A call made on a {@link LeasedChannel} is the connector's counting wrapper around one of
 * these: {@link #startOn} hands the test the fake under it (through the {@link #MADE} call option),
 * so that ending the fake runs the connector's end of the call. Thread-safe; closed at most once.
 */
final class FakeCall<ReqT, RespT> extends ClientCall<ReqT, RespT> {

  /** A unary method for fake calls; no message is ever sent. */
  static final MethodDescriptor<String, String> METHOD =
      MethodDescriptor.<String, String>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName("fake.Service", "Call"))
          .setRequestMarshaller(Utf8.MARSHALLER)
          .setResponseMarshaller(Utf8.MARSHALLER)
          .build();

  /** The call option through which {@link TrackedChannel#newCall} hands its fake to the test. */
  static final CallOptions.Key<Consumer<FakeCall<?, ?>>> MADE =
      CallOptions.Key.create("fakeCallMade");

  /**
   * The call option that makes the fake's {@link #start} throw {@link StartRefused} before anything
   * else, as a transport's call may throw at its start (see {@link #startFailingOn}).
   */
  static final CallOptions.Key<Boolean> FAIL_START =
      CallOptions.Key.createWithDefault("fakeCallFailsStart", false);

  /** What a fake made with {@link #FAIL_START} throws from its {@code start()}. */
  static final class StartRefused extends RuntimeException {
    private static final long serialVersionUID = 1L;

    StartRefused() {
      super("start() refused by the test");
    }
  }

  /** What grpc-java closes a call with that starts on a channel that is shut down. */
  static final Status SHUT_DOWN = Status.UNAVAILABLE.withDescription("Channel shutdown invoked");

  /** What grpc-java cancels the calls in flight with on {@code shutdownNow()}. */
  static final Status SHUT_DOWN_NOW =
      Status.UNAVAILABLE.withDescription("Channel shutdownNow invoked");

  final TrackedChannel channel;
  private final boolean failsStart;
  private volatile @Nullable Listener<RespT> listener;
  private final AtomicReference<@Nullable Status> closedWith = new AtomicReference<>();

  /** What the caller's listener was closed with: through this fake, or by the connector at once. */
  private final AtomicReference<@Nullable Status> seen = new AtomicReference<>();

  FakeCall(TrackedChannel channel) {
    this(channel, false);
  }

  /** A fake whose {@code start()} throws {@link StartRefused} if {@code failsStart}. */
  FakeCall(TrackedChannel channel, boolean failsStart) {
    this.channel = channel;
    this.failsStart = failsStart;
  }

  /**
   * Makes a call of {@link #METHOD} on {@code channel} (a lease), starts it, and returns the fake
   * under it: in flight, or closed already if its channel was shut down (by the fake, or by the
   * connector, which then never starts the fake).
   */
  static FakeCall<?, ?> startOn(Channel channel) {
    AtomicReference<@Nullable FakeCall<?, ?>> made = new AtomicReference<>();
    ClientCall<String, String> call =
        channel.newCall(METHOD, CallOptions.DEFAULT.withOption(MADE, made::set));
    FakeCall<?, ?> fake = requireNonNull(made.get(), "no fake call under " + call);
    call.start(
        new Listener<String>() {
          @Override
          public void onClose(Status status, Metadata trailers) {
            fake.seen.set(status);
          }
        },
        new Metadata());
    return fake;
  }

  /**
   * Makes a call of {@link #METHOD} on {@code channel} (a lease) whose fake throws {@link
   * StartRefused} at its start, and starts it: the exception reaches the caller, through the
   * connector's counting. Returns normally, with the status the caller's listener was closed with,
   * only if the connector refused the call before its fake started (its channel was closed).
   */
  static Status startFailingOn(Channel channel) {
    ClientCall<String, String> call =
        channel.newCall(METHOD, CallOptions.DEFAULT.withOption(FAIL_START, true));
    AtomicReference<@Nullable Status> seen = new AtomicReference<>();
    call.start(
        new Listener<String>() {
          @Override
          public void onClose(Status status, Metadata trailers) {
            seen.set(status);
          }
        },
        new Metadata());
    return requireNonNull(seen.get(), "a call that neither threw at its start nor was closed");
  }

  @Override
  public void start(Listener<RespT> responseListener, Metadata headers) {
    requireNonNull(responseListener, "responseListener");
    if (failsStart) {
      throw new StartRefused();
    }
    if (listener != null) {
      throw new IllegalStateException("already started: " + this);
    }
    listener = responseListener;
    // Counted before it looks at the channel, which sets its flag before it counts: a shutdown
    // either sees this call in flight or is seen by it.
    channel.callsInFlight.add(this);
    if (channel.isShutdown()) {
      close(SHUT_DOWN);
    }
  }

  /** Ends the call with {@code OK}; returns false if it was closed already. */
  boolean end() {
    return close(Status.OK);
  }

  /**
   * Closes the call with {@code status}, unless closed already (or never started because the
   * connector closed the caller's call at once); returns whether this closed it.
   */
  boolean close(Status status) {
    Listener<RespT> started = listener;
    if (started == null) {
      if (seen.get() != null) {
        return false;
      }
      throw new IllegalStateException("not started: " + this);
    }
    if (!closedWith.compareAndSet(null, status)) {
      return false;
    }
    channel.callsInFlight.remove(this); // before the listener hears of it, as a transport does
    started.onClose(status, new Metadata());
    return true;
  }

  /**
   * The status the caller's listener was closed with, or null while the call is in flight (for a
   * call made by {@link #startOn}).
   */
  @Nullable Status status() {
    return seen.get();
  }

  @Override
  public void cancel(@Nullable String message, @Nullable Throwable cause) {
    if (listener != null) {
      close(Status.CANCELLED.withDescription(message).withCause(cause));
    }
  }

  @Override
  public void request(int numMessages) {}

  @Override
  public void halfClose() {}

  @Override
  public void sendMessage(ReqT message) {}

  @Override
  public String toString() {
    return "FakeCall{" + channel + ", closedWith=" + closedWith.get() + "}";
  }

  /** Strings as UTF-8; never used, since fake calls send and receive nothing. */
  private enum Utf8 implements MethodDescriptor.Marshaller<String> {
    MARSHALLER;

    @Override
    public InputStream stream(String value) {
      return new ByteArrayInputStream(value.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public String parse(InputStream stream) {
      try {
        return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
