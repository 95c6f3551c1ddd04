package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.CallOptions;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCallHandler;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ClientCalls;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class CallGuardTest {

  static final MethodDescriptor<byte[], byte[]> METHOD =
      MethodDescriptor.newBuilder(ByteMarshaller.INSTANCE, ByteMarshaller.INSTANCE)
          .setFullMethodName("pkg.Service/Method")
          .setType(MethodDescriptor.MethodType.UNARY)
          .build();

  final String name = InProcessServerBuilder.generateName();
  final ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
  Server server;

  @AfterEach
  void tearDown() {
    channel.shutdownNow();
    if (server != null) {
      server.shutdownNow();
    }
  }

  /** Serves {@link #METHOD} with {@code handler}, with the guard's tracer or without. */
  void serve(ServerCallHandler<byte[], byte[]> handler, boolean withTracer) throws Exception {
    InProcessServerBuilder builder =
        InProcessServerBuilder.forName(name)
            .addService(
                ServerServiceDefinition.builder("pkg.Service").addMethod(METHOD, handler).build());
    if (withTracer) {
      builder.addStreamTracerFactory(CallGuard.FACTORY);
    }
    server = builder.build().start();
  }

  byte[] call() {
    return ClientCalls.blockingUnaryCall(channel, METHOD, CallOptions.DEFAULT, new byte[0]);
  }

  @Test
  void aCallOnAServerWithTheTracerHasOneGuardInItsContext() throws Exception {
    List<CallGuard> seen = new CopyOnWriteArrayList<>();
    serve(
        (call, headers) -> {
          seen.add(CallGuard.current());
          seen.add(CallGuard.current());
          return CallGuard.current().refuse(call, Status.ABORTED);
        },
        true);

    assertThatThrownBy(this::call).isInstanceOf(StatusRuntimeException.class);
    assertThat(seen).hasSize(2);
    assertThat(seen.get(1)).isSameAs(seen.get(0));
  }

  @Test
  void withoutTheTracerEachLookUpGivesAGuardOfItsOwn() throws Exception {
    List<CallGuard> seen = new CopyOnWriteArrayList<>();
    serve(
        (call, headers) -> {
          seen.add(CallGuard.current());
          seen.add(CallGuard.current());
          return CallGuard.current().refuse(call, Status.ABORTED);
        },
        false);

    assertThatThrownBy(this::call).isInstanceOf(StatusRuntimeException.class);
    assertThat(seen).hasSize(2);
    assertThat(seen.get(1)).isNotSameAs(seen.get(0));
  }

  @Test
  void aGuardIsTheCurrentOneInTheContextItFilters() throws Exception {
    CallGuard guard = new CallGuard();

    assertThat(guard.filterContext(Context.ROOT).call(CallGuard::current)).isSameAs(guard);
  }

  @Test
  void aStreamClosedWithAnErrorEndsTheCallAndOneClosedOkDoesNot() {
    CallGuard ok = new CallGuard();
    CallGuard failed = new CallGuard();

    ok.streamClosed(Status.OK);
    failed.streamClosed(Status.CANCELLED);

    assertThat(ok.ended()).isFalse();
    assertThat(failed.ended()).isTrue();
  }

  @Test
  void aRefusedCallIsClosedWithTheGivenStatus() throws Exception {
    serve(
        (call, headers) ->
            CallGuard.current()
                .refuse(call, Status.PERMISSION_DENIED.withDescription("not for you")),
        true);

    assertThatThrownBy(this::call)
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
              assertThat(e.getStatus().getDescription()).isEqualTo("not for you");
            });
  }

  @Test
  void aCallWhoseGuardHasEndedIsNotClosedByARefusal() throws Exception {
    serve(
        (call, headers) -> {
          CallGuard guard = CallGuard.current();
          guard.streamClosed(Status.CANCELLED); // As the transport does when it ends the call.
          assertThat(guard.refuse(call, Status.PERMISSION_DENIED)).isSameAs(CallGuard.NOTHING);
          call.close(Status.ABORTED.withDescription("closed by the test"), new Metadata());
          return CallGuard.NOTHING;
        },
        true);

    assertThatThrownBy(this::call)
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getDescription()).isEqualTo("closed by the test"));
  }
}
