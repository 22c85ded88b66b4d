#!/usr/bin/env bash
# bench_logs.sh - the logs benchmark: OTLP/HTTP logs in -> batch -> loki exporter (protobuf +
# snappy) -> a counting Loki sink. Phase L1 sends a fixed rate (default 100k records/s) and
# reports records/s delivered, meltp CPU-seconds per million records (target <= 1.0), peak RSS
# and cores used; phase L2 saturates (no rate limit) for the ceiling. Kept apart from bench.sh
# (`make bench` runs both) ; it builds its own load generator
# and sink (tests/bench/loadgen_logs.c, tests/bench/loki_sink.c) with the Makefile's flags,
# because the Makefile has no rules for them. A benchmark, not a test: it exits non-zero only
# when the run itself broke.
#
# Knobs: BUILD or MELTP_BUILD (build dir with meltp and libmeltp.a, default build),
# BENCH_LOGS_RATE (100000), BENCH_LOGS_DURATION (20), BENCH_LOGS_PHASES ("L1 L2"),
# BENCH_LOGS_PER_REQ (1000 records per OTLP request), BENCH_KEEP=1 (keep logs and configs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${MELTP_BUILD:-${BUILD:-build}}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
MELTP=$BUILD_DIR/meltp
RATE=${BENCH_LOGS_RATE:-100000}
DUR=${BENCH_LOGS_DURATION:-20}
PHASES=${BENCH_LOGS_PHASES:-L1 L2}
PER_REQ=${BENCH_LOGS_PER_REQ:-1000}
TARGET_CPU_PER_M=1.0
CLK_TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d /tmp/meltp-bench-logs.XXXXXX)
PIDS=()

log() { echo "bench-logs: $*" >&2; }
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

[ -x "$MELTP" ] || die "$MELTP not built (make $BUILD_DIR/meltp)"
[ -f "$BUILD_DIR/libmeltp.a" ] || die "$BUILD_DIR/libmeltp.a not built"

# The Makefile's flags (MT_CFLAGS, LDLIBS), for the two helpers it has no rule for.
CFLAGS_B="-std=gnu11 -Wall -Wextra -Werror -pthread -D_GNU_SOURCE -Icollector -Iexporters -Islo -Irules -I$BUILD_DIR/gen -O2 -g"
LIBS_B="-lprotobuf-c -lmicrohttpd -lsnappy -lzstd -lcurl -ljansson -lyaml -lz -lcrypto -lpthread -lm"
(cd "$ROOT" &&
    cc $CFLAGS_B -o "$BUILD_DIR/loadgen_logs" tests/bench/loadgen_logs.c "$BUILD_DIR/libmeltp.a" $LIBS_B &&
    cc $CFLAGS_B -o "$BUILD_DIR/loki_sink" tests/bench/loki_sink.c $LIBS_B) || die "cannot build the helpers"

. "$(dirname "$0")/lib.sh"
sink_entries() { curl -s --max-time 2 "http://127.0.0.1:$1/stats" | sed -n 's/.*"entries":\([0-9]*\).*/\1/p'; }

run_phase() {
    local name=$1 rate=$2 conns=$3
    local sp rp mp sink mel cpu0 cpu1 t0 t1 sent got rss
    sp=$(free_port); rp=$(free_port); mp=$(free_port)
    "$BUILD_DIR/loki_sink" --port "$sp" >"$TMP/sink-$name.log" 2>&1 &
    sink=$!; PIDS+=("$sink")
    wait_listening "$sp" "$sink" || die "sink did not start"
    cat >"$TMP/$name.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$rp
processors:
  batch: {}
exporters:
  loki:
    endpoint: http://127.0.0.1:$sp/loki/api/v1/push
    tenant_id: bench
service:
  pipelines:
    logs: {receivers: [otlp], processors: [batch], exporters: [loki]}
  telemetry:
    metrics:
      address: 127.0.0.1:$mp
YAML
    "$MELTP" run --config "$TMP/$name.yaml" >"$TMP/meltp-$name.log" 2>&1 &
    mel=$!; PIDS+=("$mel")
    wait_listening "$rp" "$mel" || die "meltp did not start: $(tail -5 "$TMP/meltp-$name.log")"
    cpu0=$(cpu_ticks "$mel"); t0=$(date +%s.%N)
    "$BUILD_DIR/loadgen_logs" --url "http://127.0.0.1:$rp/v1/logs" --rate "$rate" \
        --duration "$DUR" --connections "$conns" --per-request "$PER_REQ" >"$TMP/load-$name.json"
    sent=$(jget "$TMP/load-$name.json" records)
    for _ in $(seq 300); do
        got=$(sink_entries "$sp"); [ "${got:-0}" -ge "$sent" ] && break; sleep 0.1
    done
    t1=$(date +%s.%N); cpu1=$(cpu_ticks "$mel"); rss=$(vm_hwm_kib "$mel")
    got=$(sink_entries "$sp")
    local secs cpu_s per_m verdict
    secs=$(calc "%.2f" "$t1 - $t0")
    cpu_s=$(calc "%.2f" "($cpu1 - $cpu0) / $CLK_TCK")
    per_m=$(calc "%.3f" "$cpu_s / ($got > 0 ? $got : 1) * 1000000")
    verdict=""
    if [ "$rate" != 0 ]; then
        verdict=$(calc "%s" "$per_m <= $TARGET_CPU_PER_M ? \"PASS\" : \"MISS\"")
    fi
    printf "%-3s offered %-7s sent %-8s delivered %-8s %8.0f rec/s  cpu %6.2fs  %6.3f cpu-s/M  cores %.2f  peak RSS %5.1f MiB  %s\n" \
        "$name" "$([ "$rate" = 0 ] && echo max || echo "$rate")" "$sent" "$got" \
        "$(calc "%f" "$got / $secs")" "$cpu_s" "$per_m" "$(calc "%f" "$cpu_s / $secs")" \
        "$(calc "%f" "$rss / 1024")" "$verdict"
    [ "$got" -ge "$sent" ] || log "phase $name: sink has $got of $sent records"
    grep -E "dropping|refused" "$TMP/meltp-$name.log" | head -3 >&2 || true
    kill -TERM "$mel"; wait "$mel" 2>/dev/null || true
    kill -TERM "$sink"; wait "$sink" 2>/dev/null || true
    PIDS=()
}

log "meltp $MELTP, $(nproc) cores, $DUR s per phase, $PER_REQ records per request"
for ph in $PHASES; do
    case $ph in
    L1) run_phase L1 "$RATE" 4 ;;
    L2) run_phase L2 0 8 ;;
    *) die "unknown phase $ph" ;;
    esac
done
