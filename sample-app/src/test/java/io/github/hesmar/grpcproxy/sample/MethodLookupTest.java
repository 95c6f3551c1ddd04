package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.MethodDescriptor;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import org.junit.jupiter.api.Test;

class MethodLookupTest {

  final ServerCallHandler<byte[], byte[]> handler = (call, headers) -> CallGuard.NOTHING;
  final MethodLookup lookup = new MethodLookup(handler);

  @Test
  void aMethodIsLookedUpOnceAndReused() {
    ServerMethodDefinition<?, ?> first = lookup.lookup("pkg.Service/Method");
    ServerMethodDefinition<?, ?> second = lookup.lookup("pkg.Service/Method");

    assertThat(second).isSameAs(first);
    assertThat(second.getMethodDescriptor().getFullMethodName()).isEqualTo("pkg.Service/Method");
  }

  @Test
  void anyMethodIsPassedAsBytesToTheOneHandler() {
    ServerMethodDefinition<byte[], byte[]> definition = lookup.lookup("any.Thing/AtAll");

    assertThat(definition.getServerCallHandler()).isSameAs(handler);
    MethodDescriptor<byte[], byte[]> method = definition.getMethodDescriptor();
    assertThat(method.getType()).isEqualTo(MethodDescriptor.MethodType.UNKNOWN);
    assertThat(method.getRequestMarshaller()).isSameAs(ByteMarshaller.INSTANCE);
    assertThat(method.getResponseMarshaller()).isSameAs(ByteMarshaller.INSTANCE);
  }

  @Test
  void methodNamesChosenByCallersFillTheCacheOnlyUpToItsBound() {
    for (int i = 0; i < MethodLookup.MAX_CACHED_METHODS + 500; i++) {
      assertThat(lookup.lookup("pkg.Service/M" + i).getMethodDescriptor())
          .extracting(d -> d.getFullMethodName())
          .isEqualTo("pkg.Service/M" + i);
    }

    assertThat(lookup.cached()).isEqualTo(MethodLookup.MAX_CACHED_METHODS);
  }

  @Test
  void aMethodPastTheBoundGetsADefinitionOfItsOwnPerCall() {
    for (int i = 0; i < MethodLookup.MAX_CACHED_METHODS; i++) {
      lookup.lookup("pkg.Service/M" + i);
    }

    ServerMethodDefinition<?, ?> first = lookup.lookup("pkg.Service/Late");
    ServerMethodDefinition<?, ?> second = lookup.lookup("pkg.Service/Late");

    assertThat(second).isNotSameAs(first);
    assertThat(second.getMethodDescriptor().getFullMethodName()).isEqualTo("pkg.Service/Late");
    assertThat(lookup.lookup("pkg.Service/M0")).isSameAs(lookup.lookup("pkg.Service/M0"));
  }
}
