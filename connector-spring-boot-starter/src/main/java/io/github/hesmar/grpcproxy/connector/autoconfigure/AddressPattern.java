package io.github.hesmar.grpcproxy.connector.autoconfigure;

import static java.util.Objects.requireNonNull;

import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The pattern of a {@code grpc.connector.targets.<name>.pattern}, compiled once: a glob ({@code *}
 * any run of characters, {@code ?} one character, everything else literal) or, after the prefix
 * {@code regex:}, a Java regular expression; either must match the whole address. Immutable and
 * thread-safe.
 */
final class AddressPattern {

  /** The prefix of a pattern that is a regular expression rather than a glob. */
  static final String REGEX_PREFIX = "regex:";

  private final String source;
  private final Pattern regex;

  private AddressPattern(String source, Pattern regex) {
    this.source = source;
    this.regex = regex;
  }

  /**
   * Compiles {@code pattern}.
   *
   * @throws IllegalArgumentException if it is blank or, after {@code regex:}, not a valid regular
   *     expression; the message says why, without the property name
   */
  static AddressPattern compile(String pattern) {
    requireNonNull(pattern, "pattern");
    if (pattern.isBlank()) {
      throw new IllegalArgumentException("must not be blank, for example 127.0.0.1:*");
    }
    if (pattern.startsWith(REGEX_PREFIX)) {
      String expression = pattern.substring(REGEX_PREFIX.length());
      if (expression.isBlank()) {
        throw new IllegalArgumentException(
            "must have a regular expression after regex:, was '" + pattern + "'");
      }
      try {
        return new AddressPattern(pattern, Pattern.compile(expression));
      } catch (PatternSyntaxException e) {
        throw new IllegalArgumentException(
            "must be a valid regular expression after regex:, was '"
                + pattern
                + "' ("
                + e.getDescription()
                + " near index "
                + e.getIndex()
                + ")",
            e);
      }
    }
    return new AddressPattern(pattern, Pattern.compile(globToRegex(pattern)));
  }

  private static String globToRegex(String glob) {
    StringBuilder regex = new StringBuilder(glob.length() + 16);
    StringBuilder literal = new StringBuilder();
    for (int i = 0; i < glob.length(); i++) {
      char c = glob.charAt(i);
      if (c == '*' || c == '?') {
        if (literal.length() > 0) {
          regex.append(Pattern.quote(literal.toString()));
          literal.setLength(0);
        }
        regex.append(c == '*' ? ".*" : ".");
      } else {
        literal.append(c);
      }
    }
    if (literal.length() > 0) {
      regex.append(Pattern.quote(literal.toString()));
    }
    return regex.toString();
  }

  /** Whether the whole {@code address} matches. */
  boolean matches(String address) {
    return regex.matcher(address).matches();
  }

  @Override
  public String toString() {
    return source;
  }
}
