package io.github.hesmar.grpcproxy.connector;

import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.Callable;
import java.util.concurrent.Delayed;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * A clock and a scheduler that only move when a test says so: {@link #forward(Duration)} advances
 * the time and runs the tasks that became due, on the calling thread. Thread-safe.
 */
final class FakeClock implements InstantSource {

  private final PriorityQueue<Task> tasks = new PriorityQueue<>();
  private final Scheduler scheduler = new Scheduler();
  private long nowNanos; // guarded by this
  private long sequence; // guarded by this
  private static final Instant EPOCH = Instant.parse("2026-01-01T00:00:00Z");

  @Override
  public synchronized Instant instant() {
    return EPOCH.plusNanos(nowNanos);
  }

  ScheduledExecutorService scheduler() {
    return scheduler;
  }

  /** Advances the time by {@code duration}, running every task due by then, in order. */
  void forward(Duration duration) {
    long target;
    synchronized (this) {
      target = nowNanos + duration.toNanos();
    }
    for (; ; ) {
      Task due;
      synchronized (this) {
        due = tasks.peek();
        if (due == null || due.dueNanos > target) {
          nowNanos = target;
          return;
        }
        tasks.poll();
        nowNanos = Math.max(nowNanos, due.dueNanos);
      }
      due.run();
    }
  }

  synchronized int pendingTasks() {
    return (int) tasks.stream().filter(t -> !t.isCancelled()).count();
  }

  private final class Task implements ScheduledFuture<Object>, Runnable {
    final long dueNanos;
    final long order;
    final Runnable command;
    volatile boolean cancelled;
    volatile boolean done;

    Task(long dueNanos, long order, Runnable command) {
      this.dueNanos = dueNanos;
      this.order = order;
      this.command = command;
    }

    @Override
    public void run() {
      if (!cancelled) {
        done = true;
        command.run();
      }
    }

    @Override
    public long getDelay(TimeUnit unit) {
      synchronized (FakeClock.this) {
        return unit.convert(dueNanos - nowNanos, TimeUnit.NANOSECONDS);
      }
    }

    @Override
    public int compareTo(Delayed other) {
      Task that = (Task) other;
      int byTime = Long.compare(dueNanos, that.dueNanos);
      return byTime != 0 ? byTime : Long.compare(order, that.order);
    }

    @Override
    public boolean cancel(boolean mayInterruptIfRunning) {
      if (done) {
        return false;
      }
      cancelled = true;
      synchronized (FakeClock.this) {
        tasks.remove(this);
      }
      return true;
    }

    @Override
    public boolean isCancelled() {
      return cancelled;
    }

    @Override
    public boolean isDone() {
      return done || cancelled;
    }

    @Override
    public Object get() {
      throw new UnsupportedOperationException(
          "FakeClock runs schedule(Runnable, delay, unit) only");
    }

    @Override
    public Object get(long timeout, TimeUnit unit) {
      throw new UnsupportedOperationException(
          "FakeClock runs schedule(Runnable, delay, unit) only");
    }
  }

  private final class Scheduler extends AbstractExecutorService
      implements ScheduledExecutorService {

    @Override
    public ScheduledFuture<?> schedule(Runnable command, long delay, TimeUnit unit) {
      synchronized (FakeClock.this) {
        Task task = new Task(nowNanos + unit.toNanos(delay), sequence++, command);
        tasks.add(task);
        return task;
      }
    }

    @Override
    public <V> ScheduledFuture<V> schedule(Callable<V> callable, long delay, TimeUnit unit) {
      throw new UnsupportedOperationException(
          "FakeClock runs schedule(Runnable, delay, unit) only");
    }

    @Override
    public ScheduledFuture<?> scheduleAtFixedRate(
        Runnable command, long initialDelay, long period, TimeUnit unit) {
      throw new UnsupportedOperationException(
          "FakeClock runs schedule(Runnable, delay, unit) only");
    }

    @Override
    public ScheduledFuture<?> scheduleWithFixedDelay(
        Runnable command, long initialDelay, long delay, TimeUnit unit) {
      throw new UnsupportedOperationException(
          "FakeClock runs schedule(Runnable, delay, unit) only");
    }

    @Override
    public void execute(Runnable command) {
      schedule(command, 0, TimeUnit.NANOSECONDS);
    }

    @Override
    public void shutdown() {}

    @Override
    public List<Runnable> shutdownNow() {
      return new ArrayList<>();
    }

    @Override
    public boolean isShutdown() {
      return false;
    }

    @Override
    public boolean isTerminated() {
      return false;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
      return false;
    }
  }
}
