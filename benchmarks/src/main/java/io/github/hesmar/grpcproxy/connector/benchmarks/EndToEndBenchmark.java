package io.github.hesmar.grpcproxy.connector.benchmarks;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.github.hesmar.grpcproxy.connector.LeasedChannel;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.netty.handler.ssl.util.SelfSignedCertificate;
import io.grpc.protobuf.services.HealthStatusManager;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One unary health {@code Check} per operation over a real loopback Netty server (the gRPC health
 * service), plaintext or TLS ({@code transport}; TLS with a self-signed certificate for {@code
 * localhost} made at setup), through three ways of getting a channel:
 *
 * <ul>
 *   <li>{@code sharedChannel}: one channel built once and kept, the fastest a caller can do;
 *   <li>{@code connectorLease}: a lease from a {@link CachingConnector} per call, released after
 *       it, in try-with-resources;
 *   <li>{@code newChannelPerCall}: build a channel, make the call, shut the channel down and wait
 *       for it to terminate (what a filter that opens a channel per request does; the wait keeps
 *       closing connections from piling up, and a caller that does not wait pays the same work on
 *       another thread).
 * </ul>
 *
 * Client and server share the machine's cores, so the scores include the server's work.
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar EndToEndBenchmark
 * </pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(
    value = 2,
    // sun.security.x509: Netty makes the self-signed certificate with the JDK's own classes.
    jvmArgsAppend = {"-Xms2g", "-Xmx2g", "--add-exports=java.base/sun.security.x509=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class EndToEndBenchmark {

  private static final HealthCheckRequest REQUEST = HealthCheckRequest.getDefaultInstance();

  /** {@code plaintext}, or {@code tls}: what a real backend costs to connect to. */
  @Param({"plaintext", "tls"})
  public String transport = "plaintext";

  // Set by setUp() before any benchmark method runs.
  private ChannelCredentials credentials;
  private Server server;
  private String target;
  private ManagedChannel shared;
  private CachingConnector cachingConnector;

  /** Starts the server on a free loopback port and connects the shared channel and connector. */
  @Setup(Level.Trial)
  public void setUp() throws Exception {
    ServerCredentials serverCredentials;
    switch (transport) {
      case "plaintext" -> {
        serverCredentials = InsecureServerCredentials.create();
        credentials = InsecureChannelCredentials.create();
      }
      case "tls" -> {
        SelfSignedCertificate certificate = new SelfSignedCertificate("localhost");
        serverCredentials =
            TlsServerCredentials.create(certificate.certificate(), certificate.privateKey());
        credentials =
            TlsChannelCredentials.newBuilder().trustManager(certificate.certificate()).build();
      }
      default ->
          throw new IllegalArgumentException("transport must be plaintext or tls: " + transport);
    }
    server =
        Grpc.newServerBuilderForPort(0, serverCredentials)
            .addService(new HealthStatusManager().getHealthService())
            .build()
            .start();
    target = "localhost:" + server.getPort();
    shared = newChannel();
    cachingConnector =
        CachingConnector.builder()
            .dialer(Dialer.withCredentials(credentials))
            .shutdownGracePeriod(Duration.ofSeconds(5))
            .build();
    // Connect both before measuring, so that no iteration pays the first connection.
    check(shared);
    try (LeasedChannel lease = cachingConnector.dial(target)) {
      check(lease);
    }
  }

  /** Closes the channels and stops the server. */
  @TearDown(Level.Trial)
  public void tearDown() throws InterruptedException {
    cachingConnector.close();
    shared.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  /** One call over a channel built once and kept. */
  @Benchmark
  public HealthCheckResponse sharedChannel() {
    return check(shared);
  }

  /** One call over a channel leased from the connector for this call. */
  @Benchmark
  public HealthCheckResponse connectorLease() {
    try (LeasedChannel lease = cachingConnector.dial(target)) {
      return check(lease);
    }
  }

  /** One call over a channel built for this call and shut down after it. */
  @Benchmark
  public HealthCheckResponse newChannelPerCall() throws InterruptedException {
    ManagedChannel channel = newChannel();
    try {
      return check(channel);
    } finally {
      channel.shutdown();
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    }
  }

  private ManagedChannel newChannel() {
    return Grpc.newChannelBuilder(target, credentials).build();
  }

  private static HealthCheckResponse check(io.grpc.Channel channel) {
    return HealthGrpc.newBlockingStub(channel).check(REQUEST);
  }
}
