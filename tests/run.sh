#!/usr/bin/env bash
# The whole test suite: unit tests (build/unit), then integration tests that start the real
# build/meltp on free loopback ports. Ends with "N passed, N failed".
# Usage: tests/run.sh [filter]   (filter picks unit tests and integration tests by name)
set -u
cd "$(dirname "$0")/.."
BUILD=${MELTP_BUILD:-build}
export MELTP_BUILD=$BUILD
export MELTP_FIXTURES=${MELTP_FIXTURES:-$PWD/tests/fixtures}
filter=${1:-}
passed=0
failed=0

echo "== unit tests ($BUILD/unit)"
out=$("$BUILD/unit" $filter 2>&1)
echo "$out" | grep -v '^ok ' || true
line=$(echo "$out" | grep -E '^unit: [0-9]+ passed, [0-9]+ failed$' | tail -1)
if [ -n "$line" ]; then
  passed=$((passed + $(echo "$line" | awk '{print $2}')))
  failed=$((failed + $(echo "$line" | awk '{print $4}')))
else
  echo "unit test runner crashed"
  failed=$((failed + 1))
fi

echo "== integration tests"
out=$(python3 tests/integration/runner.py $filter 2>&1)
echo "$out"
line=$(echo "$out" | grep -E '^integration: [0-9]+ passed, [0-9]+ failed$' | tail -1)
if [ -n "$line" ]; then
  passed=$((passed + $(echo "$line" | awk '{print $2}')))
  failed=$((failed + $(echo "$line" | awk '{print $4}')))
else
  echo "integration test runner crashed"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
