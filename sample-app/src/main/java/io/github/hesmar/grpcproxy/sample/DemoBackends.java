package io.github.hesmar.grpcproxy.sample;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/** The demo backends this app runs on loopback, by name; empty when they are switched off. */
public final class DemoBackends implements AutoCloseable {

  private final Map<String, DemoBackend> backends = new LinkedHashMap<>();

  private DemoBackends() {}

  /** No demo backends. */
  static DemoBackends none() {
    return new DemoBackends();
  }

  /** Starts {@code alpha} and {@code beta} on free loopback ports. */
  static DemoBackends startAlphaAndBeta() throws IOException, InterruptedException {
    DemoBackends started = new DemoBackends();
    try {
      for (String name : new String[] {"alpha", "beta"}) {
        started.backends.put(name, DemoBackend.start(name, 0));
      }
    } catch (IOException e) {
      started.close();
      throw e;
    }
    return started;
  }

  /** Returns the backend named {@code name}, or null. */
  public @Nullable DemoBackend get(String name) {
    return backends.get(name);
  }

  /** Returns the backends, in the order they were started. */
  public List<DemoBackend> list() {
    return List.copyOf(backends.values());
  }

  @Override
  public void close() throws InterruptedException {
    for (DemoBackend backend : backends.values()) {
      backend.close();
    }
  }
}
