#!/usr/bin/env bash
# bench_kafka.sh - the Kafka benchmark: loadgen -> sidecar meltp (otlp -> batch -> kafka
# exporter) -> librdkafka's mock cluster on loopback (build/kafka_mock, 3 brokers, 4
# partitions) -> gateway meltp (kafka receiver -> batch -> otlphttp) -> the counting sink.
# Phase K1 sends traces at a fixed rate (default 100k spans/s, 1000-span requests) and reports
# CPU-seconds per million spans of each side (sidecar = exporter, gateway = receiver; the mock
# cluster's own CPU is shown apart, a real broker's would not be on this host), delivery, and
# end-to-end latency. Latency: the sink is polled every 50 ms while the load runs at a fixed
# rate; the N-th span was sent at t0 + N / rate, so when the sink holds N spans at time t, the
# spans arriving then took t - (t0 + N / rate); p50/p99/max over the polls of the steady part
# (after the first second). A benchmark, not a test: it exits non-zero only when the run broke.
#
# Knobs: BUILD or MELTP_BUILD (build dir, default build), BENCH_KAFKA_RATE (100000),
# BENCH_KAFKA_DURATION (20), BENCH_KEEP=1 (keep logs and configs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${MELTP_BUILD:-${BUILD:-build}}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
MELTP=$BUILD_DIR/meltp
RATE=${BENCH_KAFKA_RATE:-100000}
DUR=${BENCH_KAFKA_DURATION:-20}
PER_REQ=1000
CLK_TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d /tmp/meltp-bench-kafka.XXXXXX)
PIDS=()

log() { echo "bench-kafka: $*" >&2; }
die() { log "$*"; exit 1; }

cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for b in meltp loadgen sink kafka_mock; do
    [ -x "$BUILD_DIR/$b" ] || die "$BUILD_DIR/$b not built (make $BUILD_DIR/$b)"
done

. "$(dirname "$0")/lib.sh"
sink_spans() { curl -s --max-time 2 "http://127.0.0.1:$1/stats" | sed -n 's/.*"spans":\([0-9]*\).*/\1/p'; }

# the mock cluster, driven through its stdin (tests/kafka/mockcluster.c)
mkfifo "$TMP/mock.in"
"$BUILD_DIR/kafka_mock" 3 <"$TMP/mock.in" >"$TMP/mock.out" 2>"$TMP/mock.err" &
MOCK=$!; PIDS+=("$MOCK")
exec 7>"$TMP/mock.in"
for _ in $(seq 100); do grep -q '^bootstrap' "$TMP/mock.out" && break; sleep 0.1; done
BOOT=$(sed -n 's/^bootstrap //p' "$TMP/mock.out")
[ -n "$BOOT" ] || die "the mock cluster did not start: $(cat "$TMP/mock.err")"
echo "topic otlp_spans ${BENCH_KAFKA_PARTITIONS:-8}" >&7
BROKERS="[${BOOT//,/, }]"

SP=$(free_port); RP=$(free_port); GP=$(free_port); M1=$(free_port); M2=$(free_port)
"$BUILD_DIR/sink" --port "$SP" >"$TMP/sink.out" 2>"$TMP/sink.err" &
SINK=$!; PIDS+=("$SINK")
wait_listening "$SP" "$SINK" || die "sink did not start"

cat >"$TMP/gateway.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$GP
  kafka:
    brokers: $BROKERS
    initial_offset: earliest
    max_fetch_size: ${BENCH_KAFKA_FETCH:-1MiB}
processors:
  batch: {}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:$SP
    compression: none
service:
  pipelines:
    traces: {receivers: [otlp, kafka], processors: [batch], exporters: [otlphttp]}
  telemetry:
    metrics:
      address: 127.0.0.1:$M2
YAML
cat >"$TMP/sidecar.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$RP
processors:
  batch: {}
exporters:
  kafka:
    brokers: $BROKERS
    producer:
      compression: ${BENCH_KAFKA_COMPRESSION:-lz4}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [kafka]}
  telemetry:
    metrics:
      address: 127.0.0.1:$M1
YAML
"$MELTP" run --config "$TMP/gateway.yaml" >"$TMP/gateway.log" 2>&1 &
GW=$!; PIDS+=("$GW")
wait_listening "$GP" "$GW" || die "gateway did not start: $(tail -5 "$TMP/gateway.log")"
for _ in $(seq 300); do grep -q "kafka assignment: [1-9]" "$TMP/gateway.log" && break; sleep 0.1; done
"$MELTP" run --config "$TMP/sidecar.yaml" >"$TMP/sidecar.log" 2>&1 &
SC=$!; PIDS+=("$SC")
wait_listening "$RP" "$SC" || die "sidecar did not start: $(tail -5 "$TMP/sidecar.log")"

log "meltp $MELTP, $(nproc) cores, $DUR s at $RATE spans/s, $PER_REQ spans per request"
# the latency poller: "t spans" lines while the load runs
python3 - "$SP" "$TMP/polls" "$((DUR + 30))" <<'PY' &
import sys, time, urllib.request, re
port, out, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
end = time.time() + limit
with open(out, "w") as f:
    while time.time() < end:
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/stats" % port, timeout=1).read()
            n = int(re.search(rb'"spans":(\d+)', body).group(1))
            f.write("%.4f %d\n" % (time.time(), n)); f.flush()
        except Exception:
            pass
        time.sleep(0.05)
PY
POLL=$!; PIDS+=("$POLL")
c_sc0=$(cpu_ticks "$SC"); c_gw0=$(cpu_ticks "$GW"); c_mk0=$(cpu_ticks "$MOCK")
T0=$(date +%s.%N)
"$BUILD_DIR/loadgen" --url "http://127.0.0.1:$RP/v1/traces" --rate "$RATE" --duration "$DUR" \
    --connections 4 --spans-per-request "$PER_REQ" >"$TMP/load.json" 2>"$TMP/load.err" ||
    die "loadgen failed: $(cat "$TMP/load.err")"
sent=$(jget "$TMP/load.json" spans_sent)
got=0
for _ in $(seq 600); do
    got=$(sink_spans "$SP"); [ "${got:-0}" -ge "$sent" ] && break; sleep 0.1
done
T1=$(date +%s.%N)
c_sc1=$(cpu_ticks "$SC"); c_gw1=$(cpu_ticks "$GW"); c_mk1=$(cpu_ticks "$MOCK")
kill "$POLL" 2>/dev/null || true
rss_sc=$(vm_hwm_kib "$SC"); rss_gw=$(vm_hwm_kib "$GW")
lat=$(awk -v t0="$T0" -v rate="$RATE" -v dur="$DUR" '
    { t = $1 - t0; n = $2; if (t < 1 || n == 0 || t > dur + 0.5) next; printf "%.0f\n", (t - n / rate) * 1000 }' \
    "$TMP/polls" | sort -n | awk '{ l[NR] = $1 } END { if (!NR) { print "- - -"; exit }
    i = int(NR * 0.99); if (i < 1) i = 1; printf "%s %s %s", l[int(NR * 0.5) + 1], l[i], l[NR] }')
read -r p50 p99 pmax <<<"$lat"
per_m() { calc "%.3f" "($2 - $1) / $CLK_TCK / ($got > 0 ? $got : 1) * 1000000"; }
printf "K1 offered %s spans/s, sent %s, delivered %s (%s)\n" "$RATE" "$sent" "$got" \
    "$([ "$got" -ge "$sent" ] && echo all || echo MISSING)"
printf "   sidecar (otlp -> kafka exporter):  %s CPU-s per million spans, peak RSS %.1f MiB, ack p50 %s ms p99 %s ms\n" \
    "$(per_m "$c_sc0" "$c_sc1")" "$(calc "%f" "$rss_sc / 1024")" "$(jget "$TMP/load.json" p50_ms)" \
    "$(jget "$TMP/load.json" p99_ms)"
printf "   gateway (kafka receiver -> otlphttp): %s CPU-s per million spans, peak RSS %.1f MiB\n" \
    "$(per_m "$c_gw0" "$c_gw1")" "$(calc "%f" "$rss_gw / 1024")"
printf "   mock cluster (not meltp):          %s CPU-s per million spans\n" "$(per_m "$c_mk0" "$c_mk1")"
printf "   end-to-end latency (loadgen -> sink): p50 %s ms, p99 %s ms, max %s ms; drained %.1f s after the load\n" \
    "$p50" "$p99" "$pmax" "$(calc "%f" "$T1 - $T0 - $DUR")"
grep -Ei "dropping|error" "$TMP/sidecar.log" "$TMP/gateway.log" | head -5 >&2 || true
