# tests/bench/lib.sh - shell helpers the smaller bench scripts share (bench_logs.sh,
# bench_kafka.sh). Sourced after the script defines log() and die().

# A loopback port nothing listens on now.
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        echo "$p"; return 0
    done
    die "no free port"
}
# wait_listening PORT PID: 0 once something accepts on PORT, 1 when PID died or 10 s passed.
wait_listening() {
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
cpu_ticks() { local s f; s=$(<"/proc/$1/stat"); read -r -a f <<<"${s##*) }"; echo $((f[11] + f[12])); }
vm_hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
jget() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1" | head -n1; }
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }
