package io.github.hesmar.grpcproxy.connector;

import static java.nio.charset.StandardCharsets.US_ASCII;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatNullPointerException;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.NotSslRecordException;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertPathBuilderException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tests of the built-in dialers over real loopback Netty servers running the gRPC health service.
 *
 * <ul>
 *   <li>{@link Dialer#withCredentials} with TLS credentials that trust the server's certificate: a
 *       lease carries a real health check.
 *   <li>The connector's default dialer ({@link CachingConnector#builder()} without {@code
 *       dialer(...)}) speaks TLS, unlike the Go original's, which set no transport security: a call
 *       to a plaintext server fails with {@code UNAVAILABLE}, and a call to a server whose
 *       certificate is not in the JDK's trust store fails the handshake.
 *   <li>{@link Dialer#plaintext()}: a lease carries a real health check, and after its release the
 *       second {@link CachingConnector#expire()} pass shuts the channel down.
 *   <li>{@code Dialer.withCredentials(null)} is rejected.
 * </ul>
 *
 * <p>The TLS server's certificate is self-signed, made at test time by the JDK's {@code keytool}
 * with the subject alternative names {@code DNS:localhost} and {@code IP:127.0.0.1}, and exported
 * to PEM files; the servers listen on 127.0.0.1 only.
 */
class DefaultDialerTest {

  private static final String LOOPBACK = "127.0.0.1";

  @TempDir Path tempDir;

  private final List<Server> servers = new CopyOnWriteArrayList<>();

  @AfterEach
  void stopServers() throws InterruptedException {
    for (Server server : servers) {
      server.shutdownNow();
    }
    for (Server server : servers) {
      server.awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void aTlsDialerThatTrustsTheServerCertificateLeasesAChannelCarryingARealHealthCheck()
      throws Exception {
    SelfSignedCertificate certificate = SelfSignedCertificate.create(tempDir);
    String address =
        startServer(TlsServerCredentials.create(certificate.chain(), certificate.privateKey()));
    Dialer dialer =
        Dialer.withCredentials(
            TlsChannelCredentials.newBuilder().trustManager(certificate.chain()).build());

    try (CachingConnector connector = connector(dialer);
        LeasedChannel channel = connector.dial(address)) {
      assertThat(HealthBackend.check(channel)).isEqualTo(ServingStatus.SERVING);
    }
  }

  @Test
  void theDefaultDialerSpeaksTlsSoACallToAPlaintextServerFailsWithUnavailable() throws Exception {
    String address = startServer(InsecureServerCredentials.create());

    try (CachingConnector connector =
            CachingConnector.builder().shutdownGracePeriod(Duration.ofSeconds(5)).build();
        LeasedChannel channel = connector.dial(address)) {
      // The client's TLS layer gets the server's plaintext HTTP/2 SETTINGS frame instead of a TLS
      // record; the server in turn logs a corrupt client preface (a TLS ClientHello).
      assertThatThrownBy(() -> HealthBackend.check(channel))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE))
          .hasRootCauseInstanceOf(NotSslRecordException.class);
    }
  }

  @Test
  void theDefaultDialerTrustsOnlyTheJdkTrustStoreSoASelfSignedServerFailsTheCall()
      throws Exception {
    SelfSignedCertificate certificate = SelfSignedCertificate.create(tempDir);
    String address =
        startServer(TlsServerCredentials.create(certificate.chain(), certificate.privateKey()));

    try (CachingConnector connector =
            CachingConnector.builder().shutdownGracePeriod(Duration.ofSeconds(5)).build();
        LeasedChannel channel = connector.dial(address)) {
      assertThatThrownBy(() -> HealthBackend.check(channel))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE))
          .hasCauseInstanceOf(SSLHandshakeException.class)
          .hasRootCauseInstanceOf(CertPathBuilderException.class);
    }
  }

  @Test
  void aPlaintextDialerLeasesAChannelCarryingARealHealthCheckThatTwoIdleExpiryPassesClose()
      throws Exception {
    String address = startServer(InsecureServerCredentials.create());
    List<ManagedChannel> dialed = new CopyOnWriteArrayList<>();
    Dialer plaintext = Dialer.plaintext();

    try (CachingConnector connector =
        connector(
            target -> {
              ManagedChannel channel = plaintext.dial(target);
              dialed.add(channel);
              return channel;
            })) {
      try (LeasedChannel channel = connector.dial(address)) {
        assertThat(HealthBackend.check(channel)).isEqualTo(ServingStatus.SERVING);
      }
      assertThat(connector.connectionCount()).isEqualTo(1);

      assertThat(connector.expire()).isEmpty();
      assertThat(connector.expire()).containsExactly(address);

      assertThat(connector.connectionCount()).isZero();
      assertThat(dialed).singleElement().satisfies(c -> assertThat(c.isShutdown()).isTrue());
    }
  }

  @Test
  void withCredentialsRejectsNullCredentialsNamingTheArgument() {
    assertThatNullPointerException()
        .isThrownBy(() -> Dialer.withCredentials(null))
        .withMessageContaining("credentials");
  }

  private static CachingConnector connector(Dialer dialer) {
    return CachingConnector.builder()
        .dialer(dialer)
        .shutdownGracePeriod(Duration.ofSeconds(5))
        .build();
  }

  /** Starts a Netty server with the health service on a free loopback port; returns its target. */
  private String startServer(ServerCredentials credentials) throws IOException {
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress(LOOPBACK, 0), credentials)
            .addService(new HealthStatusManager().getHealthService())
            .build();
    servers.add(server);
    server.start();
    return LOOPBACK + ":" + server.getPort();
  }

  /**
   * A self-signed EC certificate for {@code localhost} and {@code 127.0.0.1}, made by {@code
   * keytool} in a PKCS#12 key store and exported as a PEM certificate and a PKCS#8 PEM key.
   */
  private record SelfSignedCertificate(File chain, File privateKey) {

    private static final String ALIAS = "server";
    private static final char[] PASSWORD = "changeit".toCharArray();

    static SelfSignedCertificate create(Path dir)
        throws IOException, InterruptedException, GeneralSecurityException {
      Path keyStore = dir.resolve("server.p12");
      runKeytool(
          "-genkeypair",
          "-alias",
          ALIAS,
          "-keyalg",
          "EC",
          "-groupname",
          "secp256r1",
          "-dname",
          "CN=localhost",
          "-ext",
          "SAN=dns:localhost,ip:127.0.0.1",
          "-validity",
          "2",
          "-storetype",
          "PKCS12",
          "-keystore",
          keyStore.toString(),
          "-storepass",
          new String(PASSWORD));

      KeyStore store = KeyStore.getInstance("PKCS12");
      try (InputStream in = Files.newInputStream(keyStore)) {
        store.load(in, PASSWORD);
      }
      Path chain = dir.resolve("server.pem");
      Path privateKey = dir.resolve("server.key");
      writePem(chain, "CERTIFICATE", store.getCertificate(ALIAS).getEncoded());
      // Key.getEncoded() of a private key is its PKCS#8 encoding.
      writePem(privateKey, "PRIVATE KEY", store.getKey(ALIAS, PASSWORD).getEncoded());
      return new SelfSignedCertificate(chain.toFile(), privateKey.toFile());
    }

    private static void runKeytool(String... args) throws IOException, InterruptedException {
      List<String> command = new ArrayList<>();
      command.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
      command.addAll(List.of(args));
      Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
      process.getOutputStream().close();
      String output = new String(process.getInputStream().readAllBytes(), US_ASCII);
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new AssertionError("keytool did not exit; output:\n" + output);
      }
      assertThat(process.exitValue()).as("keytool exit code; output:%n%s", output).isZero();
    }

    private static void writePem(Path file, String type, byte[] der) throws IOException {
      String base64 = Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der);
      Files.writeString(
          file,
          "-----BEGIN " + type + "-----\n" + base64 + "\n-----END " + type + "-----\n",
          US_ASCII);
    }
  }
}
