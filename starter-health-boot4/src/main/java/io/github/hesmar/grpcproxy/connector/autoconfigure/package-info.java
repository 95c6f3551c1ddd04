/** The Spring Boot 4 health contributor; these classes ship in the starter jar. */
@NullMarked
package io.github.hesmar.grpcproxy.connector.autoconfigure;

import org.jspecify.annotations.NullMarked;
