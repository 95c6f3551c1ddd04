package io.github.hesmar.grpcproxy.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatIllegalStateException;

import io.github.hesmar.grpcproxy.connector.CachingConnector;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.util.unit.DataSize;

/** Bad proxy settings fail the start with a message naming the property and its value. */
class ProxySettingsTest {

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"0B", "-1B", "2GB"})
  void maxMessageSizeOutOfRangeIsRefused(String size) {
    SampleProperties.Proxy proxy = new SampleProperties.Proxy();
    proxy.setMaxMessageSize(DataSize.parse(size));

    assertThatIllegalStateException()
        .isThrownBy(() -> ProxyConfiguration.maxMessageSize(proxy))
        .withMessageStartingWith("sample.proxy.max-message-size=" + DataSize.parse(size))
        .withMessageContaining("must be at least 1B");
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"1B", "4MB", "1GB"})
  void maxMessageSizeInRangeIsTaken(String size) {
    SampleProperties.Proxy proxy = new SampleProperties.Proxy();
    proxy.setMaxMessageSize(DataSize.parse(size));

    assertThat(ProxyConfiguration.maxMessageSize(proxy)).isEqualTo(DataSize.parse(size).toBytes());
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"no-such-host.invalid"})
  void unknownAddressIsRefused(String address) {
    SampleProperties.Proxy properties = new SampleProperties.Proxy();
    properties.setAddress(address);
    properties.setPort(0);
    try (CachingConnector connector = CachingConnector.builder().build()) {
      ProxyServer server =
          new ProxyServer(new ReverseProxy(connector, Map.of(), Duration.ofSeconds(1)), properties);

      assertThatIllegalStateException()
          .isThrownBy(server::start)
          .withMessage("sample.proxy.address=" + address + " is not a known host or address");
      assertThat(server.isRunning()).isFalse();
    }
  }
}
