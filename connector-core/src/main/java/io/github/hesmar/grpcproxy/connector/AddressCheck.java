package io.github.hesmar.grpcproxy.connector;

import static java.util.Objects.requireNonNull;

/** The rules for a target address: what {@link CachingConnector} accepts, and the messages. */
final class AddressCheck {

  /** Longest address accepted. */
  static final int MAX_LENGTH = 2048;

  private AddressCheck() {}

  /**
   * Checks an address given to {@link CachingConnector#dial(String)} or {@link
   * CachingConnector#closeOnRelease(String)}.
   *
   * @throws NullPointerException if null
   * @throws IllegalArgumentException saying what is wrong with it
   */
  static String check(String address) {
    requireNonNull(address, "address");
    if (address.isEmpty()) {
      throw new IllegalArgumentException("address must not be empty");
    }
    if (address.length() > MAX_LENGTH) {
      throw new IllegalArgumentException(
          "address is " + address.length() + " characters long; the limit is " + MAX_LENGTH);
    }
    if (address.isBlank()) {
      throw new IllegalArgumentException("address must not be blank");
    }
    for (int i = 0; i < address.length(); ) {
      int c = address.codePointAt(i);
      String problem = null;
      if (Character.isWhitespace(c) || Character.isSpaceChar(c)) {
        problem = "whitespace";
      } else if (Character.isISOControl(c)) {
        problem = "a control character";
      } else if (Character.getType(c) == Character.FORMAT) {
        problem = "an invisible format character";
      } else if (Character.isSurrogate((char) c) && Character.charCount(c) == 1) {
        problem = "an unpaired surrogate";
      }
      if (problem != null) {
        throw new IllegalArgumentException(
            String.format(
                "address must not contain %s, found U+%04X at index %d of \"%s\"",
                problem, c, i, printable(address)));
      }
      i += Character.charCount(c);
    }
    return address;
  }

  private static String printable(String address) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < address.length() && out.length() < 80; i++) {
      char c = address.charAt(i);
      if (c >= 0x20 && c < 0x7F) {
        out.append(c);
      } else {
        out.append(String.format("\\u%04X", (int) c));
      }
    }
    return out.length() < address.length() ? out.append("...").toString() : out.toString();
  }
}
