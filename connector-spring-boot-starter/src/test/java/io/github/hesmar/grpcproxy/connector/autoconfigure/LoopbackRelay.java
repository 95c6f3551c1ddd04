package io.github.hesmar.grpcproxy.connector.autoconfigure;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A TCP relay on a loopback port in front of a backend: each connection it accepts is relayed, byte
 * for byte, to a new connection to the backend. {@link #stopAccepting()} closes its listening
 * socket and keeps the connections it relays: a new connection to its port is refused while one
 * made before carries on, as when a backend's host drops off the network for new connections only.
 */
final class LoopbackRelay implements AutoCloseable {

  private final ServerSocket listener;
  private final int backendPort;
  private final Queue<Socket> sockets = new ConcurrentLinkedQueue<>();

  private LoopbackRelay(int backendPort) {
    this.backendPort = backendPort;
    try {
      this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    daemon(this::accept, "relay-accept");
  }

  /** Starts a relay to the backend listening on loopback port {@code backendPort}. */
  static LoopbackRelay to(int backendPort) {
    return new LoopbackRelay(backendPort);
  }

  /** The relay's target address: its loopback IP and port. */
  String address() {
    return listener.getInetAddress().getHostAddress() + ":" + listener.getLocalPort();
  }

  /** Refuses new connections from now on; the connections relayed so far go on. */
  void stopAccepting() throws IOException {
    listener.close();
  }

  private void accept() {
    while (!listener.isClosed()) {
      try {
        Socket client = listener.accept();
        sockets.add(client);
        Socket backend = new Socket(InetAddress.getLoopbackAddress(), backendPort);
        sockets.add(backend);
        daemon(() -> pump(client, backend), "relay-to-backend");
        daemon(() -> pump(backend, client), "relay-to-client");
      } catch (IOException e) {
        return; // the listener was closed
      }
    }
  }

  private static void pump(Socket from, Socket to) {
    try (InputStream in = from.getInputStream();
        OutputStream out = to.getOutputStream()) {
      in.transferTo(out);
    } catch (IOException e) {
      // One side closed: the other is closed below.
    } finally {
      closeQuietly(from);
      closeQuietly(to);
    }
  }

  private static void daemon(Runnable task, String name) {
    Thread thread = new Thread(task, name);
    thread.setDaemon(true);
    thread.start();
  }

  private static void closeQuietly(Socket socket) {
    try {
      socket.close();
    } catch (IOException e) {
      // Closing is all that is asked.
    }
  }

  @Override
  public void close() throws IOException {
    listener.close();
    sockets.forEach(LoopbackRelay::closeQuietly);
  }
}
