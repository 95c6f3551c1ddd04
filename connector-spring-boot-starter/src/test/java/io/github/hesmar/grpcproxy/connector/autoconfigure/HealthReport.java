package io.github.hesmar.grpcproxy.connector.autoconfigure;

import java.util.Map;

/** A health, as {@link BootLine#health} reads it from either Boot line's health API. */
record HealthReport(String status, Map<String, Object> details) {}
