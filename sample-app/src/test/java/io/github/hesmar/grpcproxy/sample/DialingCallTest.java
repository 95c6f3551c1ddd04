package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCallHandler;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ClientCalls;
import java.io.IOException;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A dialing call on an in-process front server, whose handler makes every call wait for its
 * backend's channel, to an in-process backend ({@code route}) or to a target whose dials fail
 * ({@code down}).
 */
class DialingCallTest {

  static final MethodDescriptor<byte[], byte[]> ECHO = EchoMethod.ECHO;

  final String backendName = InProcessServerBuilder.generateName();
  final String frontName = InProcessServerBuilder.generateName();
  final CachingConnector connector =
      CachingConnector.builder()
          .dialer(
              name -> {
                if (name.equals("down")) {
                  throw new IOException("Connection refused");
                }
                return InProcessChannelBuilder.forName(name).build();
              })
          .build();
  Server backend;
  Server front;
  ManagedChannel client;

  @BeforeEach
  void setUp() throws Exception {
    backend =
        InProcessServerBuilder.forName(backendName)
            .addService(
                ServerServiceDefinition.builder("pkg.Service")
                    .addMethod(ECHO, EchoMethod.echoing())
                    .build())
            .build()
            .start();
    client = InProcessChannelBuilder.forName(frontName).build();
  }

  /** Starts the front server, whose calls are dialing calls to {@code target}. */
  void frontTo(String target) throws IOException {
    ServerCallHandler<byte[], byte[]> dialing =
        (call, headers) -> {
          DialingCall listener =
              new DialingCall(
                  connector,
                  Duration.ofSeconds(5),
                  CallGuard.current(),
                  call,
                  headers,
                  "route",
                  target);
          listener.startDial();
          return listener;
        };
    front =
        InProcessServerBuilder.forName(frontName)
            .addService(
                ServerServiceDefinition.builder("pkg.Service").addMethod(ECHO, dialing).build())
            .addStreamTracerFactory(CallGuard.FACTORY)
            .build()
            .start();
  }

  @AfterEach
  void tearDown() {
    client.shutdownNow();
    if (front != null) {
      front.shutdownNow();
    }
    connector.close();
    backend.shutdownNow();
  }

  byte[] call(byte[] request) {
    return ClientCalls.blockingUnaryCall(client, ECHO, CallOptions.DEFAULT, request);
  }

  @Test
  void aCallWhoseChannelHadToBeDialedIsRelayedOnceTheDialIsDone() throws Exception {
    frontTo(backendName);

    assertThat(call(new byte[] {7, 8})).containsExactly(7, 8);
  }

  @Test
  void aFailedDialEndsTheCallWithTheBackendUnavailable() throws Exception {
    frontTo("down");

    assertThatThrownBy(() -> call(new byte[0]))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
              assertThat(e.getStatus().getDescription()).isEqualTo("backend route unavailable");
            });
  }

  @Test
  void aDialOnAClosedConnectorEndsTheCallAsTheProxyShutsDown() throws Exception {
    frontTo(backendName);
    connector.close();

    assertThatThrownBy(() -> call(new byte[0]))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
              assertThat(e.getStatus().getDescription()).isEqualTo("Proxy is shutting down");
            });
  }
}
