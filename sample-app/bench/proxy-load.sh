#!/usr/bin/env bash
# Load benchmark of the sample proxy: unary grpc.testing.SimpleService/UnaryRpc calls at
# 4 connections x 10 streams and 50 x 100, against one demo backend running in its own JVM
# (direct: the baseline), through the sample proxy, and through nginx grpc_pass when nginx is
# installed, back to back in one run. Prints calls/s, p50, p99 and errors for each.
#
# Run from the repository root (builds the sample's jar if it is missing):
#   sample-app/bench/proxy-load.sh
#
# Uses h2load (Debian/Ubuntu: apt-get install nghttp2-client) when installed, else the Java load
# generator in the sample's jar. Settings (environment variables):
#   JVM_WARMUP=30                  seconds of load through each Java target (backend, proxies)
#                                  before any row is measured: the proxy's JIT needs it
#   WARMUP=5 DURATION=15           seconds of warm-up and of measurement, per target and load
#   LOADS="4x10 50x100"            connections x streams per connection
#   TARGETS="direct proxy nginx"   what to measure, in this order
#   LOAD_TOOL=h2load|java          force a load generator
#   PROXY_PORT=19090 PROXY_HTTP_PORT=18080 PROXY_MANAGEMENT_PORT=18081 NGINX_PORT=19091
#                                  fixed loopback ports (the baseline: 19092, 18082, 18083)
#   PROXY_JAVA_OPTS="..."          extra JVM options of the proxy (e.g. -XX:StartFlightRecording=...)
#   PROXY_ARGS="..."               extra arguments of the proxy (not the baseline), such as
#                                  --grpc.connector.observation.enabled=false
#   BACKEND_JAVA_OPTS="..."        extra JVM options of the backend
#   BASELINE_JAR=path              also measure the proxy from another build of the jar, as the
#                                  target "baseline" (add it to TARGETS), for before/after runs
#   KEEP_TMP=1                     keep the temporary directory (logs, nginx config) after the run
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
JAR=sample-app/target/sample-app-0.1.0-SNAPSHOT.jar
JVM_WARMUP=${JVM_WARMUP:-30}
WARMUP=${WARMUP:-5}
DURATION=${DURATION:-15}
LOADS=${LOADS:-"4x10 50x100"}
TARGETS=${TARGETS:-"direct proxy nginx"}
PROXY_PORT=${PROXY_PORT:-19090}
PROXY_HTTP_PORT=${PROXY_HTTP_PORT:-18080}
PROXY_MANAGEMENT_PORT=${PROXY_MANAGEMENT_PORT:-18081}
BASELINE_PORT=${BASELINE_PORT:-19092}
BASELINE_HTTP_PORT=${BASELINE_HTTP_PORT:-18082}
BASELINE_MANAGEMENT_PORT=${BASELINE_MANAGEMENT_PORT:-18083}
NGINX_PORT=${NGINX_PORT:-19091}
PROXY_JAVA_OPTS=${PROXY_JAVA_OPTS:-}
PROXY_ARGS=${PROXY_ARGS:-}
BACKEND_JAVA_OPTS=${BACKEND_JAVA_OPTS:-}
LAUNCHER=org.springframework.boot.loader.launch.PropertiesLauncher
METHOD=grpc.testing.SimpleService/UnaryRpc

die() { echo "proxy-load: $*" >&2; exit 1; }

command -v java >/dev/null || die "java not found: install a JDK 17+ (e.g. apt-get install openjdk-17-jdk)"
if [[ -z ${LOAD_TOOL:-} ]]; then
  if command -v h2load >/dev/null; then LOAD_TOOL=h2load; else
    LOAD_TOOL=java
    echo "proxy-load: h2load not found (apt-get install nghttp2-client); using the Java load generator"
  fi
fi
[[ $LOAD_TOOL == h2load ]] && ! command -v h2load >/dev/null \
  && die "LOAD_TOOL=h2load but h2load is not installed: apt-get install nghttp2-client"
if [[ " $TARGETS " == *" nginx "* ]] && ! command -v nginx >/dev/null; then
  echo "proxy-load: nginx not found (apt-get install nginx); skipping the nginx grpc_pass target"
  TARGETS=${TARGETS//nginx/}
fi
if [[ " $TARGETS " == *" baseline "* ]]; then
  [[ -f ${BASELINE_JAR:-} ]] || die "TARGETS has baseline but BASELINE_JAR (${BASELINE_JAR:-unset}) is no file"
fi
if [[ ! -f $JAR ]]; then
  echo "proxy-load: $JAR missing; building it"
  ./mvnw -B -pl sample-app -am package -DskipTests
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/proxy-load.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n ${KEEP_TMP:-} ]]; then echo "proxy-load: logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (polling, up to 90 s) until "$@" succeeds; fails with the log $LOG_OF_WAIT if it never does.
wait_for() {
  local what=$1 log=$2 pid=$3
  shift 3
  for _ in $(seq 900); do
    if "$@" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$what exited before it was ready (log above)"; }
    sleep 0.1
  done
  cat "$log" >&2
  die "$what not ready after 90 s (log above)"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

java_main() { # class, args...
  local class=$1
  shift
  java -cp "$JAR" -Dloader.main="$class" "$LAUNCHER" "$@"
}

# 1. The backend, in its own JVM, on a free loopback port.
# shellcheck disable=SC2086
java $BACKEND_JAVA_OPTS -cp "$JAR" -Dloader.main=io.github.hesmar.grpcproxy.sample.DemoBackend \
  "$LAUNCHER" 0 bench >"$TMP/backend.log" 2>&1 &
PIDS+=($!)
wait_for "the demo backend" "$TMP/backend.log" "${PIDS[-1]}" grep -q "listening on" "$TMP/backend.log"
BACKEND=$(sed -n 's/.*listening on //p' "$TMP/backend.log")
echo "proxy-load: backend on $BACKEND"

# 2. The proxy (and the baseline proxy), routing "bench" to it; alpha and beta too, since the
# default routes name the embedded backends, which are off here.
start_proxy() { # name, jar, grpc port, http port, management port, extra arguments
  local name=$1 jar=$2 port=$3 http=$4 management=$5 extra=$6
  port_open "$port" && die "port $port (for $name) is in use; set PROXY_PORT / BASELINE_PORT"
  # shellcheck disable=SC2086
  java $PROXY_JAVA_OPTS -jar "$jar" --sample.backends.embedded=false \
    --sample.routes.bench="$BACKEND" --sample.routes.alpha="$BACKEND" \
    --sample.routes.beta="$BACKEND" --sample.proxy.port="$port" --server.port="$http" \
    --management.server.port="$management" $extra >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  wait_for "the $name" "$TMP/$name.log" "${PIDS[-1]}" port_open "$port"
  echo "proxy-load: $name on 127.0.0.1:$port (JVM options: ${PROXY_JAVA_OPTS:-none}; arguments: ${extra:-none})"
}
[[ " $TARGETS " == *" proxy "* ]] && start_proxy proxy "$JAR" "$PROXY_PORT" "$PROXY_HTTP_PORT" \
  "$PROXY_MANAGEMENT_PORT" "$PROXY_ARGS"
[[ " $TARGETS " == *" baseline "* ]] \
  && start_proxy baseline "$BASELINE_JAR" "$BASELINE_PORT" "$BASELINE_HTTP_PORT" \
    "$BASELINE_MANAGEMENT_PORT" ""

# 3. nginx grpc_pass to the same backend.
if [[ " $TARGETS " == *" nginx "* ]]; then
  port_open "$NGINX_PORT" && die "port $NGINX_PORT (for nginx) is in use; set NGINX_PORT"
  user_line=""
  [[ $(id -u) == 0 ]] && user_line="user root;"
  sed -e "s|@PREFIX@|$TMP|g" -e "s|@BACKEND@|$BACKEND|g" -e "s|@PORT@|$NGINX_PORT|g" \
    -e "s|@USER_LINE@|$user_line|" sample-app/bench/nginx.conf >"$TMP/nginx.conf"
  nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/error.log" -g 'daemon off;' >"$TMP/nginx.log" 2>&1 &
  PIDS+=($!)
  wait_for "nginx" "$TMP/nginx.log" "${PIDS[-1]}" port_open "$NGINX_PORT"
  echo "proxy-load: nginx on 127.0.0.1:$NGINX_PORT (config $TMP/nginx.conf)"
fi

address_of() {
  case $1 in
    direct) echo "$BACKEND" ;;
    proxy) echo "127.0.0.1:$PROXY_PORT" ;;
    baseline) echo "127.0.0.1:$BASELINE_PORT" ;;
    nginx) echo "127.0.0.1:$NGINX_PORT" ;;
  esac
}

# One gRPC call through each target with the Java client, which checks grpc-status (h2load only
# sees HTTP 200): a route that fails is reported before any load is driven.
for target in $TARGETS; do
  java_main io.github.hesmar.grpcproxy.sample.bench.LoadGenerator "$(address_of "$target")" bench once \
    >"$TMP/check-$target.log" 2>&1 \
    || { cat "$TMP/check-$target.log" >&2; die "a gRPC call through $target failed (above)"; }
done

# A gRPC request frame: 5-byte prefix (uncompressed, length 7) + SimpleRequest{request_message="hello"}.
printf '\x00\x00\x00\x00\x07\x0a\x05hello' >"$TMP/request.bin"
H2LOAD_ARGS=(-d "$TMP/request.bin" -H 'content-type: application/grpc' -H 'te: trailers'
  -H 'x-route: bench')

# The DATA bytes of one OK response, to tell OK calls from failed ones (see run_load).
ok_bytes=0
if [[ $LOAD_TOOL == h2load ]]; then
  ok_bytes=$(h2load -n 1 -c 1 "${H2LOAD_ARGS[@]}" "http://$BACKEND/$METHOD" \
    | sed -n 's/^traffic:.* (\([0-9]*\)) data$/\1/p')
  [[ $ok_bytes -gt 0 ]] || die "h2load got no response message from the backend"
fi

run_load() { # target, connections, streams -> "calls/s p50_ms p99_ms errors"
  local target=$1 c=$2 m=$3 address
  address=$(address_of "$target")
  if [[ $LOAD_TOOL == java ]]; then
    java_main io.github.hesmar.grpcproxy.sample.bench.LoadGenerator "$address" bench "$c" "$m" \
      "$WARMUP" "$DURATION" >"$TMP/run.out" 2>&1 || true
    sed -n 's/^calls\/s=\([0-9.]*\) p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\) ok=[0-9]* errors=\([0-9]*\)$/\1 \2 \3 \4/p' \
      "$TMP/run.out" | grep . || { cat "$TMP/run.out" >&2; echo "- - - failed"; }
    return
  fi
  rm -f "$TMP/h2load-requests.log"
  h2load -c "$c" -m "$m" -D "$DURATION" --warm-up-time="$WARMUP" "${H2LOAD_ARGS[@]}" \
    --log-file="$TMP/h2load-requests.log" "http://$address/$METHOD" >"$TMP/run.out" 2>&1 || true
  local done_ok failed rate
  done_ok=$(sed -n 's/^requests:.* \([0-9]*\) succeeded.*/\1/p' "$TMP/run.out")
  failed=$(sed -n 's/^requests:.* succeeded, \([0-9]*\) failed, \([0-9]*\) errored.*/\1 \2/p' "$TMP/run.out")
  if [[ -z $done_ok || -z $failed ]]; then
    cat "$TMP/run.out" >&2
    echo "- - - failed"
    return
  fi
  # h2load counts an HTTP 200 as a success, also a failed gRPC call (trailers, no DATA), and in a
  # timed run counts the warm-up's DATA but not its requests: so a check run of a fixed number of
  # calls at the same concurrency must receive one response message per call.
  local n=$((c * m > 1000 ? c * m : 1000)) check_data
  check_data=$(h2load -n "$n" -c "$c" -m "$m" "${H2LOAD_ARGS[@]}" "http://$address/$METHOD" \
    | sed -n 's/^traffic:.* (\([0-9]*\)) data$/\1/p')
  local errors=$((${failed% *} + ${failed#* } + n - ${check_data:-0} / ok_bytes))
  rate=$(awk -v ok="$done_ok" -v d="$DURATION" 'BEGIN { printf "%.0f", ok / d }')
  # Latencies (µs, third column) of the measured requests, HTTP 200 only; nearest rank.
  awk '$2 == 200 { print $3 }' "$TMP/h2load-requests.log" | sort -n >"$TMP/latencies"
  local count p50 p99
  count=$(wc -l <"$TMP/latencies")
  p50=$(awk -v n="$count" 'NR == int((n * 50 + 99) / 100) { printf "%.2f", $1 / 1000 }' "$TMP/latencies")
  p99=$(awk -v n="$count" 'NR == int((n * 99 + 99) / 100) { printf "%.2f", $1 / 1000 }' "$TMP/latencies")
  echo "$rate ${p50:--} ${p99:--} $errors"
}

# The JIT of each JVM warms up once, through every Java target (the proxies' load also reaches the
# backend); nginx needs none.
if ((JVM_WARMUP > 0)); then
  for target in $TARGETS; do
    [[ $target == nginx ]] && continue
    echo "proxy-load: warming up $target (${JVM_WARMUP}s at 4x10, not measured)"
    if [[ $LOAD_TOOL == java ]]; then
      java_main io.github.hesmar.grpcproxy.sample.bench.LoadGenerator "$(address_of "$target")" bench \
        4 10 0 "$JVM_WARMUP" >/dev/null 2>&1 || true
    else
      h2load -c 4 -m 10 -D "$JVM_WARMUP" "${H2LOAD_ARGS[@]}" "http://$(address_of "$target")/$METHOD" \
        >/dev/null 2>&1 || true
    fi
  done
fi

echo "proxy-load: $LOAD_TOOL, warm-up ${WARMUP}s, measured ${DURATION}s per row; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
[[ $LOAD_TOOL == h2load ]] && echo "proxy-load: errors = HTTP failures + calls without a response message in a check run of max(1000, c*m) calls right after"
printf '%-9s %-8s %10s %9s %9s %7s\n' target load calls/s p50_ms p99_ms errors
for load in $LOADS; do
  for target in $TARGETS; do
    read -r rate p50 p99 errors < <(run_load "$target" "${load%x*}" "${load#*x}")
    printf '%-9s %-8s %10s %9s %9s %7s\n' "$target" "$load" "$rate" "$p50" "$p99" "$errors"
  done
done
echo "proxy-load: done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
