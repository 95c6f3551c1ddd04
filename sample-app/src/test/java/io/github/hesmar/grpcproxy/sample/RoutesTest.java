package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RoutesTest {

  final Routes routes = new Routes(Map.of("beta", "127.0.0.1:2", "alpha", "127.0.0.1:1"));

  @Test
  void aConfiguredRouteLeadsToItsTargetAndAnyOtherToNone() {
    assertThat(routes.target("alpha")).isEqualTo("127.0.0.1:1");
    assertThat(routes.target("gamma")).isNull();
    assertThat(routes.target("ALPHA")).isNull();
  }

  @Test
  void theRoutesAreListedSortedByName() {
    assertThat(routes.sorted())
        .containsExactly(Map.entry("alpha", "127.0.0.1:1"), Map.entry("beta", "127.0.0.1:2"));
  }

  @Test
  void theRoutesAreACopyOfTheConfiguration() {
    Map<String, String> configured = new HashMap<>(Map.of("alpha", "127.0.0.1:1"));
    Routes copied = new Routes(configured);

    configured.put("beta", "127.0.0.1:2");
    copied.sorted().put("gamma", "127.0.0.1:3");

    assertThat(copied.target("beta")).isNull();
    assertThat(copied.target("gamma")).isNull();
  }

  @Test
  void aRouteUpToTheEchoLimitIsRepeatedWhole() {
    String route = "r".repeat(Routes.MAX_ROUTE_ECHO);

    assertThat(Routes.echo(route)).isEqualTo(route);
  }

  @Test
  void aLongerRouteIsCutToTheEchoLimitAndItsLengthGiven() {
    String route = "r".repeat(Routes.MAX_ROUTE_ECHO) + "s";

    assertThat(Routes.echo(route))
        .isEqualTo("r".repeat(Routes.MAX_ROUTE_ECHO) + "... (65 characters)");
  }

  @Test
  void aCallWithoutARouteIsAnInvalidArgument() {
    assertThat(Routes.missing().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(Routes.missing().getDescription()).isEqualTo("Missing request header x-route");
  }

  @Test
  void anUnknownRouteIsNotFoundAndNamedAsTheCallerSentIt() {
    Status status = Routes.unknown("gamma");

    assertThat(status.getCode()).isEqualTo(Status.Code.NOT_FOUND);
    assertThat(status.getDescription()).isEqualTo("Unknown route 'gamma' in x-route");
    assertThat(status.getDescription()).doesNotContain("alpha", "beta");
  }
}
