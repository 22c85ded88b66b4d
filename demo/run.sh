#!/usr/bin/env bash
# The demo drill (`make demo`, docs/OPERATIONS.md "The demo drill"): starts the local webhook
# receiver, meltp with configs/demo.yaml and the synthetic traffic generator; at DEMO_CHAOS
# an error burst hits patient-api and the page alert arrives within five minutes, printed as
# Slack shows it. Ctrl-C stops all three (meltp drains its queues) and lists what was written.
#
# Environment: DEMO_RATE (actions/s, 25), DEMO_DURATION (0 = until Ctrl-C), DEMO_CHAOS
# (SERVICE:AT:FOR[:RATIO], patient-api:2m:3m:0.5), MELTP_DEMO_DIR (./data/demo), the
# addresses MELTP_DEMO_OTLP (127.0.0.1:4318), MELTP_DEMO_HEALTH (127.0.0.1:13133),
# MELTP_DEMO_METRICS (127.0.0.1:8888), MELTP_DEMO_HOOKS (127.0.0.1:9099), MELTP_BUILD (build).
set -u
cd "$(dirname "$0")/.."
PY=${MELTP_PYTHON:-python3}
export MELTP_DEMO_DIR=${MELTP_DEMO_DIR:-./data/demo}
export MELTP_DEMO_OTLP=${MELTP_DEMO_OTLP:-127.0.0.1:4318}
export MELTP_DEMO_HEALTH=${MELTP_DEMO_HEALTH:-127.0.0.1:13133}
export MELTP_DEMO_METRICS=${MELTP_DEMO_METRICS:-127.0.0.1:8888}
export MELTP_DEMO_HOOKS=${MELTP_DEMO_HOOKS:-127.0.0.1:9099}
RATE=${DEMO_RATE:-25}
DURATION=${DEMO_DURATION:-0}
CHAOS=${DEMO_CHAOS:-patient-api:2m:3m:0.5}
MELTP=${MELTP_BUILD:-build}/meltp

rm -rf "$MELTP_DEMO_DIR"
mkdir -p "$MELTP_DEMO_DIR"
started=$(date +%s)
pids=()

stop() {
    trap '' INT TERM
    echo
    echo "demo: stopping"
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null
    done
    echo "demo: meltp's ledger (accepted = sent + dropped + queued):"
    grep -h "ledger:" "$MELTP_DEMO_DIR/meltp.log" | sed 's/^.*ledger: /  /'
    echo "demo: files written under $MELTP_DEMO_DIR:"
    (cd "$MELTP_DEMO_DIR" && find . -type f | sort | sed 's/^\.\//  /')
    exit 0
}
trap stop INT TERM

$PY demo/webhook_receiver.py --listen "$MELTP_DEMO_HOOKS" --save "$MELTP_DEMO_DIR/alerts" \
    --started "$started" &
pids+=($!)
"$MELTP" run --config configs/demo.yaml >"$MELTP_DEMO_DIR/meltp.log" 2>&1 &
mpid=$!
pids+=($mpid)
for _ in $(seq 100); do
    if curl -fs "http://$MELTP_DEMO_HEALTH/healthz" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$mpid" 2>/dev/null; then
        echo "demo: meltp did not start:"
        cat "$MELTP_DEMO_DIR/meltp.log"
        stop
    fi
    sleep 0.1
done

cat <<EOT
demo: meltp is running (log: $MELTP_DEMO_DIR/meltp.log). Where to look:
  SLO status page   http://$MELTP_DEMO_METRICS/slo
  SLOs as JSON      http://$MELTP_DEMO_METRICS/api/v1/slos
  meltp's metrics   http://$MELTP_DEMO_METRICS/metrics  (meltp_service_items_total: coverage)
  dashboards        dashboards/meltp-overview.json, dashboards/meltp-coverage.json,
                    dashboards/slo-*.json (import into Grafana)
  files written     $MELTP_DEMO_DIR/{traces,metrics,logs,profiles}.jsonl, alerts/, slo/
The chaos step ($CHAOS) makes patient-api fail; the page alert follows within 5 minutes.
Ctrl-C stops everything.
EOT

$PY demo/traffic.py --endpoint "http://$MELTP_DEMO_OTLP" --rate "$RATE" --duration "$DURATION" \
    --chaos "$CHAOS" &
gpid=$!
pids+=($gpid)
wait "$gpid"
stop
