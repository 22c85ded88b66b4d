#!/usr/bin/env bash
# The whole test suite: unit tests (build/unit), then integration tests (pytest, in parallel on
# MELTP_TEST_JOBS workers, default 2) that start the real build/meltp on free loopback ports.
# Each result prints as it finishes; the last line is "N passed, N failed, N skipped".
# MELTP_TEST_MARK selects by marker (make test: "not slow"; make test-slow: "slow"), MELTP_UNIT=0
# leaves the unit tests out.
# Usage: tests/run.sh [filter]   (filter picks unit tests and integration tests by name;
#        for integration tests "module:name" parts, e.g. test_profiles or test_loki:test_push)
set -u
cd "$(dirname "$0")/.."
BUILD=${MELTP_BUILD:-build}
export MELTP_BUILD=$BUILD
export MELTP_FIXTURES=${MELTP_FIXTURES:-$PWD/tests/fixtures}
filter=${1:-}
jobs=${MELTP_TEST_JOBS:-2}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0
failed=0
skipped=0

if [ "${MELTP_UNIT:-1}" = 1 ]; then
echo "== unit tests ($BUILD/unit)"
"$BUILD/unit" $filter >"$log" 2>&1
grep -v '^ok ' "$log"
line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
if [ -n "$line" ]; then
  passed=$((passed + $(echo "$line" | awk '{print $2}')))
  failed=$((failed + $(echo "$line" | awk '{print $4}')))
else
  echo "unit test runner crashed"
  failed=$((failed + 1))
fi
fi

echo "== integration tests (pytest, $jobs workers)"
args=(-v -n "$jobs")
[ "$jobs" = 0 ] && args=(-v)
if [ -n "$filter" ]; then
  args+=(-k "${filter//:/ and }")
fi
# MELTP_TEST_MARK: a pytest marker expression ("not slow" for make test, "slow" for test-slow)
if [ -n "${MELTP_TEST_MARK:-}" ]; then
  args+=(-m "$MELTP_TEST_MARK")
fi
"${MELTP_PYTHON:-/usr/bin/python3}" -m pytest -c tests/integration/pytest.ini --rootdir tests/integration "${args[@]}" \
  tests/integration 2>&1 | tee "$log"
summary=$(grep -E '^=+ .*(passed|failed|skipped|error|no tests ran).* in [0-9.]+s' "$log" | tail -1)
count() { echo "$summary" | grep -oE "[0-9]+ $1" | awk '{s+=$1} END {print s+0}'; }
if [ -n "$summary" ]; then
  passed=$((passed + $(count passed)))
  failed=$((failed + $(count failed) + $(count error)))
  skipped=$((skipped + $(count skipped)))
else
  echo "integration test runner crashed"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
