package io.github.hesmar.grpcproxy.sample;

import io.grpc.MethodDescriptor;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * The proxy's method definitions: one for any method name, passing messages as bytes to one
 * handler.
 *
 * <p>A definition is built on a method's first call and kept, so later calls build no descriptor.
 * Callers choose method names, so at most {@value #MAX_CACHED_METHODS} are kept; once the cache is
 * full, other methods get a definition built per call.
 *
 * <p>Threads: lookups run on many transport threads at once, on a concurrent map without a lock.
 * Two first lookups of one name may both build a definition; the map keeps one, and either serves.
 * For the same reason the bound may be passed by a few entries, never by more than the number of
 * lookups racing.
 */
final class MethodLookup {

  /** How many methods' definitions are kept. */
  static final int MAX_CACHED_METHODS = 1024;

  private final ServerCallHandler<byte[], byte[]> handler;
  private final ConcurrentMap<String, ServerMethodDefinition<byte[], byte[]>> methods =
      new ConcurrentHashMap<>();

  /** Definitions whose calls {@code handler} starts. */
  MethodLookup(ServerCallHandler<byte[], byte[]> handler) {
    this.handler = handler;
  }

  /** The definition of {@code methodName}, from the cache if it is there. */
  ServerMethodDefinition<byte[], byte[]> lookup(String methodName) {
    ServerMethodDefinition<byte[], byte[]> definition = methods.get(methodName);
    if (definition == null) {
      MethodDescriptor<byte[], byte[]> method =
          MethodDescriptor.newBuilder(ByteMarshaller.INSTANCE, ByteMarshaller.INSTANCE)
              .setFullMethodName(methodName)
              .setType(MethodDescriptor.MethodType.UNKNOWN)
              .build();
      definition = ServerMethodDefinition.create(method, handler);
      if (methods.size() < MAX_CACHED_METHODS) {
        methods.putIfAbsent(methodName, definition);
      }
    }
    return definition;
  }

  /** Returns how many methods' definitions are cached. */
  int cached() {
    return methods.size();
  }
}
