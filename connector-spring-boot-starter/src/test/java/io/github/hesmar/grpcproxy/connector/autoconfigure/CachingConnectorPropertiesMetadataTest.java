package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;

import com.jayway.jsonpath.DocumentContext;
import com.jayway.jsonpath.JsonPath;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The configuration metadata that the build generates from {@link CachingConnectorProperties} (what
 * IDEs complete and document), read from the starter's own classes.
 */
class CachingConnectorPropertiesMetadataTest {

  @ParameterizedTest(name = "{0} defaults to {1}")
  @CsvSource({
    "grpc.connector.pool.max-calls-per-channel, 100, HTTP/2 connection",
    "grpc.connector.pool.max-channels-per-address, 8, one channel per address",
    "grpc.connector.dial-timeout, 30s, How long a dial may be in flight",
    "grpc.connector.silent-channel.retire, true, Whether to retire silent channels",
    "grpc.connector.silent-channel.failed-calls, 3, Calls in a row on a channel",
    "grpc.connector.silent-channel.silence, 10s, How long the server must stay silent",
  })
  void metadataDescribesThePropertyWithItsDefault(
      String property, String defaultValue, String described) throws Exception {
    Map<String, Object> entry = entry(property);
    assertThat(String.valueOf(entry.get("defaultValue"))).isEqualTo(defaultValue);
    assertThat((String) entry.get("description")).contains(described);
    assertThat((String) entry.get("sourceType"))
        .startsWith(CachingConnectorProperties.class.getName());
  }

  @ParameterizedTest(name = "{0} defaults to {1}")
  @CsvSource({
    "grpc.connector.channel.keepalive.enabled, true, Whether to send keepalive pings",
    "grpc.connector.channel.keepalive.time, 5m, too_many_pings",
    "grpc.connector.channel.keepalive.timeout, 20s, acknowledgement",
    "grpc.connector.channel.keepalive.without-calls, false, Servers refuse those by default",
  })
  void metadataDescribesTheKeepaliveOptionsWithTheirDefaults(
      String property, String defaultValue, String described) throws Exception {
    Map<String, Object> entry = entry(property);
    assertThat(String.valueOf(entry.get("defaultValue"))).isEqualTo(defaultValue);
    assertThat((String) entry.get("description")).contains(described);
  }

  @ParameterizedTest(name = "{0} has no default")
  @CsvSource({
    "grpc.connector.maximum-channels, java.lang.Integer, least recently used first",
    "grpc.connector.max-channel-age, java.time.Duration, resolved again",
  })
  void metadataDescribesAnOptionalPropertyWithoutADefault(
      String property, String type, String described) throws Exception {
    Map<String, Object> entry = entry(property);
    assertThat(entry).doesNotContainKey("defaultValue").containsEntry("type", type);
    assertThat((String) entry.get("description")).contains(described);
    assertThat((String) entry.get("sourceType"))
        .isEqualTo(CachingConnectorProperties.class.getName());
  }

  @Test
  void metadataDescribesTheTargetsByTheirOptionsType() throws Exception {
    Map<String, Object> entry = entry("grpc.connector.targets");
    // IDEs complete grpc.connector.targets.<name>.* from the map's value type.
    assertThat(entry)
        .containsEntry(
            "type", "java.util.Map<java.lang.String," + TargetProperties.class.getName() + ">")
        .containsEntry("sourceType", CachingConnectorProperties.class.getName());
    assertThat((String) entry.get("description"))
        .contains("a glob where * matches any run of characters", "regex:")
        .contains("an unset key keeps the global value")
        .contains("The first target whose pattern matches an address wins, in declaration order");
  }

  /** The one metadata entry of {@code property}. */
  private static Map<String, Object> entry(String property) throws Exception {
    List<Map<String, Object>> entries =
        metadata().read("$.properties[?(@.name == '" + property + "')]");
    assertThat(entries).as(property).hasSize(1);
    return entries.get(0);
  }

  private static DocumentContext metadata() throws IOException, URISyntaxException {
    // The starter's own file, not that of another jar on the class path.
    URI classes =
        CachingConnectorProperties.class
            .getProtectionDomain()
            .getCodeSource()
            .getLocation()
            .toURI();
    try (InputStream in =
        classes.resolve("META-INF/spring-configuration-metadata.json").toURL().openStream()) {
      return JsonPath.parse(in);
    }
  }
}
