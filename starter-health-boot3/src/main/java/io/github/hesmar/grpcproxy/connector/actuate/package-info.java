/** The Spring Boot 3 health contributor; these classes ship in the starter jar. */
@NullMarked
package io.github.hesmar.grpcproxy.connector.actuate;

import org.jspecify.annotations.NullMarked;
