#!/usr/bin/env bash
# Runs each libFuzzer target named on the command line for FUZZ_SECONDS (default 30) from its
# seed corpus tests/fuzz/corpus/<target>, one after the other (the machine's cores are shared),
# and prints per target: execs, execs/s, new corpus units and the result. New inputs go to
# $FUZZ_BUILD/corpus/<target> (the committed seeds are never rewritten); a crash, leak or
# oracle failure is saved under $FUZZ_BUILD/findings/ and makes the exit status 1.
# Used by `make fuzz`; docs/FUZZING.md says what each target checks.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${FUZZ_BUILD:-build-fuzz}
secs=${FUZZ_SECONDS:-30}
mkdir -p "$build/findings" "$build/logs"
status=0
summary=()
for t in "$@"; do
  bin="$build/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing (make fuzz builds it)"; status=1; continue
  fi
  seeds="tests/fuzz/corpus/$t"
  work="$build/corpus/$t"
  mkdir -p "$work"
  dirs=("$work")
  [ -d "$seeds" ] && dirs+=("$seeds")
  log="$build/logs/$t.log"
  # -timeout: one input taking 10 s is a finding (a hang), not slowness;
  # -rss_limit_mb: the default 2 GB, said explicitly, as several engineers share the machine
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/findings/$t-" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  units=$(ls "$work" | wc -l)
  if [ "$rc" = 0 ]; then
    result=clean
    if grep -q '^ORACLE (FUZZ_ORACLE=0' "$log"; then
      result="clean, but the oracle disagreed (FUZZ_ORACLE=0; first cases in $log)"
    fi
  else
    status=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    kind=$(grep -m1 -oE 'ORACLE|ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)[^ ]*( [a-z-]+)?|runtime error' "$log")
    result="FAILED ($kind) -> ${artifact:-see $log}"
  fi
  line=$(printf '%-18s %10s execs %8s/s %6s units  %s' "$t" "${execs:-0}" "${rate:-0}" "$units" "$result")
  echo "fuzz: $line"
  summary+=("$line")
done
echo "fuzz: summary (${secs}s per target, logs in $build/logs)"
for l in "${summary[@]}"; do echo "  $l"; done
exit $status
