package io.github.hesmar.grpcproxy.sample;

import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;

/**
 * The proxy's marshaller: it passes a message through as its bytes, whatever the method.
 *
 * <p>One copy each way: from the received frame into an array of the message's exact size
 * (grpc-java's streams know their length), and from the array into the outgoing frame ({@link
 * Drainable}: no intermediate buffer). The array is kept, not the received stream, because the
 * channel may replay a message (a transparent retry) after the received frame is released.
 */
final class ByteMarshaller implements MethodDescriptor.Marshaller<byte[]> {

  static final MethodDescriptor.Marshaller<byte[]> INSTANCE = new ByteMarshaller();

  @Override
  public InputStream stream(byte[] value) {
    return new MessageStream(value);
  }

  @Override
  public byte[] parse(InputStream stream) {
    try {
      if (stream instanceof KnownLength) {
        byte[] message = new byte[stream.available()];
        int read = stream.readNBytes(message, 0, message.length);
        return read == message.length ? message : Arrays.copyOf(message, read);
      }
      return stream.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A message's bytes, written straight into the transport's buffer. */
  static final class MessageStream extends ByteArrayInputStream implements KnownLength, Drainable {

    MessageStream(byte[] message) {
      super(message);
    }

    @Override
    public synchronized int drainTo(OutputStream target) throws IOException {
      int length = count - pos;
      target.write(buf, pos, length);
      pos = count;
      return length;
    }
  }
}
