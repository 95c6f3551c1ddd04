package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.grpc.CallOptions;
import io.grpc.ClientInterceptors;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A relay between two in-process servers: the front server's handler relays every call to the
 * backend over a channel leased from a connector that dials in-process channels.
 */
class RelayTest {

  static final MethodDescriptor<byte[], byte[]> ECHO = EchoMethod.ECHO;
  static final MethodDescriptor<byte[], byte[]> REFUSE =
      ECHO.toBuilder().setFullMethodName("pkg.Service/Refuse").build();

  static final Metadata.Key<String> CUSTOM =
      Metadata.Key.of("x-custom", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> DETAIL =
      Metadata.Key.of("x-detail", Metadata.ASCII_STRING_MARSHALLER);

  final String backendName = InProcessServerBuilder.generateName();
  final String frontName = InProcessServerBuilder.generateName();
  final AtomicReference<Metadata> backendHeaders = new AtomicReference<>();
  final CachingConnector connector =
      CachingConnector.builder()
          .dialer(name -> InProcessChannelBuilder.forName(name).build())
          .build();
  Server backend;
  Server front;
  ManagedChannel client;

  @BeforeEach
  void setUp() throws Exception {
    ServerServiceDefinition backendService =
        ServerServiceDefinition.builder("pkg.Service")
            .addMethod(ECHO, EchoMethod.echoing())
            .addMethod(
                REFUSE,
                (call, headers) -> {
                  Metadata trailers = new Metadata();
                  trailers.put(DETAIL, "why not");
                  call.close(Status.FAILED_PRECONDITION.withDescription("not now"), trailers);
                  return CallGuard.NOTHING;
                })
            .build();
    backend =
        InProcessServerBuilder.forName(backendName)
            .addService(
                ServerInterceptors.intercept(
                    backendService,
                    new ServerInterceptor() {
                      @Override
                      public <Q, R> ServerCall.Listener<Q> interceptCall(
                          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
                        backendHeaders.set(headers);
                        return Contexts.interceptCall(Context.current(), call, headers, next);
                      }
                    }))
            .build()
            .start();
    ServerCallHandler<byte[], byte[]> relay =
        (call, headers) ->
            Relay.open(
                CallGuard.current(),
                call,
                headers,
                connector.dial(backendName, Duration.ofSeconds(5)),
                "backend",
                backendName);
    front =
        InProcessServerBuilder.forName(frontName)
            .addService(
                ServerServiceDefinition.builder("pkg.Service")
                    .addMethod(ECHO, relay)
                    .addMethod(REFUSE, relay)
                    .build())
            .addStreamTracerFactory(CallGuard.FACTORY)
            .build()
            .start();
    client = InProcessChannelBuilder.forName(frontName).build();
  }

  @AfterEach
  void tearDown() {
    client.shutdownNow();
    front.shutdownNow();
    connector.close();
    backend.shutdownNow();
  }

  @Test
  void aMessageReachesTheBackendAndItsReplyComesBack() {
    byte[] reply =
        ClientCalls.blockingUnaryCall(client, ECHO, CallOptions.DEFAULT, new byte[] {1, 2, 3});

    assertThat(reply).containsExactly(1, 2, 3);
  }

  @Test
  void theCallsHeadersReachTheBackendWithoutTheRouteHeader() {
    Metadata headers = new Metadata();
    headers.put(ReverseProxy.ROUTE, "backend");
    headers.put(CUSTOM, "kept");

    ClientCalls.blockingUnaryCall(
        ClientInterceptors.intercept(client, MetadataUtils.newAttachHeadersInterceptor(headers)),
        ECHO,
        CallOptions.DEFAULT,
        new byte[0]);

    assertThat(backendHeaders.get().get(CUSTOM)).isEqualTo("kept");
    assertThat(backendHeaders.get().containsKey(ReverseProxy.ROUTE)).isFalse();
  }

  @Test
  void theBackendsStatusAndTrailersReachTheCallerUnchanged() {
    assertThatThrownBy(
            () -> ClientCalls.blockingUnaryCall(client, REFUSE, CallOptions.DEFAULT, new byte[0]))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
              assertThat(e.getStatus().getDescription()).isEqualTo("not now");
              assertThat(e.getTrailers()).isNotNull();
              assertThat(e.getTrailers().get(DETAIL)).isEqualTo("why not");
            });
  }
}
