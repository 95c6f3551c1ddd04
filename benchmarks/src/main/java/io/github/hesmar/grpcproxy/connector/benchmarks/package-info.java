/**
 * JMH benchmarks of {@link io.github.hesmar.grpcproxy.connector.CachingConnector} and the baselines
 * it is measured against in the same runs: {@link
 * io.github.hesmar.grpcproxy.connector.benchmarks.LimitBaseline} (the least a lease can cost) and
 * {@link io.github.hesmar.grpcproxy.connector.benchmarks.GlobalLockConnector} (a first port of the
 * Go algorithm). Build with {@code ./mvnw -B package -pl benchmarks -am -DskipTests}, then run
 * {@code java -jar benchmarks/target/benchmarks.jar}; each benchmark's Javadoc gives its command,
 * and {@code BENCHMARKS.md} at the top of the repository gives the results.
 */
@NullMarked
package io.github.hesmar.grpcproxy.connector.benchmarks;

import org.jspecify.annotations.NullMarked;
