package io.github.hesmar.grpcproxy.connector;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * A TCP relay on 127.0.0.1 in front of one loopback backend port, whose connections can be frozen:
 * a test's stand-in for a NAT or load-balancer entry that drops its flow without closing it.
 * Thread-safe.
 *
 * <p>Each accepted connection gets a connection of its own to the backend and two threads that copy
 * bytes between them, one per direction. {@link #freeze()} freezes the connections the relay has
 * then: their threads go on reading, and drop what they read, so the peers' writes succeed and
 * nothing arrives on either side, and no connection is closed. Connections accepted later are
 * relayed as usual. When either side of a connection closes, the relay closes both. {@link
 * #close()} closes everything and waits until every thread the relay started has ended.
 */
final class FreezingRelay implements AutoCloseable {

  private static final long JOIN_MILLIS = TimeUnit.SECONDS.toMillis(10);

  private final InetSocketAddress backend;
  private final ServerSocket listening;
  private final Thread acceptor;

  /** Every connection accepted, closed or not; added to and frozen under this. */
  private final List<Link> links = new ArrayList<>();

  /** Every thread copying bytes, ended or not. */
  private final List<Thread> copiers = new CopyOnWriteArrayList<>();

  private volatile boolean closed;

  /** Starts relaying 127.0.0.1:{@link #port()} to 127.0.0.1:{@code backendPort}. */
  FreezingRelay(int backendPort) {
    InetAddress loopback = InetAddress.getLoopbackAddress();
    this.backend = new InetSocketAddress(loopback, backendPort);
    try {
      this.listening = new ServerSocket(0, 50, loopback);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    this.acceptor = new Thread(this::accept, "freezing-relay-" + port() + "-accept");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** The port the relay listens on. */
  int port() {
    return listening.getLocalPort();
  }

  /** The relay as a gRPC target. */
  String address() {
    return "127.0.0.1:" + port();
  }

  /** The connections accepted so far. */
  synchronized int accepted() {
    return links.size();
  }

  /** Stops copying bytes, both ways, on every connection accepted so far; later ones flow. */
  synchronized void freeze() {
    for (Link link : links) {
      link.frozen = true;
    }
  }

  private void accept() {
    while (!closed) {
      Socket client;
      try {
        client = listening.accept();
      } catch (IOException e) {
        return; // closed: the only way out of accept()
      }
      Socket server = new Socket();
      try {
        client.setTcpNoDelay(true);
        server.setTcpNoDelay(true);
        server.connect(backend, (int) JOIN_MILLIS);
      } catch (IOException e) {
        closeQuietly(client);
        closeQuietly(server);
        continue;
      }
      Link link = new Link(client, server);
      int number;
      synchronized (this) {
        links.add(link);
        number = links.size();
      }
      start(link, client, server, "freezing-relay-" + port() + "-" + number + "-up");
      start(link, server, client, "freezing-relay-" + port() + "-" + number + "-down");
    }
  }

  private void start(Link link, Socket from, Socket to, String name) {
    Thread thread = new Thread(() -> link.copy(from, to), name);
    thread.setDaemon(true);
    copiers.add(thread);
    thread.start();
  }

  /**
   * Closes the listening socket and every connection, and waits for the relay's threads.
   *
   * @throws IllegalStateException if one of them is still running after 10 seconds
   */
  @Override
  public void close() {
    closed = true;
    closeQuietly(listening);
    join(acceptor); // no link is added after this
    List<Link> all;
    synchronized (this) {
      all = new ArrayList<>(links);
    }
    for (Link link : all) {
      link.close();
    }
    for (Thread copier : copiers) {
      join(copier);
    }
    List<String> running = new ArrayList<>();
    if (acceptor.isAlive()) {
      running.add(acceptor.getName());
    }
    for (Thread copier : copiers) {
      if (copier.isAlive()) {
        running.add(copier.getName());
      }
    }
    if (!running.isEmpty()) {
      throw new IllegalStateException("relay threads still running: " + running);
    }
  }

  private static void join(Thread thread) {
    try {
      thread.join(JOIN_MILLIS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void closeQuietly(AutoCloseable closeable) {
    try {
      closeable.close();
    } catch (Exception e) {
      // closing: nothing left to do with it
    }
  }

  /** One relayed connection: the client's socket and the relay's socket to the backend. */
  private static final class Link {
    private final Socket client;
    private final Socket server;
    volatile boolean frozen;

    Link(Socket client, Socket server) {
      this.client = client;
      this.server = server;
    }

    /** Copies {@code from} to {@code to} until either closes; drops the bytes while frozen. */
    void copy(Socket from, Socket to) {
      byte[] buffer = new byte[16 * 1024];
      try {
        InputStream in = from.getInputStream();
        OutputStream out = to.getOutputStream();
        for (int read; (read = in.read(buffer)) != -1; ) {
          if (!frozen) {
            out.write(buffer, 0, read);
            out.flush();
          }
        }
      } catch (IOException e) {
        // one side closed or reset: the link is over
      } finally {
        close();
      }
    }

    void close() {
      closeQuietly(client);
      closeQuietly(server);
    }
  }
}
