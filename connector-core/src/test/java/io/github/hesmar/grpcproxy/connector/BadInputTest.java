package io.github.hesmar.grpcproxy.connector;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import java.time.Duration;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Bad addresses get a clear exception, no dialer call, and nothing cached. */
class BadInputTest {

  final TrackingDialer dialer = TrackingDialer.fake();
  final CachingConnector connector = dialer.inlineConnector().build();

  @AfterEach
  void tearDown() {
    connector.close();
  }

  static Stream<Arguments> badAddresses() {
    return Stream.of(
        Arguments.of("empty", "", "must not be empty"),
        Arguments.of("blank", "   ", "must not be blank"),
        Arguments.of("tab only", "\t", "must not be blank"),
        Arguments.of(
            "embedded space", "dns:///svc local:443", "whitespace, found U+0020 at index 10"),
        Arguments.of("trailing newline", "svc:443\n", "found U+000A at index 7"),
        Arguments.of("no-break space", "svc\u00A0:443", "whitespace, found U+00A0"),
        Arguments.of("NUL", "svc\u0000:443", "a control character, found U+0000 at index 3"),
        Arguments.of("DEL", "svc\u007F", "a control character, found U+007F"),
        Arguments.of("escape sequence", "\u001B[31msvc", "a control character, found U+001B"),
        Arguments.of(
            "zero-width space", "svc\u200B.local", "an invisible format character, found U+200B"),
        Arguments.of("byte order mark", "\uFEFFsvc", "an invisible format character, found U+FEFF"),
        Arguments.of("unpaired surrogate", "svc\uD800x", "an unpaired surrogate, found U+D800"),
        Arguments.of(
            "10,000 characters", "a".repeat(10_000), "10000 characters long; the limit is 2048"),
        Arguments.of("one over the limit", "a".repeat(2049), "2049 characters long"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badAddresses")
  void badAddressIsRejectedWithoutDialing(String what, String address, String message) {
    assertThatThrownBy(() -> connector.dial(address))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("address")
        .hasMessageContaining(message);
    assertThatThrownBy(() -> connector.dial(address, Duration.ofSeconds(1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> connector.closeOnRelease(address))
        .isInstanceOf(IllegalArgumentException.class);

    assertNothingDialedOrCached();
  }

  @Test
  void nullAddressIsRejectedEverywhere() {
    assertThatThrownBy(() -> connector.dial(null)).hasMessage("address");
    assertThatThrownBy(() -> connector.closeOnRelease(null)).hasMessage("address");
    assertThatThrownBy(() -> connector.release(null, null)).hasMessage("address");
    assertNothingDialedOrCached();
  }

  @Test
  void longestAcceptedAddressIsDialed() {
    String address = "a".repeat(CachingConnector.MAX_ADDRESS_LENGTH);
    connector.dial(address).close();
    assertThat(dialer.dialsOf(address)).isEqualTo(1);
  }

  @Test
  void longMessagesAreAbbreviated() {
    assertThatThrownBy(() -> connector.dial(" " + "a".repeat(1000)))
        .message()
        .hasSizeLessThan(200)
        .endsWith("...\"");
  }

  /**
   * Random strings from an alphabet rich in troublemakers: each is either rejected with an
   * IllegalArgumentException and nothing dialed or cached, or accepted, in which case it is dialed
   * exactly as given and holds none of the characters the rules forbid.
   */
  @Test
  void randomStringsAreRejectedCleanlyOrDialedVerbatim() {
    long seed = Long.getLong("badinput.seed", System.nanoTime());
    Random random = new Random(seed);
    String alphabet =
        "ab:/.-_[]%@09 \t\n\r\u0000\u0007\u001F\u007F\u0085\u00A0\u2028\u200B\uFEFF\uD800\uDC00é漢";
    int accepted = 0;
    for (int i = 0; i < 2_000; i++) {
      StringBuilder builder = new StringBuilder();
      int length = random.nextInt(8) == 0 ? 2040 + random.nextInt(20) : random.nextInt(12);
      for (int j = 0; j < length; j++) {
        builder.append(alphabet.charAt(random.nextInt(alphabet.length())));
      }
      String address = builder.toString();
      int dialsBefore = dialer.dials.get();
      try {
        connector.dial(address).close();
        accepted++;
        if (!acceptable(address) || dialer.dials.get() != dialsBefore + 1) {
          fail(
              "accepted a bad address "
                  + escaped(address)
                  + "; seed="
                  + seed
                  + " (replay with -Dbadinput.seed="
                  + seed
                  + ")");
        }
        assertThat(connector.closeOnRelease(address)).isTrue();
        connector.expire();
      } catch (IllegalArgumentException e) {
        if (acceptable(address)
            || dialer.dials.get() != dialsBefore
            || e.getMessage() == null
            || !e.getMessage().startsWith("address")) {
          fail(
              "wrongly rejected or dialed "
                  + escaped(address)
                  + ": "
                  + e.getMessage()
                  + "; seed="
                  + seed
                  + " (replay with -Dbadinput.seed="
                  + seed
                  + ")");
        }
      }
    }
    assertThat(connector.connections()).as("seed=%d", seed).isEmpty();
    assertThat(connector.connectionCount()).as("seed=%d", seed).isZero();
    assertThat(accepted).as("seed=%d: some random strings are valid", seed).isPositive();
  }

  /** An independent statement of the rules, by character class. */
  private static boolean acceptable(String address) {
    if (address.isEmpty() || address.length() > 2048) {
      return false;
    }
    for (int i = 0; i < address.length(); i++) {
      char c = address.charAt(i);
      boolean high = Character.isHighSurrogate(c);
      boolean low = Character.isLowSurrogate(c);
      if (high && (i + 1 >= address.length() || !Character.isLowSurrogate(address.charAt(i + 1)))) {
        return false;
      }
      if (low && (i == 0 || !Character.isHighSurrogate(address.charAt(i - 1)))) {
        return false;
      }
      if (c <= 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0x2028 || c == 0x200B || c == 0xFEFF) {
        return false;
      }
    }
    return true;
  }

  private static String escaped(String address) {
    StringBuilder out = new StringBuilder("\"");
    address
        .chars()
        .limit(60)
        .forEach(
            c ->
                out.append(
                    c >= 0x20 && c < 0x7F
                        ? String.valueOf((char) c)
                        : String.format("\\u%04X", c)));
    return out.append(address.length() > 60 ? "...\"" : "\"").toString();
  }

  private void assertNothingDialedOrCached() {
    assertThat(dialer.dials).hasValue(0);
    assertThat(connector.connections()).isEmpty();
    assertThat(connector.connectionCount()).isZero();
  }
}
