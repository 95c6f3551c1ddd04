package io.github.hesmar.grpcproxy.connector.actuate;

import java.util.Map;

/** A health, as {@link BootLineIndicator#health} reads it from either Boot line's indicator. */
record IndicatorHealth(String status, Map<String, Object> details) {}
