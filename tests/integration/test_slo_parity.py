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
import re
import shutil
import subprocess
import tempfile

import yaml

from harness import MELTP

import pytest

# promtool evaluates every case over hours of samples: `make test-slow`, not `make test`
pytestmark = pytest.mark.slow

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


# ---- helpers for the parity tests below ------------------------------------------------------

def _simulate(d, spec_text, series, minutes, every_min=1):
    """Writes the spec, runs `meltp slo simulate` on `series` ([(metric, labels, values)],
    values None = no sample), returns (spec path, {minute: {instance id: slo}})."""
    spec = os.path.join(d, "spec.yaml")
    with open(spec, "w") as f:
        f.write(spec_text)
    doc = {"start_ms": 0, "step_ms": 60000, "eval_every_ms": every_min * 60000,
           "series": [{"metric": m, "labels": l, "values": v} for m, l, v in series]}
    sfile = os.path.join(d, "series.json")
    with open(sfile, "w") as f:
        json.dump(doc, f)
    rc, out, err = run(MELTP, "slo", "simulate", "--series", sfile, spec)
    assert rc == 0, err
    by_min = {}
    for line in out.splitlines():
        if line.strip():
            e = json.loads(line)
            by_min[e["t_ms"] // 60000] = {s["id"]: s for s in e["slos"]}
    assert len(by_min) == (minutes + every_min - 1) // every_min
    return spec, by_min


def _promtool(d, spec, series, expr_tests, alert_tests, every_min=1):
    rules = os.path.join(d, "rules.yml")
    rc, _, err = run(MELTP, "slo", "rules", "--out", rules, spec)
    assert rc == 0, err
    rc, out, err = run("promtool", "check", "rules", rules)
    assert rc == 0, out + err
    with open(rules) as f:
        groups = yaml.safe_load(f)["groups"]
    order = [g["name"] for g in groups if "recordings" in g["name"]] + \
            [g["name"] for g in groups if "recordings" not in g["name"]]

    def lab(m, l):
        return m + "{" + ",".join('%s="%s"' % kv for kv in sorted(l.items())) + "}"

    def vals(v):
        return " ".join("_" if x is None else str(x) for x in v)
    test = {"rule_files": [rules], "evaluation_interval": "%dm" % every_min,
            "group_eval_order": order,
            "tests": [{"name": "engine parity", "interval": "1m",
                       "input_series": [{"series": lab(m, l), "values": vals(v)}
                                        for m, l, v in series],
                       "promql_expr_test": expr_tests, "alert_rule_test": alert_tests}]}
    tfile = os.path.join(d, "parity_test.yml")
    with open(tfile, "w") as f:
        yaml.safe_dump(test, f, sort_keys=False)
    rc, out, err = run("promtool", "test", "rules", tfile)
    return rc, out + err, groups, rules, tfile


def _close(expr, v, labels, t, tol=1e-9):
    return {"expr": "abs(%s - %r) < bool %g" % (expr, v, tol), "eval_time": "%dm" % t,
            "exp_samples": [{"labels": labels, "value": 1}]}


def _ident(sid, service, slo):
    return {"sloth_id": sid, "sloth_service": service, "sloth_slo": slo}


def _flag_test(sid, ident, r, t, invalid):
    """slo:sli_invalid:flag of group route=r at minute t: 1 when the engine says invalid."""
    return {"expr": 'slo:sli_invalid:flag{sloth_id="%s",route="%s"}' % (sid, r),
            "eval_time": "%dm" % t,
            "exp_samples": [{"labels": "slo:sli_invalid:flag" + _labels(dict(ident, route=r)),
                             "value": 1}] if invalid else []}


def _ratio_and_flag_tests(s, sid, ident, r, t, wins, exprs, invalid):
    """The engine's instance `s` (route=r) at minute t: its window error ratios (windows with
    events) and invalid state as promtool tests; notes the minute in invalid[r] if invalid."""
    sel = '{sloth_id="%s",route="%s"}' % (sid, r)
    for wn in wins:
        w = s["windows"][wn]
        if w["total"]:
            exprs.append(_close("slo:sli_error:ratio_rate%s%s" % (wn, sel), w["error_ratio"],
                                _labels(dict(ident, route=r, sloth_window=wn)), t))
    bad = s["state"] == "invalid"
    if bad:
        invalid.setdefault(r, []).append(t)
    exprs.append(_flag_test(sid, ident, r, t, bad))


def _without_flag_term(groups, rules, tfile, edit, what):
    """The same promtool test against the rules with slo:sli_invalid:flag's expression passed
    through edit() (a term left out) must fail."""
    for g in groups:
        for r in g["rules"]:
            if r.get("record") == "slo:sli_invalid:flag":
                r["expr"] = edit(r["expr"])
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    rc, out = run("promtool", "test", "rules", tfile)[:2]
    assert rc != 0, "invalid-data parity passed without %s" % what


def _labels(d):
    return "{" + ",".join('%s="%s"' % kv for kv in sorted(d.items())) + "}"


# ---- 1. calendar periods ---------------------------------------------------------------------

CAL_SPEC = """version: meltp/v1
service: shop
slos:
  - name: cart
    objective: 99
    period:
      calendar: %s
      time_zone: %s
    sli:
      ratio:
        bad: 'cart_errors_total{job="api"}'
        total: 'cart_requests_total{job="api"}'
    alerting:
      name: ShopCartBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 5m, factor: 10}
"""


def _cal_series(minutes, outage):
    tot, bad = [5_000_000], [40_000]
    for m in range(1, minutes):
        tot.append(tot[-1] + 1000)
        bad.append(bad[-1] + (300 if outage[0] < m <= outage[1] else 3))
    return tot, bad


def _check_calendar(kind, zone, minutes, boundary, every_min, outage):
    """The period rules (slo:sli_total:count_period, slo:sli_bad:count_period,
    slo:sli_error:ratio_period, slo:period_error_budget_remaining:ratio) equal the engine's
    calendar period numbers at every evaluation, across a period boundary, and (with a 1m
    evaluation interval) the page alert fires at the same minutes."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-cal-")
    tot, bad = _cal_series(minutes, outage)
    series = [("cart_requests_total", {"job": "api"}, tot),
              ("cart_errors_total", {"job": "api"}, bad)]
    spec, by_min = _simulate(d, CAL_SPEC % (kind, zone), series, minutes, every_min)
    pw = "30d" if kind == "month" else "1w"
    ident = _ident("shop-cart", "shop", "cart")
    # the engine itself: the period holds the increments of the samples in (start, t]
    for t in range(every_min, minutes, every_min):
        w = by_min[t]["shop-cart"]["windows"][pw]
        lo = boundary if t >= boundary else 0
        assert w["total"] == tot[t] - tot[lo], (t, w)
        assert w["total"] - w["good"] == bad[t] - bad[lo], (t, w)
    exprs, alerts, fired = [], [], []
    sel = '{sloth_id="shop-cart"}'
    for t in range(every_min, minutes, every_min):
        w = by_min[t]["shop-cart"]["windows"][pw]
        lab = _labels(dict(ident, sloth_window=kind))
        exprs.append(_close("slo:sli_total:count_period" + sel, float(w["total"]), lab, t))
        exprs.append(_close("slo:sli_bad:count_period" + sel, float(w["total"] - w["good"]),
                            lab, t))
        if w["total"]:
            exprs.append(_close("slo:sli_error:ratio_period" + sel, w["error_ratio"], lab, t))
            exprs.append(_close("slo:period_error_budget_remaining:ratio" + sel,
                                1 - w["error_ratio"] / (1 - 0.99), lab, t, 1e-6))
        if every_min == 1:
            tier = by_min[t]["shop-cart"]["tiers"]["page"]
            exp = []
            if tier["state"] == "firing":
                fired.append(t)
                exp = [{"exp_labels": dict(ident, sloth_severity="page"), "exp_annotations": {
                    "title": "(page) shop cart SLO error budget burn rate is too fast.",
                    "summary": "shop cart SLO error budget burn rate is over expected."}}]
            alerts.append({"eval_time": "%dm" % t, "alertname": "ShopCartBurn",
                           "exp_alerts": exp})
    if every_min == 1:
        assert fired and fired[0] > outage[0], fired
    rc, out, groups, rules, tfile = _promtool(d, spec, series, exprs, alerts, every_min)
    assert rc == 0, out[-4000:]
    text = open(rules).read()
    assert "WARNING" not in text and "NOT EXACT" not in text
    assert "ratio_rate30d" not in text and "ratio_rate1w" not in text
    # sabotage: the nominal rolling window instead of the calendar period fails the test
    grp = [g for g in groups if "sli-recordings" in g["name"]][0]
    for r in grp["rules"]:
        if r.get("record") == "slo:sli_bad:count_period":
            r["expr"] = 'sum(increase(cart_errors_total{job="api"}[%s]))' % pw
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    rc, out = run("promtool", "test", "rules", tfile)[:2]
    assert rc != 0, "calendar parity passed with a rolling period count"


def test_calendar_month_fixed_offset_zone_matches_engine():
    # Etc/GMT+12 is UTC-12: the local month starts (1970-01-01 00:00 local) at minute 720
    _check_calendar("month", "Etc/GMT+12", 900, 720, 1, (600, 690))


def test_calendar_week_matches_engine_across_the_boundary():
    # Etc/GMT-14 is UTC+14: the ISO week starts (Monday 1970-01-05 00:00 local) at 3d10h;
    # evaluated every 7 minutes, so the chunk tail (since the last hour boundary) is exercised
    _check_calendar("week", "Etc/GMT-14", 5100, 4920, 7, (4700, 4760))


# ---- 2. no-data alerts per group -------------------------------------------------------------

NODATA_GROUP_SPEC = """version: meltp/v1
service: shop
slos:
  - name: pay
    objective: 99
    period: 30d
    no_data: alert
    group_by: [route]
    sli:
      ratio:
        bad: 'pay_errors_total{job="api"}'
        total: 'pay_requests_total{job="api"}'
    alerting:
      name: ShopPayBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 5m, factor: 10}
"""


def test_nodata_alert_per_group_matches_engine():
    """Per group, the generated ShopPayNoData fires at the same minutes as the engine's
    no-data alert: route a reports last at 199m (fires at 259m) while b keeps reporting
    (never fires); c appears at 100m and its counters grow last at 149m (fires at 209m,
    resolves when they grow again at 330m); d appears at 300m and never grows (the engine's
    grace: fires one delay after it was first seen, 360m, not at once)."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-nodata-")
    minutes = 420

    def counter(start, stop, flat_from=None, grow_again=None, base=1000, step=100):
        v, x = [], base
        for m in range(minutes):
            if m < start or m >= stop:
                v.append(None)
                continue
            if m > start and (flat_from is None or m < flat_from or
                              (grow_again is not None and m >= grow_again)):
                x += step
            v.append(x)
        return v
    spec_series = {"a": (0, 200, None, None), "b": (0, minutes, None, None),
                   "c": (100, minutes, 150, 330), "d": (300, minutes, 300, None)}
    series = []
    for r, (a, b, f, g) in spec_series.items():
        series.append(("pay_requests_total", {"job": "api", "route": r},
                       counter(a, b, f, g)))
        series.append(("pay_errors_total", {"job": "api", "route": r},
                       counter(a, b, f, g, base=10, step=1)))
    spec, by_min = _simulate(d, NODATA_GROUP_SPEC, series, minutes)
    ident = _ident("shop-pay", "shop", "pay")
    alerts, fired = [], {}
    for t in range(1, minutes):
        exp = []
        for r in sorted(spec_series):
            inst = by_min[t].get('shop-pay{route="%s"}' % r)
            if inst and inst["nodata_alert"] == "firing":
                fired.setdefault(r, []).append(t)
                exp.append({"exp_labels": dict(ident, route=r, sloth_severity="ticket",
                                               burnrate_tier="no-data"),
                            "exp_annotations": {"title": "shop-pay: no events for 1h"}})
        alerts.append({"eval_time": "%dm" % t, "alertname": "ShopPayNoData", "exp_alerts": exp})
    # the scenario as described, from the engine
    assert fired["a"][0] == 259 and fired["a"][-1] == minutes - 1, fired["a"]
    assert "b" not in fired, fired
    assert fired["c"][0] == 209 and fired["c"][-1] == 329, fired["c"]
    assert fired["d"][0] == 360, fired["d"]
    rc, out, groups, rules, tfile = _promtool(d, spec, series, [], alerts)
    assert rc == 0, out[-4000:]
    # without the grace (watched since 0), d fires at once: the test catches it
    text = open(rules).read()
    assert "slo:nodata_watch_start:time" in text
    for g in groups:
        for r in g["rules"]:
            if r.get("alert") == "ShopPayNoData":
                r["expr"] = r["expr"].replace("(time() - slo:nodata_watch_start:time",
                                              "(time() + 0 * slo:nodata_watch_start:time")
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    rc, out = run("promtool", "test", "rules", tfile)[:2]
    assert rc != 0, "no-data parity passed without the start-up grace"


# ---- 3. min_events with time slice budgeting -------------------------------------------------

SLICES_SPEC = """version: meltp/v1
service: shop
slos:
  - name: search
    objective: 90
    period: 7d
    budgeting: timeslices
    timeslice: {window: 1m, target: 0.9}
    min_events: 30
    sli:
      ratio:
        bad: 'search_errors_total{job="api"}'
        total: 'search_requests_total{job="api"}'
    alerting:
      name: ShopSearchBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 5m, factor: 2}
"""


def test_min_events_counts_time_slices_like_the_engine():
    """With time slice budgeting the engine's min_events gate (and its insufficient_data
    state) count time slices with data, not events: at 50 events a minute the long window
    holds 30 slices only after 30 minutes. The generated rules gate on slo:sli_total:count1h
    = slices with events (equal to the engine's 1h window total at every minute), and the page
    fires at the same minutes as the engine's; counting raw events instead fires earlier."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-slices-")
    minutes = 200
    tot, bad = [100], [0]
    for m in range(1, minutes):
        tot.append(tot[-1] + 50)
        bad.append(bad[-1] + (50 if 5 < m <= 80 else 0))   # all-bad or all-good minutes
    series = [("search_requests_total", {"job": "api"}, tot),
              ("search_errors_total", {"job": "api"}, bad)]
    spec, by_min = _simulate(d, SLICES_SPEC, series, minutes)
    ident = _ident("shop-search", "shop", "search")
    exprs, alerts, fired = [], [], []
    for t in range(1, minutes):
        s = by_min[t]["shop-search"]
        lab = _labels(dict(ident, sloth_window="1h"))
        if s["windows"]["1h"]["total"]:
            exprs.append(_close('slo:sli_total:count1h{sloth_id="shop-search"}',
                                float(s["windows"]["1h"]["total"]), lab, t))
            exprs.append(_close('slo:sli_total:count_period{sloth_id="shop-search"}',
                                float(s["windows"]["1w"]["total"]),
                                _labels(dict(ident, sloth_window="1w")), t))
        exp = []
        if s["tiers"]["page"]["state"] == "firing":
            fired.append(t)
            exp = [{"exp_labels": dict(ident, sloth_severity="page"), "exp_annotations": {
                "title": "(page) shop search SLO error budget burn rate is too fast.",
                "summary": "shop search SLO error budget burn rate is over expected."}}]
        alerts.append({"eval_time": "%dm" % t, "alertname": "ShopSearchBurn", "exp_alerts": exp})
    # the engine waits for 30 slices (minute 30), not for 30 events (the first bad minute)
    assert fired and fired[0] == 30, fired
    rc, out, groups, rules, tfile = _promtool(d, spec, series, exprs, alerts)
    assert rc == 0, out[-4000:]
    # the old gate (raw events in the long window) fails the same test
    for g in groups:
        for r in g["rules"]:
            if r.get("record") == "slo:sli_total:count1h":
                r["expr"] = 'sum(increase(search_requests_total{job="api"}[1h]))'
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    rc, out = run("promtool", "test", "rules", tfile)[:2]
    assert rc != 0, "time slice parity passed with an event-count gate"


# ---- 4. error ratios under time slice budgeting ----------------------------------------------

SLICES_CAL_SPEC = """version: meltp/v1
service: shop
slos:
  - name: slices
    objective: 90
    period:
      calendar: month
      time_zone: Etc/GMT+6
    budgeting: timeslices
    timeslice: {window: 5m, target: 0.95}
    sli:
      ratio:
        bad: 'q_errors_total{job="api"}'
        total: 'q_requests_total{job="api"}'
    alerting:
      name: ShopSlicesBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 30m, factor: 3}
"""

RATIO_SLICES_SPEC = """version: meltp/v1
service: shop
slos:
  - name: ratios
    objective: 90
    period: 1d
    budgeting: ratio_timeslices
    timeslice: {window: 1m}
    sli:
      ratio:
        good: 'q_ok_total{job="api"}'
        total: 'q_requests_total{job="api"}'
    alerting:
      name: ShopRatiosBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 5m, factor: 2}
"""


def _uneven_series(minutes, outages):
    """Even minutes carry 1000 requests, odd minutes 20. In an outage heavy minutes have 4 %
    errors and light minutes 60 %, otherwise 0.2 % and none: the event ratio (~5 %) stays far
    below the slice ratios (5m slices alternate good and bad around the 95 % slice target;
    the mean of the 1m slice ratios is 32 %)."""
    tot, bad = [1_000_000], [10_000]
    for m in range(1, minutes):
        heavy = m % 2 == 0
        out = any(a < m <= b for a, b in outages)
        tot.append(tot[-1] + (1000 if heavy else 20))
        bad.append(bad[-1] + ((40 if heavy else 12) if out else (2 if heavy else 0)))
    return tot, bad


def _check_slice_ratios(spec_text, sid, alert, wins, cal, every_min, minutes, outages, series):
    """The generated slo:sli_error:ratio_rate<W> (wins; windows over 6h only at the engine's
    10-minute bucket times), the calendar slo:sli_total:count_period / slo:sli_error:ratio_period
    (cal), the current burn rate and the budget remaining equal the engine's at every
    evaluation, and the page fires at the same evaluations. Returns the page's firing minutes.
    Then the old rules (event ratios under time slices) must fail the same window checks."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-sliceratio-")
    tot = series[0][2]
    bad = [t - g for t, g in zip(tot, series[1][2])] if series[1][0] == "q_ok_total" \
        else series[1][2]
    spec, by_min = _simulate(d, spec_text, series, minutes, every_min)
    ident = _ident(sid, "shop", sid.split("-")[1])
    sel = '{sloth_id="%s"}' % sid
    pw_name = "month" if cal else wins[-1]
    exprs, win_exprs, alerts, fired, far = [], [], [], [], 0
    for t in range(every_min, minutes, every_min):
        s = by_min[t][sid]
        for wn in wins:
            w = s["windows"][wn]
            if w["total"] == 0 or (wn in ("1d", "3d") and t % 10):
                continue
            win_exprs.append(_close("slo:sli_error:ratio_rate%s%s" % (wn, sel), w["error_ratio"],
                                    _labels(dict(ident, sloth_window=wn)), t))
            lo = max(t - WINDOWS[wn], 0)   # the event ratio of the same window
            far += abs((bad[t] - bad[lo]) / (tot[t] - tot[lo]) - w["error_ratio"]) > 0.1
        if s["windows"]["5m"]["total"]:
            exprs.append(_close("slo:current_burn_rate:ratio" + sel,
                                s["windows"]["5m"]["error_ratio"] / (1 - 0.9),
                                _labels(dict(ident, sloth_window="5m")), t, 1e-6))
        pw = s["windows"]["30d" if cal else wins[-1]]
        if pw["total"] and (cal or t % 10 == 0):
            lab = _labels(dict(ident, sloth_window=pw_name))
            if cal:
                exprs.append(_close("slo:sli_total:count_period" + sel, float(pw["total"]),
                                    lab, t))
                exprs.append(_close("slo:sli_error:ratio_period" + sel, pw["error_ratio"],
                                    lab, t))
            exprs.append(_close("slo:period_error_budget_remaining:ratio" + sel,
                                1 - pw["error_ratio"] / (1 - 0.9), lab, t, 1e-6))
        exp = []
        if s["tiers"]["page"]["state"] == "firing":
            fired.append(t)
            slo = ident["sloth_slo"]
            exp = [{"exp_labels": dict(ident, sloth_severity="page"), "exp_annotations": {
                "title": "(page) shop %s SLO error budget burn rate is too fast." % slo,
                "summary": "shop %s SLO error budget burn rate is over expected." % slo}}]
        alerts.append({"eval_time": "%dm" % t, "alertname": alert, "exp_alerts": exp})
    # the scenario: slice ratios far from event ratios, the page fires in both outages
    assert far > 50, far
    assert fired and outages[0][0] < fired[0] < outages[0][1], fired
    assert any(outages[1][0] < x < minutes for x in fired), fired
    rc, out, groups, rules, tfile = _promtool(d, spec, series, exprs + win_exprs, alerts,
                                              every_min)
    assert rc == 0, out[-4000:]
    assert "NOT EXACT" not in open(rules).read()
    # the old rules (event ratios under time slices) fail the window checks; the period
    # rules are left out of this run, which only checks the windows
    num = ('sum(rate(q_errors_total{job="api"}[%s]))' if bad is series[1][2] else
           '(sum(rate(q_requests_total{job="api"}[%s])) - sum(rate(q_ok_total{job="api"}[%s])))')
    for g in groups:
        g["rules"] = [r for r in g["rules"] if "alert" not in r and
                      not r.get("record", "").endswith("_period")]
        for r in g["rules"]:
            if r.get("record", "").startswith("slo:sli_error:ratio_rate"):
                wn = r["record"][len("slo:sli_error:ratio_rate"):]
                r["expr"] = (num.replace("%s", wn) +
                             ' / sum(rate(q_requests_total{job="api"}[%s]))' % wn)
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    with open(tfile) as f:
        test = yaml.safe_load(f)
    test["tests"][0]["promql_expr_test"] = win_exprs
    test["tests"][0]["alert_rule_test"] = []
    with open(tfile, "w") as f:
        yaml.safe_dump(test, f, sort_keys=False)
    rc, out = run("promtool", "test", "rules", tfile)[:2]
    assert rc != 0, "time slice parity passed with event-ratio rules"
    return fired


def test_timeslices_calendar_error_ratios_match_engine():
    """Timeslices (5m slices, good when >= 95 % good) under a calendar month in Etc/GMT+6
    (the month starts at minute 360): the engine's window and period error ratios are bad
    slices over slices with events, not event ratios; evaluated every 3 minutes, so windows
    end both on and between slice boundaries. The month boundary restarts the period's slice
    count, and with it the data-state gate (10 slices): the second outage pages only once 10
    slices have closed in the new month."""
    minutes = 560
    tot, bad = _uneven_series(minutes, [(150, 250), (400, 480)])
    series = [("q_requests_total", {"job": "api"}, tot),
              ("q_errors_total", {"job": "api"}, bad)]
    fired = _check_slice_ratios(SLICES_CAL_SPEC, "shop-slices", "ShopSlicesBurn",
                                ["5m", "30m", "1h"], True, 3, minutes,
                                [(150, 250), (400, 480)], series)
    assert min(x for x in fired if x > 360) >= 410, fired


def test_ratio_timeslices_error_ratios_match_engine():
    """RatioTimeslices (1m slices, good + total counters, rolling 1d): every window's error
    ratio is the mean of the per-slice error ratios (as the engine stores them, in millionths),
    at every minute; the 1d window is summed in pieces (promtool's sample limit)."""
    minutes = 560
    tot, bad = _uneven_series(minutes, [(150, 250), (400, 480)])
    ok = [t - b for t, b in zip(tot, bad)]
    series = [("q_requests_total", {"job": "api"}, tot),
              ("q_ok_total", {"job": "api"}, ok)]
    _check_slice_ratios(RATIO_SLICES_SPEC, "shop-ratios", "ShopRatiosBurn",
                        ["5m", "1h", "1d"], False, 1, minutes, [(150, 250), (400, 480)], series)


# ---- 5. no_data: freeze / bad ----------------------------------------------------------------

NODATA_POLICY_SPEC = """version: meltp/v1
service: shop
slos:
  - name: %(name)s
    objective: 99
    period: %(period)s
%(budgeting)s    no_data: %(policy)s
    group_by: [route]
    sli:
      ratio:
        bad: '%(name)s_errors_total{job="api"}'
        total: '%(name)s_requests_total{job="api"}'
    alerting:
      name: Shop%(cap)sBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 5m, factor: 5}
        - {name: ticket, severity: ticket, long: 30m, short: 30m, factor: 2}
"""
NODATA_WINS = ("5m", "30m", "1h", "30d")


def _check_nodata_policy(policy, name, slices=False, old_good=False, cal_zone=None,
                         slice_w="1m", every_min=1, objective=99):
    """Route a reports (0.5 % errors, 20 % from 101m), stops after 149m (while both tiers
    fire), stays silent for 150 minutes (longer than every tier window), then resumes at 300m
    with its last values and grows healthily; route b reports healthily throughout. At every
    minute the generated window ratios, current burn rate and budget remaining equal the
    engine's (also for windows without events) and exactly the engine's alerts fire. Then the
    rules without the no-data handling (ratios without the fill, tiers without the hold/fire
    terms) must fail the same test. With `slices`, the same under time slice budgeting (1m
    slices, a 1d period: "events" are closed slices with events). With `cal_zone`, the period
    is the calendar month in that zone (ratio, burn rate and budget of the month checked).
    Returns ({tier: firing minutes of a}, by_min)."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-%s-" % policy)
    minutes, stop, resume = 380, 150, 300
    cap = name.capitalize()

    def counter(route, base, step, outage_step):
        v, x = [], base
        for m in range(minutes):
            if route == "a" and stop <= m < resume:
                v.append(None)
                continue
            if m > 0 and not (route == "a" and m == resume):
                x += outage_step if (route == "a" and 100 < m < stop) else step
            v.append(x)
        return v
    series = []
    for r in ("a", "b"):
        series.append(("%s_requests_total" % name, {"job": "api", "route": r},
                       counter(r, 100000, 1000, 1000)))
        series.append(("%s_errors_total" % name, {"job": "api", "route": r},
                       counter(r, 500, 5, 200)))
    pw = "1d" if slices and not cal_zone else "30d"
    wins = NODATA_WINS[:-1] + (() if cal_zone else (pw,))
    pwl = "month" if cal_zone else pw  # the period's sloth_window
    spec_text = NODATA_POLICY_SPEC % {
        "name": name, "policy": policy, "cap": cap,
        "period": "\n      calendar: month\n      time_zone: %s" % cal_zone if cal_zone else pw,
        "budgeting": "    budgeting: %s\n    timeslice: {window: %s}\n" %
        (slices if isinstance(slices, str) else "timeslices", slice_w) if slices else ""}
    spec_text = spec_text.replace("objective: 99", "objective: %s" % objective)
    bf = 1 - objective / 100.0
    spec, by_min = _simulate(d, spec_text, series, minutes, every_min)
    sid = "shop-" + name
    ident = _ident(sid, "shop", name)
    exprs, alerts, fired = [], [], {}
    for t in range(0, minutes, every_min):
        for r in ("a", "b"):
            s = by_min[t].get('%s{route="%s"}' % (sid, r))
            assert s, (t, r)
            sel = '{sloth_id="%s",route="%s"}' % (sid, r)
            for wn in wins:
                exprs.append(_close("slo:sli_error:ratio_rate%s%s" % (wn, sel),
                                    s["windows"][wn]["error_ratio"],
                                    _labels(dict(ident, route=r, sloth_window=wn)), t))
            if cal_zone:
                exprs.append(_close("slo:sli_error:ratio_period" + sel,
                                    s["windows"][pw]["error_ratio"],
                                    _labels(dict(ident, route=r, sloth_window=pwl)), t))
            exprs.append(_close("slo:current_burn_rate:ratio" + sel,
                                s["windows"]["5m"]["error_ratio"] / bf,
                                _labels(dict(ident, route=r, sloth_window="5m")), t, 1e-6))
            exprs.append(_close("slo:period_error_budget_remaining:ratio" + sel,
                                1 - s["windows"][pw]["error_ratio"] / bf,
                                _labels(dict(ident, route=r, sloth_window=pwl)), t, 1e-6))
        exp = []
        for tier in ("page", "ticket"):
            for r in ("a", "b"):
                s = by_min[t]['%s{route="%s"}' % (sid, r)]
                if s["tiers"][tier]["state"] == "firing":
                    fired.setdefault((r, tier), []).append(t)
                    exp.append({"exp_labels": dict(ident, route=r, sloth_severity=tier),
                                "exp_annotations": {
                                    "title": "(%s) shop %s SLO error budget burn rate is too "
                                             "fast." % (tier, name),
                                    "summary": "shop %s SLO error budget burn rate is over "
                                               "expected." % name}})
        alerts.append({"eval_time": "%dm" % t, "alertname": "Shop%sBurn" % cap,
                       "exp_alerts": exp})
    rc, out, groups, rules, tfile = _promtool(d, spec, series, exprs, alerts, every_min)
    assert rc == 0, out[-4000:]
    text = open(rules).read()
    assert "NOT EQUIVALENT" not in text, text
    if old_good:
        # the old rules: those of the same spec with no_data: good
        gspec = os.path.join(d, "good.yaml")
        with open(gspec, "w") as f:
            f.write(spec_text.replace("no_data: %s" % policy, "no_data: good"))
        rc, _, err = run(MELTP, "slo", "rules", "--out", rules, gspec)
        assert rc == 0, err
        groups = yaml.safe_load(open(rules))["groups"]
    # the old rules: plain ratios (no fill), tiers without the no-data terms
    for g in groups if not old_good else []:
        for r in g["rules"]:
            if r.get("record", "").startswith("slo:sli_error:ratio_"):
                assert r["expr"].startswith("(\n") and "\n) >= -Inf" in r["expr"]
                r["expr"] = r["expr"].split("\n) >= -Inf")[0][2:]
            if "alert" in r:
                i = r["expr"].find("\n)\nunless on(route)\nslo:sli_invalid:flag")
                if i >= 0:  # the invalid-data gate (its own test), around the tier terms
                    r["expr"] = r["expr"][2:i]
                r["expr"] = r["expr"].split("\nor on(route)\n(\n    max without")[0]
                r["expr"] = "\nor\n".join(x for x in r["expr"].split("\nor\n")
                                          if "unless on(route)" not in x)
                r["expr"] = re.sub(r"\n    and on\(route\)\n    \(sum by \(route\) "
                                   r"\(rate\([^\n]*\) > 0\)", "", r["expr"])
                r["expr"] = re.sub(r"\n    and on\(route\)\n    \(\(count_over_time\(.*?"
                                   r"\)\[[0-9a-z]+:[0-9a-z]+\]\)\) > 0\)", "", r["expr"],
                                   flags=re.S)
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    with open(tfile) as f:
        test = yaml.safe_load(f)
    # each half on its own: the old ratios fail the ratio checks, the old alerts the alerts
    for what, keep in (("ratios", "promql_expr_test"), ("alerts", "alert_rule_test")):
        t = json.loads(json.dumps(test))
        for k in ("promql_expr_test", "alert_rule_test"):
            if k != keep:
                t["tests"][0][k] = []
        with open(tfile, "w") as f:
            yaml.safe_dump(t, f, sort_keys=False)
        rc, out = run("promtool", "test", "rules", tfile)[:2]
        assert rc != 0, "no_data: %s %s parity passed with the old rules" % (policy, what)
    return fired, by_min


def test_nodata_freeze_keeps_ratios_and_holds_alerts_like_the_engine():
    """no_data: freeze: while route a is silent its window ratios keep their last values
    (budget and burn rate too); the page (5m/1h) resolves once its short window is empty, as in
    the engine; the 30m/30m ticket, firing when its window empties, is held until a reports
    again."""
    fired, by_min = _check_nodata_policy("freeze", "cart")
    assert fired[("a", "page")][-1] < 160, fired
    tk = fired[("a", "ticket")]
    assert tk[0] < 150 and 299 <= tk[-1] < 310 and len(tk) == tk[-1] - tk[0] + 1, tk
    assert ("b", "page") not in fired and ("b", "ticket") not in fired, fired
    s = by_min[250]['shop-cart{route="a"}']["windows"]
    assert s["1h"]["total"] == 0 and s["1h"]["error_ratio"] > 0.1, s


def test_nodata_bad_counts_empty_windows_as_errors_like_the_engine():
    """no_data: bad: while route a is silent its empty windows have error ratio 1 and both
    tiers fire (the long window without events fires the tier) until a reports again and the
    short windows see healthy data. At 0m (the baseline samples: no events yet) both tiers of
    both routes fire for one evaluation, in the engine and in the rules."""
    fired, by_min = _check_nodata_policy("bad", "pay")
    for tier in ("page", "ticket"):
        f = fired[("a", tier)]
        assert f[0] == 0 and 100 < f[1] < 150 and 299 <= f[-1] < 350, (tier, f)
        assert all(x in f for x in range(150, 300)), (tier, f)
        assert fired[("b", tier)] == [0], fired
    s = by_min[250]['shop-pay{route="a"}']["windows"]
    assert s["1h"]["total"] == 0 and s["1h"]["error_ratio"] == 1, s


# ---- invalid data: good events overtaking the total ------------------------------------------

INVALID_SPEC = """version: meltp/v1
service: shop
slos:
  - name: inv
    objective: 99
    period: 30d
    group_by: [route]
    sli:
      ratio:
        good: 'inv_ok_total{job="api"}'
        total: 'inv_requests_total{job="api"}'
    alerting:
      name: ShopInvBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 5m, factor: 5}
        - {name: ticket, severity: ticket, long: 30m, short: 30m, factor: 2}
"""


def test_invalid_data_holds_alerts_like_the_engine():
    """The engine calls an instance's data invalid while any window (5m ... 3d, the period)
    holds more good events than events in total, and then holds every tier. Route a: 0.5 %
    errors, 20 % from 101m to 180m (both tiers fire), and from 131m to 140m the good counter
    grows faster than the total (the 5m window turns invalid): the engine keeps the page
    firing where its short window's ratio is negative. Route b: the good counter overtakes the
    total by 20,000 from 100m to 104m, then 20 % errors from 110m: every window over the
    overtaking (3d too) stays invalid until the errors outweigh it, and the engine fires
    nothing until then although the 30m and 1h windows alone burn. At every minute the rules'
    slo:sli_invalid:flag is set exactly when the engine's state is invalid, and exactly the
    engine's alerts fire; the rules without the invalid gate fail the alert comparison."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-invalid-")
    minutes = 260

    def route(r):
        tot, ok = [100000], [99000]
        for m in range(1, minutes):
            tot.append(tot[-1] + 1000)
            if r == "a":
                g = 2000 if 131 <= m <= 140 else 800 if 101 <= m <= 180 else 995
            else:
                g = 5000 if 100 <= m <= 104 else 800 if m >= 110 else 995
            ok.append(ok[-1] + g)
        return tot, ok
    series = []
    for r in ("a", "b"):
        tot, ok = route(r)
        series.append(("inv_requests_total", {"job": "api", "route": r}, tot))
        series.append(("inv_ok_total", {"job": "api", "route": r}, ok))
    spec, by_min = _simulate(d, INVALID_SPEC, series, minutes)
    sid = "shop-inv"
    ident = _ident(sid, "shop", "inv")
    exprs, alerts, fired, invalid = [], [], {}, {}
    for t in range(minutes):
        exp = []
        for r in ("a", "b"):
            s = by_min[t]['%s{route="%s"}' % (sid, r)]
            bad = s["state"] == "invalid"
            if bad:
                invalid.setdefault(r, []).append(t)
            # the window ratios, clamped to [0, 1] while invalid as the engine's are
            sel = '{sloth_id="%s",route="%s"}' % (sid, r)
            for wn in ("5m", "30m", "1h", "30d"):
                w = s["windows"][wn]
                name = "slo:sli_error:ratio_rate%s%s" % (wn, sel)
                if w["total"] == 0:
                    exprs.append({"expr": name, "eval_time": "%dm" % t, "exp_samples": []})
                else:
                    exprs.append(_close(name, w["error_ratio"],
                                        _labels(dict(ident, route=r, sloth_window=wn)), t))
            exprs.append(_flag_test(sid, ident, r, t, bad))
            for tier in ("page", "ticket"):
                if s["tiers"][tier]["state"] == "firing":
                    fired.setdefault((r, tier), []).append(t)
                    exp.append({"exp_labels": dict(ident, route=r, sloth_severity=tier),
                                "exp_annotations": {
                                    "title": "(%s) shop inv SLO error budget burn rate is too "
                                             "fast." % tier,
                                    "summary": "shop inv SLO error budget burn rate is over "
                                               "expected."}})
        alerts.append({"eval_time": "%dm" % t, "alertname": "ShopInvBurn", "exp_alerts": exp})
    # the scenario does what it says in the engine
    assert invalid["a"][0] == 131 and 140 in invalid["a"], invalid
    assert invalid["b"][0] == 100 and invalid["b"][-1] > 150, invalid
    pa = fired[("a", "page")]
    assert all(x in pa for x in range(131, 165)) and all(x in invalid["a"] for x in range(131, 165)), pa
    assert all(x > invalid["b"][-1] for k, v in fired.items() if k[0] == "b" for x in v), fired
    assert fired.get(("b", "ticket")), fired
    # ... and clamps: route a's 5m window holds more good than total events
    assert by_min[133]['%s{route="a"}' % sid]["windows"]["5m"]["error_ratio"] == 0
    rc, out, groups, rules, tfile = _promtool(d, spec, series, exprs, alerts)
    assert rc == 0, out[-4000:]
    assert "NOT EQUIVALENT" not in open(rules).read()
    # the old rules: unclamped ratios fail the ratio checks
    with open(tfile) as f:
        orig_test = yaml.safe_load(f)
    test = json.loads(json.dumps(orig_test))
    test["tests"][0]["alert_rule_test"] = []
    with open(tfile, "w") as f:
        yaml.safe_dump(test, f, sort_keys=False)
    for g in groups:
        for r in g["rules"]:
            if r.get("record", "").startswith("slo:sli_error:ratio_rate"):
                assert r["expr"].startswith("clamp(\n(\n"), r["expr"]
                r["expr"] = r["expr"][len("clamp(\n(\n"):].split("\n) > -Inf < +Inf")[0]
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    rc, out = run("promtool", "test", "rules", tfile)[:2]
    assert rc != 0, "invalid-data ratio parity passed with unclamped ratios"
    # the old rules: alerts without the invalid gate
    for g in groups:
        for r in g["rules"]:
            if "alert" in r:
                i = r["expr"].index("\n)\nunless on(route)\nslo:sli_invalid:flag")
                r["expr"] = r["expr"][2:i]
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    orig_test["tests"][0]["promql_expr_test"] = []
    with open(tfile, "w") as f:
        yaml.safe_dump(orig_test, f, sort_keys=False)
    rc, out = run("promtool", "test", "rules", tfile)[:2]
    assert rc != 0, "invalid-data parity passed with the old rules"


def test_nodata_bad_under_time_slices_counts_empty_slices_like_the_engine():
    """no_data: bad under time slice budgeting (1m slices, 1d period): from a group's first
    slice with events on, every closed slice counts and an empty one is a bad slice. While
    route a is silent its windows fill with bad slices (ratio 1 once a window holds only empty
    ones) and both tiers fire; after a reports again the empty slices leave the short windows
    first. Window ratios, burn rate, budget and alerts equal the engine's minute by minute;
    the rules of the same spec with no_data: good fail both halves."""
    fired, by_min = _check_nodata_policy("bad", "sbad", slices=True, old_good=True)
    for tier in ("page", "ticket"):
        f = fired[("a", tier)]
        assert all(x in f for x in range(160, 300)), (tier, f)
    s = by_min[250]['shop-sbad{route="a"}']["windows"]
    assert s["1h"]["total"] == 60 and s["1h"]["error_ratio"] == 1, s
    p = by_min[250]['shop-sbad{route="a"}']["windows"]["1d"]
    assert p["total"] == 250 and p["error_ratio"] == 0.6, p


def test_nodata_bad_under_ratio_timeslices_counts_empty_slices_like_the_engine():
    """The same under ratio_timeslices: an empty slice has error ratio 1 in the mean."""
    fired, by_min = _check_nodata_policy("bad", "rbad", slices="ratio_timeslices",
                                         old_good=True)
    assert all(x in fired[("a", "page")] for x in range(160, 300)), fired
    p = by_min[250]['shop-rbad{route="a"}']["windows"]["1d"]
    assert p["total"] == 250 and 0.44 < p["error_ratio"] < 0.45, p


def test_nodata_freeze_under_time_slices_keeps_ratios_and_holds_alerts_like_the_engine():
    """no_data: freeze under time slice budgeting (1m slices): while route a is silent its
    window ratios (bad slices over slices with events) keep their last values, tiers whose
    short window has no slice with events resolve, and the 30m/30m ticket, firing when its
    window runs out of slices, is held until a reports again, as in the engine."""
    fired, by_min = _check_nodata_policy("freeze", "slc", slices=True)
    tk = fired[("a", "ticket")]
    assert tk[0] < 150 and tk[-1] >= 299 and len(tk) == tk[-1] - tk[0] + 1, tk
    assert ("b", "page") not in fired and ("b", "ticket") not in fired, fired
    s = by_min[250]['shop-slc{route="a"}']["windows"]
    assert s["1h"]["total"] == 0 and s["1h"]["error_ratio"] > 0.1, s


# ---- the hold with for, keep_firing_for and tiers sharing a severity -------------------------

HOLD_SPEC = """version: meltp/v1
service: shop
slos:
  - name: hold
    objective: 99
    period: 30d
    no_data: freeze
    group_by: [route]
    sli:
      ratio:
        good: 'hold_ok_total{job="api"}'
        total: 'hold_requests_total{job="api"}'
    alerting:
      name: ShopHoldBurn
      tiers:
        - {name: page-quick, severity: page, long: 1h, short: 5m, factor: 5, for: 4m}
        - {name: page-slow, severity: page, long: 2h, short: 10m, factor: 3, for: 4m}
        - {name: ticket, severity: ticket, long: 30m, short: 30m, factor: 2, keep_firing_for: 20m}
"""


def test_hold_with_for_keep_firing_for_and_shared_severity_matches_engine():
    """The engine's hold (invalid data; no_data: freeze with an empty long window) keeps an
    active tier active and an inactive one inactive, while time runs: a pending tier still
    fires once `for` has passed, a firing one's keep_firing_for restarts. Route a: 0.5 %
    errors, 20 % from 101m; both page tiers (for: 4m, one rule each: a slo_tier label tells
    them apart) go pending, and from 118m to 121m the good counter overtakes the total, so the
    data is invalid while they mature and fire; the ticket (30m/30m, keep_firing_for: 20m)
    fires and a goes silent from 200m to 349m: the ticket is held through the silence and
    resolves 20 minutes after a reports again. Route b is healthy. At every minute exactly
    the engine's alerts fire under promtool, with the engine's labels; the rules without their
    hold terms fail."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-hold-")
    minutes, stop, resume = 420, 200, 350

    def route(r):
        tot, ok, lt, lo = [], [], 100000, 99000
        for m in range(minutes):
            if r == "a" and stop <= m < resume:
                tot.append(None)
                ok.append(None)
                continue
            if m > 0 and not (r == "a" and m == resume):
                lt += 1000
                if r == "a":
                    lo += 2000 if 118 <= m <= 121 else 800 if 101 <= m < stop else 995
                else:
                    lo += 995
            tot.append(lt)
            ok.append(lo)
        return tot, ok
    series = []
    for r in ("a", "b"):
        tot, ok = route(r)
        series.append(("hold_requests_total", {"job": "api", "route": r}, tot))
        series.append(("hold_ok_total", {"job": "api", "route": r}, ok))
    spec, by_min = _simulate(d, HOLD_SPEC, series, minutes)
    sid = "shop-hold"
    ident = _ident(sid, "shop", "hold")
    tiers = {"page-quick": "page", "page-slow": "page", "ticket": "ticket"}
    alerts, states = [], {}
    for t in range(minutes):
        exp = []
        for r in ("a", "b"):
            s = by_min[t]['%s{route="%s"}' % (sid, r)]
            for tier, sev in tiers.items():
                st = s["tiers"][tier]["state"]
                states.setdefault((r, tier), []).append(st)
                if st == "firing":
                    lab = dict(ident, route=r, sloth_severity=sev)
                    if sev == "page":
                        lab["slo_tier"] = tier
                    exp.append({"exp_labels": lab})
            if r == "a":
                states.setdefault("a-state", []).append(s["state"])
        alerts.append({"eval_time": "%dm" % t, "alertname": "ShopHoldBurn", "exp_alerts": exp})
    # the scenario does what it says in the engine: pending tiers fire while invalid ...
    inv = states["a-state"]
    for tier in ("page-quick", "page-slow"):
        st = states[("a", tier)]
        f = st.index("firing")
        assert st[f - 1] == "pending" and inv[f] == "invalid" and inv[f - 4] == "ok", (tier, f)
    assert states[("a", "page-quick")].index("firing") != states[("a", "page-slow")].index("firing")
    # ... and the ticket is held through the silence, then keep_firing_for runs from the resume
    tk = states[("a", "ticket")]
    assert all(x == "firing" for x in tk[stop:resume + 1]), tk[stop:resume + 1]
    assert tk[resume + 19] == "firing" and tk[resume + 21] == "inactive", tk[resume:]
    assert all(x == "inactive" for k, v in states.items() if k[0] == "b" for x in v)
    for t in (x for x in alerts if x["exp_alerts"]):
        for a in t["exp_alerts"]:
            a["exp_annotations"] = {
                "title": "(%s) shop hold SLO error budget burn rate is too fast." %
                         a["exp_labels"]["sloth_severity"],
                "summary": "shop hold SLO error budget burn rate is over expected."}
    rc, out, groups, rules, tfile = _promtool(d, spec, series, [], alerts)
    assert rc == 0, out[-4000:]
    text = open(rules).read()
    assert "NOT EQUIVALENT" not in text, text
    assert text.count("- alert: ShopHoldBurn") == 3, text
    # the old rules: no hold terms (the invalid gate alone; nothing for the silence)
    for g in groups:
        for r in g["rules"]:
            if "alert" in r:
                assert "\nor on(route)\n(\n    max without (alertname" in r["expr"], r["expr"]
                r["expr"] = r["expr"].split("\nor on(route)\n(\n    max without (alertname")[0]
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    rc, out = run("promtool", "test", "rules", tfile)[:2]
    assert rc != 0, "hold parity passed with the old rules"


# ---- invalid data: a counter-reset storm -----------------------------------------------------

RESET_SPEC = """version: meltp/v1
service: shop
slos:
  - name: rst
    objective: 99
    period: 30d
    group_by: [route]
    sli:
      ratio:
        bad: 'rst_errors_total{job="api"}'
        total: 'rst_requests_total{job="api"}'
    alerting:
      name: ShopRstBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 5m, factor: 5}
"""


def test_counter_reset_storm_holds_alerts_like_the_engine():
    """More than 10 counter resets within the last hour (by the samples' own times, a rolling
    hour) make the engine call the data invalid and hold every tier. Route a: 0.5 % errors,
    20 % from 101m to 160m (the page fires); both counters restart from zero every 5 minutes
    from 130m to 155m (12 resets by 155m), so the page is held firing after the errors stop,
    until the first resets leave the hour (190m). Route b: healthy, one reset of each counter
    at 150m: not a storm. At every minute the rules' error ratios (resets handled by rate())
    and slo:sli_invalid:flag equal the engine's, and exactly the engine's alerts fire; the
    rules without the reset term fail."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-resets-")
    minutes = 260
    storm = set(range(130, 156, 5))

    def route(r):
        tot, bad, lt, lb = [], [], 1_000_000, 5000
        for m in range(minutes):
            if m > 0:
                e = 200 if r == "a" and 101 <= m <= 160 else 5
                if (r == "a" and m in storm) or (r == "b" and m == 150):
                    lt, lb = 1000, e  # restarted: the increment since the restart
                else:
                    lt, lb = lt + 1000, lb + e
            tot.append(lt)
            bad.append(lb)
        return tot, bad
    series = []
    for r in ("a", "b"):
        tot, bad = route(r)
        series.append(("rst_requests_total", {"job": "api", "route": r}, tot))
        series.append(("rst_errors_total", {"job": "api", "route": r}, bad))
    spec, by_min = _simulate(d, RESET_SPEC, series, minutes)
    sid = "shop-rst"
    ident = _ident(sid, "shop", "rst")
    exprs, alerts, fired, invalid = [], [], {}, {}
    for t in range(minutes):
        exp = []
        for r in ("a", "b"):
            s = by_min[t]['%s{route="%s"}' % (sid, r)]
            _ratio_and_flag_tests(s, sid, ident, r, t, ("5m", "1h"), exprs, invalid)
            if s["tiers"]["page"]["state"] == "firing":
                fired.setdefault(r, []).append(t)
                exp.append({"exp_labels": dict(ident, route=r, sloth_severity="page"),
                            "exp_annotations": {
                                "title": "(page) shop rst SLO error budget burn rate is too "
                                         "fast.",
                                "summary": "shop rst SLO error budget burn rate is over "
                                           "expected."}})
        alerts.append({"eval_time": "%dm" % t, "alertname": "ShopRstBurn", "exp_alerts": exp})
    # the scenario in the engine: invalid from the 11th reset for exactly the rolling hour,
    # the page held firing through it, route b never invalid
    assert invalid.get("a") == list(range(155, 190)), invalid
    assert "b" not in invalid and "b" not in fired, (invalid, fired)
    assert all(x in fired["a"] for x in range(120, 190)) and 190 not in fired["a"], fired
    rc, out, groups, rules, tfile = _promtool(d, spec, series, exprs, alerts)
    assert rc == 0, out[-4000:]
    assert "NOT EQUIVALENT" not in open(rules).read()
    # the old rules: the flag without the reset term
    def no_resets(x):
        return x[:x.index("\n  or\n  sum without (meltp_role)")] + "\n) * 0 + 1"
    _without_flag_term(groups, rules, tfile, no_resets, "the reset term")


def test_nodata_under_time_slices_with_a_calendar_month_like_the_engine():
    """no_data: freeze and bad under time slice budgeting (5m slices, objective 90 % so that
    the data state needs only 10 slices) with a calendar month in Etc/GMT+4, which starts at
    minute 240, while route a is silent: the month's slice count restarts there. Freeze: a's
    window ratios and the month's ratio keep their last values (also across the month
    boundary), the ticket is held. Bad: every empty slice after a's first counts as bad, in
    the windows and in the new month, which starts with only empty slices for a (and too few
    of them for the data state: nothing fires until 10 have closed). Evaluated every 3
    minutes (windows end on and between slice boundaries): window and month ratios, burn
    rate, budget and alerts equal the engine's; the rules of the same specs with no_data: good
    fail."""
    fired, by_min = _check_nodata_policy("freeze", "cfz", slices=True, old_good=True,
                                         cal_zone="Etc/GMT+4", slice_w="5m", objective=90,
                                         every_min=3)
    tk = fired[("a", "ticket")]
    assert tk[0] < 150 and tk[-1] >= 297 and len(tk) == (tk[-1] - tk[0]) // 3 + 1, tk
    before, after = (by_min[t]['shop-cfz{route="a"}']["windows"]["30d"] for t in (234, 252))
    assert after["total"] == 0 and after["error_ratio"] == before["error_ratio"] > 0, after
    fired, by_min = _check_nodata_policy("bad", "cbd", slices=True, old_good=True,
                                         cal_zone="Etc/GMT+4", slice_w="5m", objective=90,
                                         every_min=3)
    pa = fired[("a", "page")]
    assert all(x in pa for x in range(162, 240, 3)) and not any(245 < x < 285 for x in pa), pa
    m = by_min[261]['shop-cbd{route="a"}']["windows"]["30d"]
    assert m["total"] == 4 and m["error_ratio"] == 1, m


# ---- invalid data under time slices: a slice with more good (or bad) than total events ------

INV_SLICE_SPEC = """version: meltp/v1
service: shop
slos:
  - name: %(name)s
    objective: 99
    period: 1d
    budgeting: %(budgeting)s
    timeslice: {window: 1m}
    group_by: [route]
    sli:
      ratio:
        %(counted)s: '%(name)s_%(counted)s_total{job="api"}'
        total: '%(name)s_requests_total{job="api"}'
    alerting:
      name: Shop%(cap)sBurn
      tiers:
        - {name: page, severity: page, long: 1h, short: 5m, factor: 5}
"""


def _check_inconsistent_slices(name, budgeting, counted):
    """Route a: 0.5 % errors, 20 % from 101m to 160m (the page fires); at 131m-133m the
    counted counter (good, or bad) grows faster than the total: those slices count as whole
    good (bad) slices and the data is invalid for the hour after the last one, so the page is
    held firing after the errors stop, until 193m. Route b: one inconsistent slice at 100m,
    errors from 110m: nothing fires while b is invalid (to 160m), then the page does. Window
    ratios, slo:sli_invalid:flag and alerts equal the engine's at every minute; without the
    flag's slice term the alerts differ."""
    assert shutil.which("promtool"), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-parity-invslice-")
    minutes = 230

    def route(r):
        tot, cnt, lt, lc = [], [], 100000, (99000 if counted == "good" else 500)
        for m in range(minutes):
            if m > 0:
                err = 200 if ((r == "a" and 101 <= m <= 160) or (r == "b" and m >= 110)) else 5
                inc = (r == "a" and 131 <= m <= 133) or (r == "b" and m == 100)
                lt += 1000
                if counted == "good":
                    lc += 2000 if inc else 1000 - err
                else:
                    lc += 2000 if inc else err
            tot.append(lt)
            cnt.append(lc)
        return tot, cnt
    series = []
    for r in ("a", "b"):
        tot, cnt = route(r)
        series.append(("%s_requests_total" % name, {"job": "api", "route": r}, tot))
        series.append(("%s_%s_total" % (name, counted), {"job": "api", "route": r}, cnt))
    spec_text = INV_SLICE_SPEC % {"name": name, "budgeting": budgeting, "counted": counted,
                                  "cap": name.capitalize()}
    spec, by_min = _simulate(d, spec_text, series, minutes)
    sid = "shop-" + name
    ident = _ident(sid, "shop", name)
    exprs, alerts, fired, invalid = [], [], {}, {}
    for t in range(minutes):
        exp = []
        for r in ("a", "b"):
            s = by_min[t]['%s{route="%s"}' % (sid, r)]
            _ratio_and_flag_tests(s, sid, ident, r, t, ("5m", "1h", "1d"), exprs, invalid)
            if s["tiers"]["page"]["state"] == "firing":
                fired.setdefault(r, []).append(t)
                exp.append({"exp_labels": dict(ident, route=r, sloth_severity="page")})
        alerts.append({"eval_time": "%dm" % t, "alertname": "Shop%sBurn" % name.capitalize(),
                       "exp_alerts": exp})
    for a in alerts:
        for x in a["exp_alerts"]:
            x["exp_annotations"] = {
                "title": "(page) shop %s SLO error budget burn rate is too fast." % name,
                "summary": "shop %s SLO error budget burn rate is over expected." % name}
    assert invalid["a"] == list(range(131, 193)), invalid
    assert invalid["b"] == list(range(100, 160)), invalid
    assert all(x in fired["a"] for x in range(140, 193)) and 193 not in fired["a"], fired
    assert min(fired["b"]) >= 160, fired
    rc, out, groups, rules, tfile = _promtool(d, spec, series, exprs, alerts)
    assert rc == 0, out[-4000:]
    assert "NOT EQUIVALENT" not in open(rules).read()
    def no_slices(x):
        i, j = x.index("\n  count_over_time("), x.index("\n  or\n  sum without (meltp_role)")
        return x[:i] + x[j + len("\n  or"):]
    _without_flag_term(groups, rules, tfile, no_slices, "the slice term")


def test_inconsistent_slices_under_timeslices_hold_alerts_like_the_engine():
    _check_inconsistent_slices("islc", "timeslices", "good")


def test_inconsistent_slices_under_ratio_timeslices_hold_alerts_like_the_engine():
    _check_inconsistent_slices("irat", "ratio_timeslices", "bad")
