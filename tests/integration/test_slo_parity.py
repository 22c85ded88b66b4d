"""Parity of meltp's in-process SLO evaluation with Prometheus evaluating the rules that
`meltp slo rules` generates from the same spec.

One metric-ratio SLO over two OTLP cumulative counters (requests and errors, sampled every
minute, linear growth: 0.05 % errors, then a step to 10 % for an hour, then back). The same
samples go (a) through the engine's own observer and evaluator with a simulated clock
(`meltp slo simulate`), and (b) into a promtool unit test (`input_series`, one value a minute)
against the generated rules. promtool then asserts, from the engine's output:
  - every recorded error ratio slo:sli_error:ratio_rate<W> at bucket-aligned times
    (the engine's value, within 1e-9: `abs(rule - engine) < bool 1e-9` must be 1), and we
    check that the engine's values equal the exact expected ratios within 1e-9 ourselves;
  - at every minute, exactly the alerts (alertname + sloth_severity) the engine has firing.

Why the numbers can agree exactly: on samples aligned with the windows, rate(bad[W]) /
rate(total[W]) is (bad(T) - bad(T-W)) / (total(T) - total(T-W)): both series share their
sample times, so Prometheus' extrapolation factor cancels (counters start high, so the
extrapolation is never capped at zero). The engine places a point's increment just before the
point's timestamp, so its window [T-W, T] holds the increments of the points in (T-W, T],
the same samples Prometheus 2.x differences over [T-W, T]."""
import json
import os
import shutil
import subprocess
import tempfile

import yaml

from harness import MELTP

SPEC = """version: meltp/v1
service: shop
slos:
  - name: checkout
    objective: 99.9
    period: 30d
    sli:
      ratio:
        bad: 'app_errors_total{job="api"}'
        total: 'app_requests_total{job="api"}'
    alerting:
      name: ShopCheckoutBurn
      tiers:
        - {name: page-quick, severity: page, long: 1h, short: 5m, factor: 14.4}
        - {name: page-slow, severity: page, long: 6h, short: 30m, factor: 6}
        - {name: ticket-quick, severity: ticket, long: 1d, short: 2h, factor: 3}
        - {name: ticket-slow, severity: ticket, long: 3d, short: 6h, factor: 1}
"""

MINUTES = 300          # samples at 0, 1m, ..., 299m
STEP_AT, RECOVER_AT = 120, 180
TOTAL_RATE = 2000      # requests per minute
BASE_ERR, OUTAGE_ERR = 1, 200   # errors per minute: 0.05 %, then 10 %
TOLERANCE = 1e-9       # the issue asks for 1e-6; the data allows last-bit agreement
WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320,
           "30d": 43200}


def series():
    tot, bad = [10_000_000], [1_000_000]
    for m in range(1, MINUTES):
        tot.append(tot[-1] + TOTAL_RATE)
        bad.append(bad[-1] + (OUTAGE_ERR if STEP_AT < m <= RECOVER_AT else BASE_ERR))
    return tot, bad


def expected_ratio(tot, bad, t, w):
    """The exact error ratio over the increments of the samples in (t - w, t]."""
    lo = max(t - w, 0)
    return (bad[t] - bad[lo]) / (tot[t] - tot[lo])


def run(*args):
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_engine_matches_promtool_on_the_generated_rules():
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-")
    spec = os.path.join(d, "spec.yaml")
    with open(spec, "w") as f:
        f.write(SPEC)
    tot, bad = series()
    doc = {"start_ms": 0, "step_ms": 60000, "series": [
        {"metric": "app_requests_total", "labels": {"job": "api"}, "values": tot},
        {"metric": "app_errors_total", "labels": {"job": "api"}, "values": bad}]}
    sfile = os.path.join(d, "series.json")
    with open(sfile, "w") as f:
        json.dump(doc, f)

    # (a) the engine, simulated clock, evaluated after every minute's samples
    rc, out, err = run(MELTP, "slo", "simulate", "--series", sfile, spec)
    assert rc == 0, err
    evals = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert len(evals) == MINUTES
    by_min = {}
    for e in evals:
        assert e["t_ms"] % 60000 == 0
        s, = e["slos"]
        assert s["id"] == "shop-checkout"
        by_min[e["t_ms"] // 60000] = s

    # the engine itself is exact on this data (independent of Prometheus)
    for t in range(1, MINUTES):
        for wn, w in WINDOWS.items():
            got = by_min[t]["windows"][wn]["error_ratio"]
            want = expected_ratio(tot, bad, t, w)
            assert abs(got - want) < 1e-9, (t, wn, got, want)

    # (b) the generated rules under promtool, asserting the engine's numbers
    rules = os.path.join(d, "rules.yml")
    rc, _, err = run(MELTP, "slo", "rules", "--out", rules, spec)
    assert rc == 0, err
    with open(rules) as f:
        groups = yaml.safe_load(f)["groups"]
    alert_rules = {}
    for g in groups:
        for r in g["rules"]:
            if "alert" in r:
                alert_rules[(r["alert"], r["labels"]["sloth_severity"])] = r
    assert set(alert_rules) == {("ShopCheckoutBurn", "page"), ("ShopCheckoutBurn", "ticket")}
    ident = {"sloth_id": "shop-checkout", "sloth_service": "shop", "sloth_slo": "checkout"}

    expr_tests = []
    for t in range(5, MINUTES, 5):          # bucket-aligned evaluation times
        for wn in WINDOWS:
            # promtool 2.42 compares sample values exactly and the two sides divide in a
            # different order (last-bit differences), so Prometheus checks the tolerance
            v = by_min[t]["windows"][wn]["error_ratio"]
            lab = ",".join('%s="%s"' % kv for kv in sorted(ident.items()))
            expr_tests.append({
                "expr": 'abs(slo:sli_error:ratio_rate%s{sloth_id="shop-checkout"} - %r) < bool %g'
                        % (wn, v, TOLERANCE),
                "eval_time": "%dm" % t,
                "exp_samples": [{"labels": '{%s,sloth_window="%s"}' % (lab, wn), "value": 1}]})

    alert_tests = []
    firing_minutes = {"page": [], "ticket": []}
    for t in range(1, MINUTES):
        firing = set()
        for tier in by_min[t]["tiers"].values():
            if tier["state"] == "firing":
                firing.add((tier["alert"], tier["severity"]))
        exp = []
        for key in sorted(firing):
            r = alert_rules[key]
            exp.append({"exp_labels": dict(ident, **r["labels"]),
                        "exp_annotations": r.get("annotations", {})})
            firing_minutes[key[1]].append(t)
        alert_tests.append({"eval_time": "%dm" % t, "alertname": "ShopCheckoutBurn",
                            "exp_alerts": exp})
    # the scenario really exercises both alerts turning on (and the page turning off)
    assert firing_minutes["page"] and firing_minutes["ticket"], firing_minutes
    assert firing_minutes["page"][0] > STEP_AT and firing_minutes["page"][-1] < MINUTES - 1
    assert min(firing_minutes["ticket"]) > STEP_AT

    def values(v):
        return " ".join(str(x) for x in v)

    # promtool runs the groups of a file sorted by name at each step, which puts the alert
    # group (sloth-slo-alerts-*) before the recordings it reads: alerts would lag one step.
    # The engine computes ratios and alerts in one pass, so evaluate in dependency order.
    # (A real Prometheus runs groups independently: its alerts may lag up to one interval.)
    order = [g["name"] for g in groups if "recordings" in g["name"]] + \
            [g["name"] for g in groups if "recordings" not in g["name"]]
    test = {"rule_files": [rules], "evaluation_interval": "1m", "group_eval_order": order,
            "tests": [{
        "name": "engine parity", "interval": "1m",
        "input_series": [{"series": 'app_requests_total{job="api"}', "values": values(tot)},
                         {"series": 'app_errors_total{job="api"}', "values": values(bad)}],
        "promql_expr_test": expr_tests,
        "alert_rule_test": alert_tests}]}
    tfile = os.path.join(d, "parity_test.yml")
    with open(tfile, "w") as f:
        yaml.safe_dump(test, f, sort_keys=False)
    rc, out, err = run("promtool", "test", "rules", tfile)
    assert rc == 0, (out + err)[-4000:]
    assert "SUCCESS" in out + err
