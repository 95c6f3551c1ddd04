package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.http.HttpStatusCode;
import org.springframework.web.client.RestClient;

/** The block the started sample logs for a first-time user, on a started app with random ports. */
@ExtendWith(OutputCaptureExtension.class)
class StartupSummaryTest {

  @Test
  void startedSampleLogsOneBlockWithItsRealAddressesAndCommandsThatWork(CapturedOutput output) {
    try (ConfigurableApplicationContext context =
        new SpringApplicationBuilder(SampleApplication.class)
            .run("--sample.proxy.port=0", "--server.port=0", "--management.server.port=0")) {
      int httpPort = port(context, "local.server.port");
      int managementPort = port(context, "local.management.port");
      int grpcPort = context.getBean(ProxyServer.class).port();
      DemoBackends backends = context.getBean(DemoBackends.class);
      String alpha = backends.get("alpha").target();
      String beta = backends.get("beta").target();

      List<String> lines = output.getOut().lines().toList();
      int start = indexOf(lines, "The gRPC reverse proxy is ready.");
      assertThat(lines.subList(start, Math.min(lines.size(), start + 9)))
          .as("the block")
          .satisfiesExactly(
              ready -> assertThat(ready).contains("StartupSummary"),
              grpc ->
                  assertThat(grpc)
                      .endsWith(
                          "gRPC proxy:    127.0.0.1:"
                              + grpcPort
                              + " (the request header x-route chooses the route)"),
              routes ->
                  assertThat(routes)
                      .isEqualTo("  routes:        alpha -> " + alpha + ", beta -> " + beta),
              demos ->
                  assertThat(demos)
                      .isEqualTo("  demo backends: alpha at " + alpha + ", beta at " + beta),
              tryLine ->
                  assertThat(tryLine).startsWith("  Try (the gRPC call needs python3 with grpcio"),
              probe ->
                  assertThat(probe)
                      .isEqualTo("    curl -s http://127.0.0.1:" + httpPort + "/probe/alpha"),
              connections ->
                  assertThat(connections)
                      .isEqualTo(
                          "    curl -s http://127.0.0.1:"
                              + managementPort
                              + "/actuator/grpcconnections"),
              python ->
                  assertThat(python)
                      .startsWith(
                          "    python3 -c \"import grpc; call = grpc.insecure_channel('127.0.0.1:"
                              + grpcPort
                              + "')")
                      .contains("metadata=[('x-route', 'alpha')]"));
      assertThat(output.getOut()).containsOnlyOnce("The gRPC reverse proxy is ready.");

      // The two curl commands answer 200 (the python one is run by hand: it needs grpcio).
      RestClient http =
          RestClient.builder().defaultStatusHandler(HttpStatusCode::isError, (q, r) -> {}).build();
      Matcher curl = Pattern.compile("curl -s (\\S+)").matcher(output.getOut());
      int urls = 0;
      while (curl.find()) {
        urls++;
        assertThat(
                http.get().uri(curl.group(1)).retrieve().toBodilessEntity().getStatusCode().value())
            .as(curl.group(1))
            .isEqualTo(200);
      }
      assertThat(urls).isEqualTo(2);
    }
  }

  private static int port(ConfigurableApplicationContext context, String key) {
    return context.getEnvironment().getRequiredProperty(key, Integer.class);
  }

  private static int indexOf(List<String> lines, String text) {
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).contains(text)) {
        return i;
      }
    }
    throw new AssertionError("No line contains '" + text + "'");
  }
}
