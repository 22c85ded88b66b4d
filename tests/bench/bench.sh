#!/usr/bin/env bash
# bench.sh - meltp's throughput benchmark, run by `make bench`. For each phase it starts a
# counting sink and a fresh meltp on free loopback ports, drives meltp with build/loadgen,
# waits until the sink has everything, and reports items/s, CPU-seconds per million items,
# request latency, peak RSS and cores used, with PASS/MISS against the targets in
# docs/BENCHMARKS.md. Phases A (fixed rate) and B (saturation) relay traces (otlp -> batch ->
# otlphttp -> sink); phases C (fixed rate) and D (saturation) relay Prometheus remote write
# (prometheusremotewrite -> batch -> prometheusremotewrite -> sink, which the receiver passes
# through without translation; phase E converts the same load) and also report the RSS
# each active series costs. It is a benchmark, not a test: it exits non-zero only when the run
# itself broke (missing binary, a process that would not start or died).
#
# Knobs (environment): BUILD or MELTP_BUILD (build dir, default build), BENCH_PHASES ("A B C E
# G"; D is the remote-write saturation run; E is phase C with the receiver's pass-through off,
# i.e. RW -> OTLP -> RW, for comparison; P is phase A with the exporter queue on disk,
# sending_queue.storage with fsync: true; R is phase A over OTLP/gRPC, loadgen --mode grpc;
# RB is phase B over OTLP/gRPC; FA and FR are phases A and R with Fluent Bit's OTLP input in meltp's place, run when its
# binary is found: BENCH_FLUENT_BIT, ../shared/servers/fluent-bit or ../servers-bin/fluent-bit;
# O is phase A out through the `otlp` gRPC exporter into tests/node/fake_otlp_grpc.js as the sink),
# BENCH_RATE (phase A and P spans/s, 100000),
# BENCH_DURATION_A (20), BENCH_DURATION_B (15), BENCH_RW_RATE (phase C samples/s, 100000),
# BENCH_ACTIVE_SERIES (100000), BENCH_DURATION_C (20), BENCH_DURATION_D (15),
# BENCH_TARGET=sink (baseline: loadgen straight into the sink, no meltp), BENCH_KEEP=1 (keep
# the temp dir with configs and logs).
# TLS (docs/BENCHMARKS.md): phase T is phase A with TLS on the receiver (keep-alive
# connections, an ECDSA P-256 certificate made with `openssl` at start); phases K and J measure
# what a new connection costs: closed loop on BENCH_FRESH_CONNECTIONS (2) connections for
# BENCH_DURATION_K (10) s, a new connection per request of 100 spans, with TLS (K) and
# without (J); the report prints the handshake cost, meltp CPU per new TLS connection minus
# per new plain one. BENCH_PHASES="A T K J" runs them beside the plain figure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${MELTP_BUILD:-${BUILD:-build}}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
MELTP=$BUILD_DIR/meltp
LOADGEN=$BUILD_DIR/loadgen
SINK=$BUILD_DIR/sink
TARGET=${BENCH_TARGET:-meltp}
PHASES=${BENCH_PHASES:-A R FA FR B C E G}
GRPC_PATH=/opentelemetry.proto.collector.trace.v1.TraceService/Export
FLUENT_BIT=${BENCH_FLUENT_BIT:-}
for f in "$ROOT/../shared/servers/fluent-bit" "$ROOT/../servers-bin/fluent-bit"; do
    [ -z "$FLUENT_BIT" ] && [ -x "$f" ] && [ -f "$f" ] && FLUENT_BIT=$f
done
FLUENT_BIT_CFG=$ROOT/../shared/servers/configs/fluent-bit-otel-relay.yaml.in
RATE_A=${BENCH_RATE:-100000}
DUR_A=${BENCH_DURATION_A:-20}
DUR_B=${BENCH_DURATION_B:-15}
SPANS_PER_REQ=1000
CONN_A=4
CONN_B=8
RATE_C=${BENCH_RW_RATE:-100000}
DUR_C=${BENCH_DURATION_C:-20}
DUR_D=${BENCH_DURATION_D:-15}
ACTIVE_SERIES=${BENCH_ACTIVE_SERIES:-100000}
SPANS_PER_REQ_FRESH=100
CONN_K=${BENCH_FRESH_CONNECTIONS:-2}
DUR_K=${BENCH_DURATION_K:-10}
SERIES_PER_REQ=2000
CONN_C=4
CONN_D=8
# How long an idle meltp settles after it starts listening before its RSS is read as the
# baseline of the bytes-per-active-series figure.
IDLE_SETTLE=1
# Bounds on every wait, in seconds.
START_TIMEOUT=10
DELIVERY_TIMEOUT=30
STOP_TIMEOUT=10
# Targets (docs/BENCHMARKS.md).
TARGET_CPU_PER_M=1.5
TARGET_RSS_MIB=40
TARGET_GRPC_CPU_PER_M=0.8
TARGET_GRPC_P99_MS=2
TARGET_RW_CPU_PER_M=2
TARGET_RW_BYTES_PER_SERIES=1024
# The sink walks the protobuf wire format to count spans and fully decodes one request in this
# many: the full decode costs ~2 CPU-s per million spans, CPU that meltp would lose.
SINK_VERIFY_EVERY=50

CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
TMP=$(mktemp -d /tmp/meltp-bench.XXXXXX)
PIDS=()

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

# Stops one process politely, then firmly; returns its exit status (or 137 if killed).
stop_pid() {
    local pid=$1 i rc=0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || rc=$?; return $rc; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return $rc
}

# Forgets a child that has been reaped, so the exit trap never signals a recycled pid.
forget_pid() {
    local p keep=()
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

stop_child() {
    local rc=0
    stop_pid "$1" || rc=$?
    forget_pid "$1"
    return $rc
}

cleanup() {
    local i
    # Newest first: loadgen, then meltp (which can still deliver to the sink), then the sink.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}" || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        log "logs and configs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on. Racy by nature (someone may take it before we bind), but
# each port is used within a second of being picked.
USED_PORTS=" "
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 40000))
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            continue
        fi
        USED_PORTS="$USED_PORTS$p "
        echo "$p"
        return 0
    done
    die "no free loopback port found"
}

# Waits until 127.0.0.1:$1 accepts connections while pid $2 lives.
wait_listening() {
    local port=$1 pid=$2 i
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# utime+stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 may hold spaces, so count from the closing parenthesis).
cpu_ticks() {
    local s f
    s=$(<"/proc/$1/stat")
    read -r -a f <<<"${s##*) }"
    echo $((f[11] + f[12]))
}

# Busy and total ticks of the whole machine, from the first line of /proc/stat.
machine_ticks() {
    local _cpu user nice sys idle iowait irq softirq steal rest
    read -r _cpu user nice sys idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + sys + irq + softirq + steal)) $((user + nice + sys + idle + iowait + irq + softirq + steal))"
}

# Percent of the whole machine busy over one second. Taken before a phase starts: other work
# on the host (a build, another test run) takes CPU from meltp and skews every figure.
host_busy_pct() {
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$(machine_ticks)"
    sleep 1
    read -r b1 t1 <<<"$(machine_ticks)"
    echo $((100 * (b1 - b0) / ((t1 - t0) > 0 ? (t1 - t0) : 1)))
}

vm_hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# Bytes the process had written to storage (/proc/PID/io; empty when the kernel keeps no count).
io_write_bytes() { awk '/^write_bytes:/ {print $2}' "/proc/$1/io" 2>/dev/null || true; }
vm_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }
# jget FILE KEY: a number from a flat one-line JSON object.
jget() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1" | head -n1; }
sink_spans() {
    curl -s --max-time 2 "http://127.0.0.1:$1/stats" | sed -n 's/.*"spans":\([0-9]*\).*/\1/p'
}
# Samples the sink counted, without those of target_info series (meltp's exporter adds one
# per job/instance and batch; the sender never sent them), then the target_info samples.
sink_samples() {
    curl -s --max-time 2 "http://127.0.0.1:$1/stats" |
        sed -n 's/.*"samples":\([0-9]*\).*"target_info_samples":\([0-9]*\).*/\1 \2/p' |
        awk '{ print $1 - $2, $2 }'
}
# calc FORMAT EXPR: float arithmetic. The parentheses matter: a bare `a > b` after printf's
# comma would be an output redirection in awk.
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }
# disk_per_item WB0 WB1 ITEMS: storage bytes written per item, "-" when not counted.
disk_per_item() {
    if [ -n "$1" ] && [ -n "$2" ]; then calc '%.0f' "($2 - $1) / ($3 > 0 ? $3 : 1)"; else echo -; fi
}

# write_config FILE RECV SINK METRICS [guard|persist]: the traces relay; with "guard" the
# pipeline also runs synthetic_guard (phases G and H: what PII scanning costs); with "persist"
# the exporter queue lives on disk (phase P: file_storage, fsync: true) under $TMP/store-*.
write_config() {
    local procs="[batch]" storage='""' exts="[]" tls="" exporter=otlphttp endpoint=http://127.0.0.1:$3 proto=http
    [ "${5:-}" = guard ] && procs="[synthetic_guard, batch]"
    [ "${5:-}" = grpc ] && proto=grpc
    if [ "${5:-}" = persist ]; then
        storage=file_storage
        exts="[file_storage]"
    fi
    case "${5:-}" in tls | tlsfresh)
        tls="        tls: {cert_file: $TMP/pki/server.crt, key_file: $TMP/pki/server.key}" ;;
    esac
    if [ "${5:-}" = grpcout ]; then
        exporter=otlp
        endpoint="127.0.0.1:$3
    tls: {insecure: true}"
    fi
    cat >"$1" <<EOF
receivers:
  otlp:
    protocols:
      $proto:
        endpoint: 127.0.0.1:$2
$tls
processors:
  batch: {}
  synthetic_guard:
    action: redact
extensions:
  file_storage:
    directory: $TMP/store-$2
    fsync: true
exporters:
  $exporter:
    endpoint: $endpoint
    compression: none
    sending_queue:
      storage: $storage
service:
  extensions: $exts
  pipelines:
    traces:
      receivers: [otlp]
      processors: $procs
      exporters: [$exporter]
  telemetry:
    metrics:
      address: 127.0.0.1:$4
EOF
}

write_rw_config() {
    cat >"$1" <<EOF
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:$2
    passthrough: ${RW_PASSTHROUGH:-true}
processors:
  batch: {}
exporters:
  prometheusremotewrite:
    endpoint: http://127.0.0.1:$3/api/v1/write
service:
  pipelines:
    metrics:
      receivers: [prometheusremotewrite]
      processors: [batch]
      exporters: [prometheusremotewrite]
  telemetry:
    metrics:
      address: 127.0.0.1:$4
EOF
}

# Per-thread CPU of a process, busiest first: shows whether the work is spread over threads.
thread_report() {
    local pid=$1 t comm
    for t in /proc/"$pid"/task/*; do
        comm=$(<"$t/comm") || continue
        echo "$(cpu_ticks "$pid/task/${t##*/}") $comm"
    done | sort -rn | head -n 6 | awk -v hz="$CLK_TCK" '{ printf "%s %.1fs", (NR > 1 ? "," : ""), $1 / hz; $1 = ""; printf "%s", $0 } END { print "" }'
}

# run_phase NAME RATE CONNECTIONS DURATION [otlp|rw]: one measured phase; appends a row to
# $TMP/rows (otlp) or $TMP/rows-rw (remote write).
run_phase() {
    local name=$1 rate=$2 conns=$3 dur=$4 kind=${5:-otlp}
    local sink_port sink_pid recv_port metrics_port pid url out i
    local spans_sent delivered cpu0 cpu1 cpu_mid m0 m1 t0 t_mid t1 rss_kib rc
    local idle_kib=0 target_info=0 pre_busy

    if [ "$kind" = rw ] && [ "$TARGET" = meltp ]; then
        # A meltp built without the remote-write components cannot run this phase; say so in
        # the report instead of losing the phases that did run.
        write_rw_config "$TMP/check-$name.yaml" "$(free_port)" "$(free_port)" "$(free_port)"
        if ! "$MELTP" check-config --config "$TMP/check-$name.yaml" >"$TMP/check-$name.log" 2>&1; then
            log "phase $name skipped: $MELTP check-config rejects the remote-write config:"
            head -n 5 "$TMP/check-$name.log" >&2
            {
                echo "  phase $name SKIPPED: meltp check-config rejected the remote-write config:"
                head -n 3 "$TMP/check-$name.log" | sed 's/^/    /'
            } >>"$TMP/notes"
            return 0
        fi
    fi

    pre_busy=$(host_busy_pct)
    if [ "$pre_busy" -gt 15 ]; then
        log "phase $name: the host was ${pre_busy}% busy before the phase started; other processes skew its figures"
        echo "  phase $name: the host was ${pre_busy}% busy just before it started (other processes): its figures may be skewed" >>"$TMP/notes"
    fi
    sink_port=$(free_port)
    local export_port=$sink_port
    if [ "$kind" = grpcout ]; then
        # the gRPC sink: export_port takes OTLP/gRPC, sink_port serves /stats
        export_port=$(free_port)
        node "$ROOT/tests/node/fake_otlp_grpc.js" --port "$export_port" --sink-stats-port "$sink_port" \
            >"$TMP/sink-$name.out" 2>"$TMP/sink-$name.err" &
    else
        "$SINK" --port "$sink_port" --verify-every "$SINK_VERIFY_EVERY" >"$TMP/sink-$name.out" 2>"$TMP/sink-$name.err" &
    fi
    sink_pid=$!
    PIDS+=("$sink_pid")
    wait_listening "$sink_port" "$sink_pid" || die "sink did not start: $(tail -n 5 "$TMP/sink-$name.err")"

    local path=/v1/traces scheme=http spr=$SPANS_PER_REQ lg_extra=()
    [ "$kind" = rw ] && path=/api/v1/write
    case "$kind" in
    tls) scheme=https ;;
    tlsfresh) scheme=https spr=$SPANS_PER_REQ_FRESH lg_extra=(--fresh-connections) ;;
    fresh) spr=$SPANS_PER_REQ_FRESH lg_extra=(--fresh-connections) ;;
    esac
    [ "$scheme" = https ] && lg_extra+=(--cacert "$TMP/pki/ca.crt")
    case "$kind" in grpc | fb-grpc) path=$GRPC_PATH ;; esac
    local under="" cmd=()
    if [ "${kind#fb-}" != "$kind" ]; then
        # Fluent Bit's OTLP input (HTTP or gRPC on one port) relaying to the same sink
        recv_port=$(free_port)
        metrics_port=$(free_port)
        sed -e "s/@IN@/$recv_port/; s/@OUT@/$sink_port/; s/@HTTP@/$metrics_port/" \
            "$FLUENT_BIT_CFG" >"$TMP/fluent-bit-$name.yaml"
        under=fluent-bit
        cmd=("$FLUENT_BIT" -c "$TMP/fluent-bit-$name.yaml")
    elif [ "$TARGET" = meltp ]; then
        recv_port=$(free_port)
        metrics_port=$(free_port)
        if [ "$kind" = rw ]; then
            write_rw_config "$TMP/meltp-$name.yaml" "$recv_port" "$sink_port" "$metrics_port"
        else
            write_config "$TMP/meltp-$name.yaml" "$recv_port" "$export_port" "$metrics_port" "$kind"
        fi
        under=meltp
        cmd=("$MELTP" run --config "$TMP/meltp-$name.yaml")
    fi
    if [ -n "$under" ]; then
        "${cmd[@]}" >"$TMP/$under-$name.log" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        if ! wait_listening "$recv_port" "$pid"; then
            log "$under did not start listening on 127.0.0.1:$recv_port within ${START_TIMEOUT}s:"
            tail -n 20 "$TMP/$under-$name.log" >&2
            exit 1
        fi
        url="$scheme://127.0.0.1:$recv_port$path"
    else
        pid=$sink_pid
        url="http://127.0.0.1:$sink_port$path"
    fi
    if [ "$kind" = rw ]; then
        # The baseline of "RSS per active series": the same process, same config, idle.
        sleep "$IDLE_SETTLE"
        idle_kib=$(vm_rss_kib "$pid" 2>/dev/null || echo 0)
    fi

    local args=(--url "$url" --connections "$conns" --duration "$dur")
    if [ "$kind" = rw ]; then
        args=(--mode rw "${args[@]}" --series-per-request "$SERIES_PER_REQ" --active-series "$ACTIVE_SERIES")
    elif [ "$kind" = grpc ] || [ "$kind" = fb-grpc ]; then
        args=(--mode grpc "${args[@]}" --spans-per-request "$SPANS_PER_REQ")
    else
        args+=(--spans-per-request "$spr" "${lg_extra[@]}")
    fi
    if [ "$rate" != 0 ]; then
        args+=(--rate "$rate")
    fi
    log "phase $name: loadgen ${args[*]}"
    out=$TMP/loadgen-$name.json
    cpu0=$(cpu_ticks "$pid")
    local wb0 wb1
    wb0=$(io_write_bytes "$pid")
    m0=$(machine_ticks)
    t0=$(now)
    rc=0
    timeout $((${dur%.*} + 60)) "$LOADGEN" "${args[@]}" >"$out" 2>"$TMP/loadgen-$name.err" &
    local lg_pid=$!
    PIDS+=("$lg_pid")
    # Per-thread CPU is read just before the load ends, while every worker thread still lives.
    local threads="" snap_at
    snap_at=$(awk -v d="$dur" 'BEGIN { print (d > 2 ? d - 1 : d / 2) }')
    # In the background so that a signal runs the exit trap at once: bash defers traps until a
    # foreground command ends, but interrupts `wait`.
    sleep "$snap_at" &
    PIDS+=("$!")
    wait $! || true
    forget_pid "$!"
    kill -0 "$pid" 2>/dev/null && threads=$(thread_report "$pid" 2>/dev/null || true)
    wait "$lg_pid" || rc=$?
    forget_pid "$lg_pid"
    t_mid=$(now)
    m1=$(machine_ticks)
    if ! kill -0 "$pid" 2>/dev/null; then
        log "the process under test died during phase $name:"
        tail -n 20 "$TMP/meltp-$name.log" "$TMP/sink-$name.err" 2>/dev/null >&2
        exit 1
    fi
    cpu_mid=$(cpu_ticks "$pid")
    # spans_sent: spans, or samples in remote-write phases.
    if [ "$kind" = rw ]; then
        spans_sent=$(jget "$out" samples_sent)
    else
        spans_sent=$(jget "$out" spans_sent)
    fi
    if [ "$rc" != 0 ] || [ -z "$spans_sent" ]; then
        log "loadgen failed (exit $rc):"
        cat "$TMP/loadgen-$name.err" >&2
        exit 1
    fi
    grep -Ev '^loadgen: [0-9]* (bodies|templates)' "$TMP/loadgen-$name.err" >&2 || true

    # Delivery: the batch processor holds items for a moment; wait until the sink has them all.
    delivered=0
    local give_up=$((SECONDS + DELIVERY_TIMEOUT))
    for ((i = 0; i < DELIVERY_TIMEOUT * 10 && SECONDS < give_up; i++)); do
        if [ "$kind" = rw ]; then
            read -r delivered target_info <<<"$(sink_samples "$sink_port")"
            target_info=${target_info:-0}
        else
            delivered=$(sink_spans "$sink_port")
        fi
        delivered=${delivered:-0}
        [ "$delivered" -ge "$spans_sent" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    t1=$(now)
    cpu1=$(cpu_ticks "$pid" 2>/dev/null || echo "$cpu_mid")
    rss_kib=$(vm_hwm_kib "$pid" 2>/dev/null || echo 0)
    wb1=$(io_write_bytes "$pid")

    local telemetry=""
    if [ "${kind#fb-}" != "$kind" ]; then
        stop_child "$pid" || true
    elif [ "$TARGET" = meltp ]; then
        curl -s --max-time 2 "http://127.0.0.1:$metrics_port/metrics" >"$TMP/metrics-$name.txt" || true
        # Non-zero counters that mean data was lost or refused.
        telemetry=$(grep -Ei '(refus|drop|fail|reject|discard)' "$TMP/metrics-$name.txt" 2>/dev/null |
            grep -v '^#' | awk '$NF != 0' | head -n 8 || true)
        rc=0
        stop_child "$pid" || rc=$?
        if [ "$rc" != 0 ] && [ "$rc" != 143 ]; then
            log "meltp exited with status $rc after SIGTERM in phase $name"
        fi
        local problems
        problems=$(grep -Eic '(error|warn|fail)' "$TMP/meltp-$name.log" || true)
        if [ "${problems:-0}" != 0 ]; then
            log "meltp logged $problems error/warning lines in phase $name, first ones:"
            grep -Ei '(error|warn|fail)' "$TMP/meltp-$name.log" | head -n 5 >&2
        fi
    fi
    stop_child "$sink_pid" || true

    local load_s
    load_s=$(awk -v a="$t0" -v b="$t_mid" 'BEGIN { print b - a }')
    local mb0 mt0 mb1 mt1
    read -r mb0 mt0 <<<"$m0"
    read -r mb1 mt1 <<<"$m1"
    # One tab-separated row; the tables and the verdicts are printed from these at the end.
    # Remote-write rows add: idle RSS MiB, bytes of RSS per active series, target_info samples
    # the sink got, compressed bytes per request.
    if [ "$kind" = rw ]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$name" "$rate" "$conns" "$(jget "$out" samples_per_sec)" \
            "$(calc '%.3f' "($cpu1 - $cpu0) / $CLK_TCK / ($spans_sent > 0 ? $spans_sent : 1) * 1e6")" \
            "$(calc '%.2f' "($cpu_mid - $cpu0) / $CLK_TCK / $load_s")" \
            "$(jget "$out" p50_ms)" "$(jget "$out" p99_ms)" "$(calc '%.1f' "$rss_kib / 1024")" \
            "$delivered" "$spans_sent" "$(jget "$out" refused)" "$(jget "$out" errors)" \
            "$(calc '%.0f' "100 * ($mb1 - $mb0) / (($mt1 - $mt0) > 0 ? ($mt1 - $mt0) : 1)")" \
            "$(jget "$out" loadgen_cpu_s)" "$(calc '%.1f' "$t1 - $t_mid")" "$(jget "$out" max_lag_ms)" \
            "$(calc '%.1f' "$idle_kib / 1024")" \
            "$(calc '%.0f' "($rss_kib - $idle_kib) * 1024 / $ACTIVE_SERIES")" \
            "$target_info" "$(jget "$out" bytes_per_request)" \
            >>"$TMP/rows-rw"
    else
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$name" "$rate" "$conns" "$(jget "$out" spans_per_sec)" \
            "$(calc '%.3f' "($cpu1 - $cpu0) / $CLK_TCK / ($spans_sent > 0 ? $spans_sent : 1) * 1e6")" \
            "$(calc '%.2f' "($cpu_mid - $cpu0) / $CLK_TCK / $load_s")" \
            "$(jget "$out" p50_ms)" "$(jget "$out" p99_ms)" "$(calc '%.1f' "$rss_kib / 1024")" \
            "$delivered" "$spans_sent" "$(jget "$out" refused)" "$(jget "$out" errors)" \
            "$(calc '%.0f' "100 * ($mb1 - $mb0) / (($mt1 - $mt0) > 0 ? ($mt1 - $mt0) : 1)")" \
            "$(jget "$out" loadgen_cpu_s)" "$(calc '%.1f' "$t1 - $t_mid")" "$(jget "$out" max_lag_ms)" \
            "$(disk_per_item "$wb0" "$wb1" "$spans_sent")" \
            >>"$TMP/rows"
    fi
    {
        [ -n "$threads" ] && echo "  phase $name, busiest threads (CPU s):$threads"
        [ -n "$telemetry" ] && echo "  phase $name, non-zero loss counters in meltp's /metrics:" &&
            while IFS= read -r line; do echo "    $line"; done <<<"$telemetry"
    } >>"$TMP/notes" || true
}

verdict() { if [ "$1" = 1 ]; then echo PASS; else echo MISS; fi; }

report() {
    local under="meltp"
    [ "$TARGET" = sink ] && under="sink only (harness baseline, no meltp)"
    echo
    echo "meltp benchmark - $(date -u +%Y-%m-%dT%H:%MZ), $NCPU cores, $(uname -m), under test: $under"
    local name rate conns sps cpm cores p50 p99 rss del sent ref err host lg_cpu wait lag label
    local idle bps tinfo bpr
    local who=meltp
    [ "$TARGET" = sink ] && who=sink
    if [ -s "$TMP/rows" ]; then
        [ "$TARGET" = meltp ] && echo "traces: otlp -> batch -> otlphttp -> sink"
        echo "1000-span requests of ~245 bytes/span; CPU, RSS and cores are the process under test's own"
        echo
        printf '%-30s %10s %9s %6s %7s %7s %8s %23s %8s %7s %6s\n' phase spans/s CPU-s/M cores \
            p50_ms p99_ms RSS_MiB delivered/sent refused errors host%
        while IFS=$'\t' read -r name rate conns sps cpm cores p50 p99 rss del sent ref err host lg_cpu wait lag disk; do
            local guard=""
            case "$name" in
            G | H) guard=" +guard" ;; P) guard=" +disk" ;; T) guard=" +tls" ;;
            K) guard=" tls,new conn" ;; J) guard=" new conn" ;; R | RB) guard=" gRPC" ;;
            O) guard=" gRPC out" ;; FA) guard=" FluentBit" ;; FR) guard=" FluentBit gRPC" ;;
            esac
            if [ "$rate" = 0 ]; then
                label="$name saturation$guard, $conns conn"
            else
                label="$name $((rate / 1000))k spans/s$guard, $conns conn"
            fi
            printf '%-30s %10s %9s %6s %7s %7s %8s %23s %8s %7s %6s\n' "$label" "$sps" "$cpm" "$cores" \
                "$p50" "$p99" "$rss" "$del/$sent" "$ref" "$err" "$host"
        done <"$TMP/rows"
        echo
    fi
    if [ -s "$TMP/rows-rw" ]; then
        [ "$TARGET" = meltp ] && echo "remote write: prometheusremotewrite -> batch -> prometheusremotewrite -> sink"
        echo "1.0 requests of $SERIES_PER_REQ series x 1 sample (7 labels), $ACTIVE_SERIES active series;" \
            "delivered excludes target_info samples (+tinfo)"
        echo
        printf '%-24s %10s %8s %6s %7s %7s %8s %8s %8s %23s %7s %7s %6s %5s\n' phase samples/s \
            CPU-s/M cores p50_ms p99_ms RSS_MiB idle_MiB B/series delivered/sent +tinfo refused \
            errors host%
        while IFS=$'\t' read -r name rate conns sps cpm cores p50 p99 rss del sent ref err host lg_cpu wait lag idle bps tinfo bpr; do
            if [ "$rate" = 0 ]; then
                label="D saturation, $conns conn"
            else
                label="$name $((rate / 1000))k samples/s, $conns conn"
            fi
            printf '%-24s %10s %8s %6s %7s %7s %8s %8s %8s %23s %7s %7s %6s %5s\n' "$label" "$sps" \
                "$cpm" "$cores" "$p50" "$p99" "$rss" "$idle" "$bps" "$del/$sent" "$tinfo" "$ref" \
                "$err" "$host"
        done <"$TMP/rows-rw"
        echo
    fi
    [ -f "$TMP/notes" ] && cat "$TMP/notes" && echo
    if [ -s "$TMP/rows" ]; then
        local b_sps="" a_cpm="" a_p99="" a_rss="" r_cpm="" r_rss="" fa_cpm="" fa_rss="" fr_cpm="" fr_rss="" k_cpm="" j_cpm=""
        while IFS=$'\t' read -r name rate conns sps cpm cores p50 p99 rss del sent ref err host lg_cpu wait lag disk; do
            [ "$name" = B ] && b_sps=$sps
            [ "$name" = A ] && a_cpm=$cpm && a_p99=$p99 && a_rss=$rss
            [ "$name" = R ] && r_cpm=$cpm && r_rss=$rss
            [ "$name" = FA ] && fa_cpm=$cpm && fa_rss=$rss
            [ "$name" = FR ] && fr_cpm=$cpm && fr_rss=$rss
            [ "$name" = K ] && k_cpm=$cpm
            [ "$name" = J ] && j_cpm=$cpm
        done <"$TMP/rows"
        while IFS=$'\t' read -r name rate conns sps cpm cores p50 p99 rss del sent ref err host lg_cpu wait lag disk; do
            if [ "$name" = G ] || [ "$name" = H ]; then
                echo "phase $name (synthetic_guard in the pipeline):"
                if [ "$name" = G ] && [ -n "$b_sps" ]; then
                    echo "  guard does not halve throughput:  $(verdict "$(calc '%d' "$sps >= 0.5 * $b_sps")") ($sps spans/s with the guard, $b_sps without (phase B))"
                elif [ "$name" = H ] && [ -n "$a_cpm" ]; then
                    echo "  CPU cost of the guard:            $cpm CPU-s per million spans with it, $a_cpm without (phase A)"
                else
                    echo "  (run phase B with G, or A with H, to compare)"
                fi
                echo "  every span delivered:             $(verdict "$(calc '%d' "$del == $sent")") ($del of $sent)"
                continue
            fi
            if [ "$name" = T ]; then
                echo "phase T (phase A over TLS, keep-alive; at $rate spans/s):"
                echo "  CPU per million spans:           $cpm over TLS, ${a_cpm:-"(run phase A)"} plain (phase A)"
                echo "  p99 latency:                     $p99 ms over TLS, ${a_p99:-"-"} ms plain"
                echo "  every span delivered:            $(verdict "$(calc '%d' "$del == $sent && $ref == 0 && $err == 0")") ($del of $sent, $ref refused requests, $err errors)"
                continue
            fi
            if [ "$name" = K ] || [ "$name" = J ]; then
                [ "$name" = J ] && continue
                echo "phase K (a new TLS connection per request of $SPANS_PER_REQ_FRESH spans, closed loop, $conns conn):"
                echo "  meltp CPU per request:           $(calc '%.3f' "$cpm * $SPANS_PER_REQ_FRESH / 1000") ms ($sps spans/s)"
                if [ -n "$j_cpm" ]; then
                    echo "  handshake cost per connection:   $(calc '%.3f' "($cpm - $j_cpm) * $SPANS_PER_REQ_FRESH / 1000") ms of meltp CPU (new TLS connection minus new plain one, phase J: $(calc '%.3f' "$j_cpm * $SPANS_PER_REQ_FRESH / 1000") ms per request)"
                else
                    echo "  (run phase J too for the handshake cost)"
                fi
                echo "  every span delivered:            $(verdict "$(calc '%d' "$del == $sent && $ref == 0 && $err == 0")") ($del of $sent, $ref refused requests, $err errors)"
                continue
            fi
            if [ "$name" = O ]; then
                echo "phase O (phase A's load out through the otlp gRPC exporter, h2c, into a grpc-js sink):"
                echo "  CPU per million spans:           $cpm$([ -n "$a_cpm" ] && echo " (phase A, otlphttp: $a_cpm)")"
                echo "  p99 latency:                     $p99 ms$([ -n "$a_p99" ] && echo " (phase A: $a_p99 ms)")"
                echo "  offered rate held:               $(verdict "$(calc '%d' "$sps >= 0.98 * $rate")") ($sps spans/s)"
                echo "  every span delivered:            $(verdict "$(calc '%d' "$del == $sent && $ref == 0 && $err == 0")") ($del of $sent, $ref refused requests, $err errors)"
                continue
            fi
            if [ "$name" = R ]; then
                echo "phase R (OTLP/gRPC, at $rate spans/s):"
                echo "  CPU per million spans <= $TARGET_GRPC_CPU_PER_M s:  $(verdict "$(calc '%d' "$cpm <= $TARGET_GRPC_CPU_PER_M")") ($cpm; phase A over HTTP: ${a_cpm:-not run})"
                echo "  p99 added latency <= $TARGET_GRPC_P99_MS ms:       $(verdict "$(calc '%d' "$p99 <= $TARGET_GRPC_P99_MS")") ($p99 ms, request answered once queued)"
                echo "  every span delivered:            $(verdict "$(calc '%d' "$del == $sent && $ref == 0 && $err == 0")") ($del of $sent, $ref refused requests, $err errors)"
                echo "  offered rate held:               $(verdict "$(calc '%d' "$sps >= 0.98 * $rate")") ($sps spans/s; worst request start lag ${lag} ms)"
                continue
            fi
            if [ "$name" = FA ] || [ "$name" = FR ]; then
                local mc=$a_cpm mr=$a_rss what="OTLP/HTTP, phase A"
                [ "$name" = FR ] && mc=$r_cpm && mr=$r_rss && what="OTLP/gRPC, phase R"
                echo "phase $name (Fluent Bit $FLUENT_BIT, $what's load):"
                echo "  Fluent Bit: $cpm CPU-s per million spans, peak RSS $rss MiB, $del of $sent spans delivered ($ref refused, $err errors)"
                if [ -n "$mc" ]; then
                    echo "  meltp / Fluent Bit: CPU $(calc '%.2f' "$mc / ($cpm > 0 ? $cpm : 1)"), RSS $(calc '%.2f' "$mr / ($rss > 0 ? $rss : 1)")"
                fi
                continue
            fi
            if [ "$name" = P ]; then
                echo "phase P (phase A with the queue on disk: file_storage, fsync: true; at $rate spans/s):"
                if [ -n "$a_cpm" ]; then
                    echo "  CPU <= 2x in-memory (phase A):   $(verdict "$(calc '%d' "$cpm <= 2 * $a_cpm")") ($cpm CPU-s per million spans, $a_cpm in memory)"
                    echo "  p99 added latency:               $(calc '%.1f' "$p99 - $a_p99") ms ($p99 ms, $a_p99 ms in memory)"
                else
                    echo "  CPU per million spans:           $cpm (run phase A too for the 2x target); p99 $p99 ms"
                fi
                echo "  offered rate held:               $(verdict "$(calc '%d' "$sps >= 0.98 * $rate")") ($sps spans/s; worst request start lag ${lag} ms)"
                echo "  disk bytes written per span:     $disk (/proc/PID/io write_bytes)"
                echo "  every span delivered:            $(verdict "$(calc '%d' "$del == $sent && $ref == 0 && $err == 0")") ($del of $sent, $ref refused requests, $err errors)"
                continue
            fi
            if [ "$rate" != 0 ]; then
                echo "phase A targets (at $rate spans/s):"
                echo "  CPU per million spans <= $TARGET_CPU_PER_M s:  $(verdict "$(calc '%d' "$cpm <= $TARGET_CPU_PER_M")") ($cpm)"
                echo "  peak RSS <= $TARGET_RSS_MIB MiB:             $(verdict "$(calc '%d' "$rss <= $TARGET_RSS_MIB")") ($rss MiB)"
                echo "  every span delivered:            $(verdict "$(calc '%d' "$del == $sent && $ref == 0 && $err == 0")") ($del of $sent, $ref refused requests, $err errors; last span arrived ${wait}s after the load ended)"
                echo "  offered rate held:               $(verdict "$(calc '%d' "$sps >= 0.98 * $rate")") ($sps spans/s; worst request start lag ${lag} ms)"
            else
                echo "phase $name (saturation):"
                echo "  $(printf '%-33s' "$who uses both cores:")$(verdict "$(calc '%d' "$cores > 1.0 && $host >= 90")") ($cores cores on average while the host was ${host}% busy; loadgen used ${lg_cpu} CPU-s)"
                echo "  every accepted span delivered:   $(verdict "$(calc '%d' "$del == $sent")") ($del of $sent; $ref refused requests, $err errors)"
            fi
        done <"$TMP/rows"
    fi
    if [ -s "$TMP/rows-rw" ]; then
        while IFS=$'\t' read -r name rate conns sps cpm cores p50 p99 rss del sent ref err host lg_cpu wait lag idle bps tinfo bpr; do
            if [ "$rate" != 0 ] && [ "$name" = E ]; then
                echo "phase E (the same load converted RW -> OTLP -> RW, passthrough: false; for comparison, no target):"
                echo "  CPU per million samples:             $cpm (loadgen used ${lg_cpu} CPU-s)"
                echo "  every sample delivered:              $(verdict "$(calc '%d' "$del == $sent && $ref == 0 && $err == 0")") ($del of $sent; $ref refused requests, $err errors)"
            elif [ "$rate" != 0 ]; then
                echo "phase C targets (at $rate samples/s, $ACTIVE_SERIES active series):"
                echo "  CPU per million samples <= $TARGET_RW_CPU_PER_M s:     $(verdict "$(calc '%d' "$cpm <= $TARGET_RW_CPU_PER_M")") ($cpm; loadgen used ${lg_cpu} CPU-s)"
                echo "  RSS per active series <= $TARGET_RW_BYTES_PER_SERIES B:   $(verdict "$(calc '%d' "$bps <= $TARGET_RW_BYTES_PER_SERIES")") ($bps B: peak $rss MiB - idle $idle MiB, over $ACTIVE_SERIES series)"
                local waited="the last sample arrived ${wait}s after the load ended"
                [ "$del" -lt "$sent" ] && waited="bench.sh gave up waiting ${wait}s after the load ended"
                echo "  every sample delivered:              $(verdict "$(calc '%d' "$del == $sent && $ref == 0 && $err == 0")") ($del of $sent, plus $tinfo target_info samples; $ref refused requests, $err errors; $waited)"
                echo "  offered rate held:                   $(verdict "$(calc '%d' "$sps >= 0.98 * $rate")") ($sps samples/s; worst request start lag ${lag} ms; $bpr bytes/request)"
            else
                echo "phase D (remote-write saturation):"
                echo "  $(printf '%-37s' "$who uses both cores:")$(verdict "$(calc '%d' "$cores > 1.0 && $host >= 90")") ($cores cores on average while the host was ${host}% busy; loadgen used ${lg_cpu} CPU-s)"
                echo "  every accepted sample delivered:     $(verdict "$(calc '%d' "$del == $sent")") ($del of $sent, plus $tinfo target_info samples; $ref refused requests, $err errors)"
            fi
        done <"$TMP/rows-rw"
    fi
    if [ ! -s "$TMP/rows" ] && [ ! -s "$TMP/rows-rw" ]; then
        echo "no phase ran"
    fi
}

for bin in "$LOADGEN" "$SINK"; do
    [ -x "$bin" ] || die "$bin not built; run: make bench (or make $bin)"
done
if [ "$TARGET" = meltp ]; then
    [ -x "$MELTP" ] || die "$MELTP not built; run: make bench"
fi
command -v curl >/dev/null || die "curl is needed to read the sink's /stats"

# TLS phases: a CA and a server certificate for 127.0.0.1, made once.
case " $PHASES " in *" T "* | *" K "*)
    command -v openssl >/dev/null || die "openssl is needed for the TLS phases"
    mkdir -p "$TMP/pki"
    (
        cd "$TMP/pki"
        ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        openssl req -x509 $ec -keyout ca.key -out ca.crt -days 2 -subj /CN=bench-ca
        openssl req $ec -keyout server.key -out server.csr -subj /CN=127.0.0.1
        printf 'subjectAltName=IP:127.0.0.1\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 1 -days 2 \
            -extfile server.ext -out server.crt
    ) >/dev/null 2>&1 || die "openssl could not make the TLS phases' certificates"
    ;;
esac

for phase in $PHASES; do
    case "$phase" in
    A) run_phase A "$RATE_A" "$CONN_A" "$DUR_A" ;;
    B) run_phase B 0 "$CONN_B" "$DUR_B" ;;
    C) run_phase C "$RATE_C" "$CONN_C" "$DUR_C" rw ;;
    E) RW_PASSTHROUGH=false run_phase E "$RATE_C" "$CONN_C" "$DUR_C" rw ;;
    D) run_phase D 0 "$CONN_D" "$DUR_D" rw ;;
    G) run_phase G 0 "$CONN_B" "$DUR_B" guard ;;
    H) run_phase H "$RATE_A" "$CONN_A" "$DUR_A" guard ;;
    P) run_phase P "$RATE_A" "$CONN_A" "$DUR_A" persist ;;
    T) run_phase T "$RATE_A" "$CONN_A" "$DUR_A" tls ;;
    K) run_phase K 0 "$CONN_K" "$DUR_K" tlsfresh ;;
    J) run_phase J 0 "$CONN_K" "$DUR_K" fresh ;;
    O) run_phase O "$RATE_A" "$CONN_A" "$DUR_A" grpcout ;;
    R) run_phase R "$RATE_A" "$CONN_A" "$DUR_A" grpc ;;
    RB) run_phase RB 0 "$CONN_B" "$DUR_B" grpc ;;
    FA | FR)
        if [ -z "$FLUENT_BIT" ] || [ ! -f "$FLUENT_BIT_CFG" ]; then
            echo "  phase $phase SKIPPED: no Fluent Bit binary (BENCH_FLUENT_BIT) or relay config" >>"$TMP/notes"
        elif [ "$phase" = FA ]; then
            run_phase FA "$RATE_A" "$CONN_A" "$DUR_A" fb-http
        else
            run_phase FR "$RATE_A" "$CONN_A" "$DUR_A" fb-grpc
        fi
        ;;
    *) die "unknown phase '$phase' (phases are A, B, C, D, E, FA, FR, G, H, J, K, O, P, R, RB and T)" ;;
    esac
done
report
