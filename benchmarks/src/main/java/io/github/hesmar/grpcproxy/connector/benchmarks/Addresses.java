package io.github.hesmar.grpcproxy.connector.benchmarks;

/** Target addresses for the benchmarks: valid gRPC targets that are never connected to. */
final class Addresses {

  private Addresses() {}

  /** Returns {@code count} distinct addresses, {@code dns:///backend-<i>.example:443}. */
  static String[] of(int count) {
    String[] addresses = new String[count];
    for (int i = 0; i < count; i++) {
      addresses[i] = "dns:///backend-" + i + ".example:443";
    }
    return addresses;
  }
}
