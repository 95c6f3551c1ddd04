package io.github.hesmar.grpcproxy.sample;

import io.grpc.MethodDescriptor;
import io.grpc.ServerCallHandler;
import io.grpc.stub.ServerCalls;

/** The backend method of the sample's unit tests: a unary call of raw bytes, echoed back. */
final class EchoMethod {

  static final MethodDescriptor<byte[], byte[]> ECHO =
      MethodDescriptor.newBuilder(ByteMarshaller.INSTANCE, ByteMarshaller.INSTANCE)
          .setFullMethodName("pkg.Service/Echo")
          .setType(MethodDescriptor.MethodType.UNARY)
          .build();

  private EchoMethod() {}

  /** A handler of {@link #ECHO} that answers each request with itself. */
  static ServerCallHandler<byte[], byte[]> echoing() {
    return ServerCalls.asyncUnaryCall(
        (request, response) -> {
          response.onNext(request);
          response.onCompleted();
        });
  }
}
