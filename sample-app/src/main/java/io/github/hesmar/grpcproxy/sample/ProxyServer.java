package io.github.hesmar.grpcproxy.sample;

import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.springframework.context.SmartLifecycle;

/**
 * The proxy's gRPC server, started and stopped with the application context. It stops in the phase
 * of the web server's graceful shutdown, so calls in flight finish (up to {@code
 * sample.proxy.shutdown-grace-period}) before the connector, which stops later, closes their
 * channels.
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
              .maxInboundMessageSize(ProxyConfiguration.maxMessageSize(properties));
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

  @Override
  public void stop() {
    Server running = server;
    if (running == null) {
      return;
    }
    running.shutdown();
    try {
      if (!running.awaitTermination(
          properties.getShutdownGracePeriod().toMillis(), TimeUnit.MILLISECONDS)) {
        running.shutdownNow();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      running.shutdownNow();
    }
    server = null;
  }

  @Override
  public boolean isRunning() {
    return server != null;
  }

  @Override
  public int getPhase() {
    return SmartLifecycle.DEFAULT_PHASE - 1024;
  }
}
