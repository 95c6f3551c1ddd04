package io.github.hesmar.grpcproxy.sample;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/** Settings of the sample proxy, under {@code sample}. */
@ConfigurationProperties("sample")
public class SampleProperties {

  /**
   * Route name (the value of the request header {@code x-route}) to gRPC target, such as {@code
   * dns:///orders.internal:443}; {@code embedded:<name>} names a demo backend of this app.
   */
  private Map<String, String> routes =
      new LinkedHashMap<>(Map.of("alpha", "embedded:alpha", "beta", "embedded:beta"));

  private final Proxy proxy = new Proxy();

  private final Backends backends = new Backends();

  public Map<String, String> getRoutes() {
    return routes;
  }

  public void setRoutes(Map<String, String> routes) {
    this.routes = routes;
  }

  public Proxy getProxy() {
    return proxy;
  }

  public Backends getBackends() {
    return backends;
  }

  /** The proxy's gRPC server. */
  public static class Proxy {

    /** Port of the proxy's gRPC server; 0 for any free port. */
    private int port = 9090;

    /**
     * Address the proxy's gRPC server binds to: loopback unless configured, such as {@code 0.0.0.0}
     * for every interface.
     */
    private String address = "127.0.0.1";

    /**
     * Largest message the proxy relays, in either direction: a bigger request or response fails
     * that call alone with RESOURCE_EXHAUSTED.
     */
    private DataSize maxMessageSize = DataSize.ofMegabytes(4);

    /** Longest a proxied call waits for its backend's channel to be created. */
    private Duration dialTimeout = Duration.ofSeconds(10);

    /** How long stopping the proxy waits for calls in flight to finish. */
    private Duration shutdownGracePeriod = Duration.ofSeconds(10);

    public int getPort() {
      return port;
    }

    public void setPort(int port) {
      this.port = port;
    }

    public String getAddress() {
      return address;
    }

    public void setAddress(String address) {
      this.address = address;
    }

    public DataSize getMaxMessageSize() {
      return maxMessageSize;
    }

    public void setMaxMessageSize(DataSize maxMessageSize) {
      this.maxMessageSize = maxMessageSize;
    }

    public Duration getDialTimeout() {
      return dialTimeout;
    }

    public void setDialTimeout(Duration dialTimeout) {
      this.dialTimeout = dialTimeout;
    }

    public Duration getShutdownGracePeriod() {
      return shutdownGracePeriod;
    }

    public void setShutdownGracePeriod(Duration shutdownGracePeriod) {
      this.shutdownGracePeriod = shutdownGracePeriod;
    }
  }

  /** The demo backends. */
  public static class Backends {

    /** Whether to start the demo backends {@code alpha} and {@code beta} on loopback. */
    private boolean embedded = true;

    public boolean isEmbedded() {
      return embedded;
    }

    public void setEmbedded(boolean embedded) {
      this.embedded = embedded;
    }
  }
}
