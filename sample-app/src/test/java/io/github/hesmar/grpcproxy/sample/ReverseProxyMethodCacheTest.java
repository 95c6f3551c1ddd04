package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.github.hesmar.grpcproxy.connector.Dialer;
import io.grpc.ServerMethodDefinition;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ReverseProxyMethodCacheTest {

  final CachingConnector connector = CachingConnector.builder().dialer(Dialer.plaintext()).build();
  final ReverseProxy proxy =
      new ReverseProxy(connector, Map.of("alpha", "127.0.0.1:1"), Duration.ofSeconds(1));

  @AfterEach
  void tearDown() {
    connector.close();
  }

  @Test
  void aMethodIsLookedUpOnceAndReused() {
    ServerMethodDefinition<?, ?> first = proxy.lookupMethod("pkg.Service/Method", null);
    ServerMethodDefinition<?, ?> second = proxy.lookupMethod("pkg.Service/Method", null);

    assertThat(second).isSameAs(first);
    assertThat(second.getMethodDescriptor().getFullMethodName()).isEqualTo("pkg.Service/Method");
  }

  @Test
  void methodNamesChosenByCallersFillTheCacheOnlyUpToItsBound() {
    for (int i = 0; i < ReverseProxy.MAX_CACHED_METHODS + 500; i++) {
      assertThat(proxy.lookupMethod("pkg.Service/M" + i, null).getMethodDescriptor())
          .extracting(d -> d.getFullMethodName())
          .isEqualTo("pkg.Service/M" + i);
    }

    assertThat(proxy.cachedMethods()).isEqualTo(ReverseProxy.MAX_CACHED_METHODS);
  }
}
