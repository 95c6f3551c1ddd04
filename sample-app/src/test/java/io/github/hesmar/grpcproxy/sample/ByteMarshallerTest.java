package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.CallOptions;
import io.grpc.KnownLength;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ClientCalls;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ByteMarshallerTest {

  final MethodDescriptor.Marshaller<byte[]> marshaller = ByteMarshaller.INSTANCE;

  @Test
  void aMessageComesBackAsTheSameBytes() {
    byte[] message = "hello".getBytes(StandardCharsets.UTF_8);

    assertThat(marshaller.parse(marshaller.stream(message))).containsExactly(message);
  }

  @Test
  void aStreamOfKnownLengthIsReadIntoAnArrayOfExactlyThatLength() {
    InputStream stream = marshaller.stream(new byte[] {1, 2, 3});

    assertThat(stream).isInstanceOf(KnownLength.class);
    assertThat(marshaller.parse(stream)).containsExactly(1, 2, 3);
  }

  @Test
  void aStreamOfKnownLengthThatEndsEarlyGivesTheBytesItHad() {
    InputStream shortOfItsLength =
        new KnownLengthStream(new byte[] {1, 2}) {
          @Override
          public synchronized int available() {
            return 5;
          }
        };

    assertThat(marshaller.parse(shortOfItsLength)).containsExactly(1, 2);
  }

  @Test
  void aStreamOfUnknownLengthIsReadToItsEnd() {
    assertThat(marshaller.parse(new ByteArrayInputStream(new byte[] {4, 5, 6})))
        .containsExactly(4, 5, 6);
  }

  @Test
  void aMessageStreamDrainsItsRemainingBytesOnce() throws Exception {
    ByteMarshaller.MessageStream stream = new ByteMarshaller.MessageStream(new byte[] {1, 2, 3});
    assertThat(stream.read()).isEqualTo(1);
    ByteArrayOutputStream target = new ByteArrayOutputStream();

    assertThat(stream.drainTo(target)).isEqualTo(2);
    assertThat(stream.drainTo(target)).isZero();
    assertThat(target.toByteArray()).containsExactly(2, 3);
    assertThat(stream.available()).isZero();
  }

  @Test
  void aCallWithTheMarshallerOnBothSidesCarriesTheBytesThereAndBack() throws Exception {
    MethodDescriptor<byte[], byte[]> method = EchoMethod.ECHO; // ByteMarshaller both ways
    String name = InProcessServerBuilder.generateName();
    Server server =
        InProcessServerBuilder.forName(name)
            .addService(
                ServerServiceDefinition.builder("pkg.Service")
                    .addMethod(method, EchoMethod.echoing())
                    .build())
            .build()
            .start();
    ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
    try {
      byte[] request = {0, 1, 2, (byte) 255};

      assertThat(ClientCalls.blockingUnaryCall(channel, method, CallOptions.DEFAULT, request))
          .containsExactly(request);
    } finally {
      channel.shutdownNow();
      server.shutdownNow();
    }
  }

  /** A stream that says it knows its length, as grpc-java's received messages do. */
  static class KnownLengthStream extends ByteArrayInputStream implements KnownLength {
    KnownLengthStream(byte[] bytes) {
      super(bytes);
    }
  }
}
