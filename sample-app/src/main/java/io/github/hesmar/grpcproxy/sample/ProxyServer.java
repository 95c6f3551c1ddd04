package io.github.hesmar.grpcproxy.sample;

import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.SmartLifecycle;

/**
 * The proxy's gRPC server, started and stopped with the application context.
 *
 * <p>It stops in the phase of the web server's graceful shutdown ({@link
 * WebServerApplicationContext#GRACEFUL_SHUTDOWN_PHASE}), and {@link #stop(Runnable)} returns at
 * once: the gRPC server refuses new calls and drains the calls in flight (up to {@code
 * sample.proxy.shutdown-grace-period}, then cancels them) on a thread of its own, while the web
 * server drains its requests, so the two take one grace period, not two. Spring waits for the
 * callback of every lifecycle in the phase (up to {@code
 * spring.lifecycle.timeout-per-shutdown-phase}) before it stops the next, lower phases, among them
 * the connector's: the connector closes the backend channels only after the calls in flight have
 * ended. Thread-safe.
 */
final class ProxyServer implements SmartLifecycle {

  private final ReverseProxy proxy;
  private final SampleProperties.Proxy properties;
  private volatile @Nullable Server server;

  ProxyServer(ReverseProxy proxy, SampleProperties.Proxy properties) {
    this.proxy = proxy;
    this.properties = properties;
  }

  /** Returns the port the proxy listens on, once started. */
  int port() {
    return address().getPort();
  }

  /** Returns the address the proxy listens on, once started. */
  InetSocketAddress address() {
    Server running = server;
    if (running == null) {
      throw new IllegalStateException("The proxy server is not running");
    }
    return (InetSocketAddress) running.getListenSockets().get(0);
  }

  @Override
  public void start() {
    try {
      InetSocketAddress address =
          new InetSocketAddress(properties.getAddress(), properties.getPort());
      if (address.isUnresolved()) {
        throw new IllegalStateException(
            "sample.proxy.address=" + properties.getAddress() + " is not a known host or address");
      }
      NettyServerBuilder builder =
          NettyServerBuilder.forAddress(address, InsecureServerCredentials.create())
              .maxInboundMessageSize(ProxyConfiguration.maxMessageSize(properties))
              // The proxy never blocks (see ReverseProxy): its callbacks run on the transport
              // threads, without a hand-off to a thread pool for each.
              .directExecutor();
      proxy.registerWith(builder);
      server = builder.build().start();
    } catch (IOException e) {
      throw new UncheckedIOException(
          "Cannot start the proxy on "
              + properties.getAddress()
              + ":"
              + properties.getPort()
              + " (sample.proxy.address, sample.proxy.port): "
              + e.getMessage(),
          e);
    }
  }

  /** Stops the server and returns once its calls have ended or the grace period has run out. */
  @Override
  public void stop() {
    Server running = server;
    if (running != null) {
      server = null;
      running.shutdown();
      drain(running);
    }
  }

  /**
   * Stops the server without waiting: new calls are refused at once, and {@code callback} runs on
   * another thread when the calls in flight have ended or the grace period has run out.
   */
  @Override
  public void stop(Runnable callback) {
    Server running = server;
    if (running == null) {
      callback.run();
      return;
    }
    server = null;
    running.shutdown();
    Thread drainer =
        new Thread(
            () -> {
              try {
                drain(running);
              } finally {
                callback.run();
              }
            },
            "proxy-server-drain");
    drainer.setDaemon(true);
    drainer.start();
  }

  /** Waits for the calls of a server that is shutting down, and cancels them past the grace. */
  private void drain(Server stopping) {
    try {
      if (!stopping.awaitTermination(
          properties.getShutdownGracePeriod().toMillis(), TimeUnit.MILLISECONDS)) {
        stopping.shutdownNow();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      stopping.shutdownNow();
    }
  }

  @Override
  public boolean isRunning() {
    return server != null;
  }

  @Override
  public int getPhase() {
    return WebServerApplicationContext.GRACEFUL_SHUTDOWN_PHASE;
  }
}
