package io.github.hesmar.grpcproxy.connector;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * Calls the registered listeners, logging and swallowing what they throw, {@link Error}s included,
 * but for a {@link VirtualMachineError}, which is rethrown. The connector calls listeners only
 * after the state change they report is complete, so nothing they throw can leave a change half
 * made. Thread-safe.
 */
final class SafeListener implements ConnectorListener {

  private static final System.Logger LOG = System.getLogger(CachingConnector.class.getName());

  private static final ConnectorListener NONE = new ConnectorListener() {};

  private final ConnectorListener[] listeners;

  private SafeListener(ConnectorListener[] listeners) {
    this.listeners = listeners;
  }

  static ConnectorListener of(List<ConnectorListener> listeners) {
    return listeners.isEmpty()
        ? NONE
        : new SafeListener(listeners.toArray(new ConnectorListener[0]));
  }

  /** Whether {@code listener} is the one {@link #of} returns for no listener: it hears nothing. */
  static boolean isSilent(ConnectorListener listener) {
    return listener == NONE;
  }

  private static void failed(String callback, Throwable t) {
    if (t instanceof VirtualMachineError error) {
      throw error; // the JVM is failing; the state change the callback reports is complete
    }
    LOG.log(Level.WARNING, "CachingConnector listener " + callback + " threw; ignored", t);
  }

  @Override
  public void onConnect(String address) {
    for (ConnectorListener l : listeners) {
      try {
        l.onConnect(address);
      } catch (Throwable t) {
        failed("onConnect", t);
      }
    }
  }

  @Override
  public void onCacheMiss(String address) {
    for (ConnectorListener l : listeners) {
      try {
        l.onCacheMiss(address);
      } catch (Throwable t) {
        failed("onCacheMiss", t);
      }
    }
  }

  @Override
  public void onConnectionCountUpdate(int count) {
    for (ConnectorListener l : listeners) {
      try {
        l.onConnectionCountUpdate(count);
      } catch (Throwable t) {
        failed("onConnectionCountUpdate", t);
      }
    }
  }

  @Override
  public void onDialComplete(String address, Duration duration, @Nullable Throwable failure) {
    for (ConnectorListener l : listeners) {
      try {
        l.onDialComplete(address, duration, failure);
      } catch (Throwable t) {
        failed("onDialComplete", t);
      }
    }
  }

  @Override
  public void onClose(String address, CloseCause cause) {
    for (ConnectorListener l : listeners) {
      try {
        l.onClose(address, cause);
      } catch (Throwable t) {
        failed("onClose", t);
      }
    }
  }

  @Override
  public void onLeak(String address, Duration heldFor) {
    for (ConnectorListener l : listeners) {
      try {
        l.onLeak(address, heldFor);
      } catch (Throwable t) {
        failed("onLeak", t);
      }
    }
  }

  @Override
  public void onCallQueued(String address, Duration queued) {
    for (ConnectorListener l : listeners) {
      try {
        l.onCallQueued(address, queued);
      } catch (Throwable t) {
        failed("onCallQueued", t);
      }
    }
  }
}
