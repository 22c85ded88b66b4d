"""`meltp slo rules|explain|dashboards` against the example specs in rules/slos/: generated rule
files pass `promtool check rules`, the generated promtool unit tests pass and really assert
alert behaviour (a full outage pages, healthy traffic fires nothing; sabotaged rules fail them),
explain prints the slo.md 2.3 numbers, dashboards are valid Grafana JSON, and lint errors
reach the command line as FILE:LINE: path: reason."""
import glob
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import MELTP, ROOT

SPECS = sorted(glob.glob(os.path.join(ROOT, "rules", "slos", "*.yaml")))


def run(*args, cwd=None):
    # promtool evaluates every rule of the file at every step of every test: the time slice SLO
    # (500 minutes until its data-state gate opens) and the calendar subqueries take a while
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600,
                       cwd=cwd)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def have_promtool():
    return shutil.which("promtool") is not None


def gen(specs, d):
    rules, tests = os.path.join(d, "rules.yml"), os.path.join(d, "tests.yml")
    rc, out, err = run(MELTP, "slo", "rules", "--out", rules, "--tests", tests, *specs)
    assert rc == 0, err
    return rules, tests


@pytest.mark.slow  # promtool runs every example spec's generated unit tests (about 2 minutes)
def test_rules_promtool_check_and_unit_tests_all_specs():
    assert len(SPECS) >= 3, SPECS
    assert have_promtool(), "promtool is required (Debian package prometheus)"
    d = tempfile.mkdtemp(prefix="meltp-slo-")
    rules, tests = gen(SPECS, d)
    rc, out, err = run("promtool", "check", "rules", rules)
    assert rc == 0, out + err
    assert "SUCCESS" in out
    rc, out, err = run("promtool", "test", "rules", tests)
    assert rc == 0, out + err
    text = open(tests).read()
    # every SLO of the examples got an outage and a healthy test that assert alerts
    for sid in ("patient-api-availability", "patient-api-latency", "billing-requests-availability",
                "billing-invoice-jobs", "scheduling-booking-availability",
                "scheduling-search-latency"):
        assert "'%s full outage pages'" % sid in text, sid
        assert "'%s healthy fires nothing'" % sid in text, sid
    assert "sloth_severity: 'page'" in text and "exp_alerts: []" in text


def test_rules_each_spec_file_checks():
    for spec in SPECS:
        d = tempfile.mkdtemp(prefix="meltp-slo-")
        rules, tests = gen([spec], d)
        rc, out, err = run("promtool", "check", "rules", rules)
        assert rc == 0, spec + out + err
        rc, out, err = run("promtool", "test", "rules", tests)
        assert rc == 0, spec + out + err


def test_generated_tests_catch_broken_rules():
    """The promtool tests are not vacuous: rules that can never page make them fail, and so do
    rules that always page."""
    d = tempfile.mkdtemp(prefix="meltp-slo-")
    rules, tests = gen([os.path.join(ROOT, "rules", "slos", "sloth-billing.yaml")], d)
    good = open(rules).read()
    b = "0.0009999999999998899"  # 1 - 0.999 as the engine's double (thresholds compare exactly)
    never = good.replace("> (14.4 * %s)" % b, "> (1e9 * 0.001)").replace(
        "> (6 * %s)" % b, "> (1e9 * 0.001)")
    assert never != good
    open(rules, "w").write(never)
    rc, out, err = run("promtool", "test", "rules", tests)
    assert rc != 0, "tests passed with rules that never page"
    always = good.replace("> (14.4 * %s)" % b, ">= (0 * 0.001)").replace(
        "> (6 * %s)" % b, ">= (0 * 0.001)")
    open(rules, "w").write(always)
    rc, out, err = run("promtool", "test", "rules", tests)
    assert rc != 0, "tests passed with rules that always page"


def test_rules_stdout_sloth_names_and_labels():
    rc, out, err = run(MELTP, "slo", "rules", os.path.join(ROOT, "rules", "slos", "sloth-billing.yaml"))
    assert rc == 0, err
    for name in ("slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate30m",
                 "slo:sli_error:ratio_rate1h", "slo:sli_error:ratio_rate2h",
                 "slo:sli_error:ratio_rate6h", "slo:sli_error:ratio_rate1d",
                 "slo:sli_error:ratio_rate3d", "slo:sli_error:ratio_rate30d",
                 "slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days",
                 "slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio",
                 "slo:period_error_budget_remaining:ratio", "sloth_slo_info"):
        assert "record: " + name + "\n" in out, name
    assert "- name: sloth-slo-sli-recordings-billing-requests-availability" in out
    assert "- name: sloth-slo-alerts-billing-requests-availability" in out
    assert "alert: BillingHighErrorRate" in out
    assert "sloth_severity: 'page'" in out and "routing_key: 'billing-oncall'" in out
    assert "slack_channel: '#alerts-billing'" in out
    # Sloth's queries are kept, with the window filled in
    assert 'sum(rate(http_requests_total{job="billing",code=~"(5..|429)"}[5m]))' in out
    # invoice-jobs has its page alert disabled: only a ticket rule
    grp = out.split("- name: sloth-slo-alerts-billing-invoice-jobs")[1]
    assert "sloth_severity: 'ticket'" in grp and "sloth_severity: 'page'" not in grp
    assert "sum by (queue) (increase(invoice_jobs_failed_total" in out


def test_explain_matches_slo_md_formulas():
    rc, out, err = run(MELTP, "slo", "explain", os.path.join(ROOT, "rules", "slos", "sloth-billing.yaml"))
    assert rc == 0, err
    block = out.split("SLO billing-requests-availability")[1].split("\nSLO ")[0]
    lines = [l.strip() for l in block.splitlines() if "detect_ms=" in l]
    got = [dict(kv.split("=") for kv in l.split() if "=" in kv) for l in lines]
    B = 1 - 0.999
    tiers = [(3600, 300, 14.4), (6 * 3600, 1800, 6), (86400, 7200, 3), (3 * 86400, 6 * 3600, 1)]
    assert len(got) == 4
    for g, (lw, sw, f) in zip(got, tiers):
        detect = lw * f * B / 1.0 * 1000          # W_long x factor x B / e, e = 1
        reset = sw * (1 - f * B) * 1000           # W_short x (1 - threshold)
        assert abs(int(g["detect_ms"]) - detect) <= 1, (g, detect)
        assert abs(int(g["reset_ms"]) - reset) <= 1, (g, reset)
    # slo.md: 1h/14.4 fires after about 52s, 6h/6 about 130s, 3d/1 about 260s
    assert [round(int(g["detect_ms"]) / 1000) for g in got] == [52, 130, 259, 259]


def test_dashboards_written_and_valid():
    d = tempfile.mkdtemp(prefix="meltp-dash-")
    rc, out, err = run(MELTP, "slo", "dashboards", "--out", d, *SPECS)
    assert rc == 0, err
    files = sorted(os.listdir(d))
    assert files == ["slo-billing.json", "slo-patient-api.json", "slo-scheduling.json"], files
    dash = json.load(open(os.path.join(d, "slo-billing.json")))
    assert dash["title"] == "SLOs / billing" and dash["uid"].startswith("meltp-slo-")
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    titles = [p["title"] for p in dash["panels"]]
    assert "Burn rate per window (x budget)" in titles
    assert "Error budget remaining over the period" in titles
    assert any("slo:period_error_budget_remaining:ratio" in e for e in exprs)
    assert any("slo:sli_error:ratio_rate1h" in e for e in exprs)
    # deterministic: a second run writes the same bytes
    d2 = tempfile.mkdtemp(prefix="meltp-dash-")
    run(MELTP, "slo", "dashboards", "--out", d2, *SPECS)
    for f in files:
        assert open(os.path.join(d, f)).read() == open(os.path.join(d2, f)).read()


def test_lint_errors_on_the_command_line():
    d = tempfile.mkdtemp(prefix="meltp-slo-")
    spec = os.path.join(d, "bad.yaml")
    open(spec, "w").write(
        "service: svc\n"
        "slos:\n"
        "  - name: a\n"
        "    objective: 90\n"
        "    sli:\n"
        "      ratio:\n"
        "        bad: 'x_total{code=~\"5(\"}'\n"
        "        total: x_total\n")
    for sub in ("rules", "explain", "dashboards"):
        rc, out, err = run(MELTP, "slo", sub, spec)
        assert rc == 1, (sub, rc, err)
        assert spec + ":7: slos[0].sli.ratio.bad: label code: regex \"5(\" does not compile" in err, err
    rc, out, err = run(MELTP, "slo", "rules", spec.replace("bad", "missing"))
    assert rc == 1 and "matches no file" in err, err
    rc, out, err = run(MELTP, "slo", "frobnicate")
    assert rc == 2


def test_min_events_gates_alerts_in_rules_and_tests():
    """min_events (patient-api availability: 100) gates every tier on the event count of its
    long window, as the engine does; the generated low-traffic test (100% errors at a trickle)
    fails when the gate is removed."""
    d = tempfile.mkdtemp(prefix="meltp-slo-")
    rules, tests = gen([os.path.join(ROOT, "rules", "slos", "patient-api.yaml")], d)
    good = open(rules).read()
    for w in ("1h", "6h", "1d", "3d"):
        assert "record: slo:sli_total:count%s\n" % w in good, w
    grp = good.split("- name: sloth-slo-alerts-patient-api-availability")[1].split("- name:")[0]
    assert grp.count(">= 100) without (sloth_window)") == 4, grp
    # the latency SLO has no min_events: no count rules, no gate
    lat = good.split("- name: sloth-slo-alerts-patient-api-latency")[1]
    assert "slo:sli_total:count1h" not in lat and ") without (sloth_window)\n          and\n" \
        "          max(slo:sli_total:count_period" in lat
    text = open(tests).read()
    assert "'patient-api-availability low traffic below min_events fires nothing'" in text
    rc, out, err = run("promtool", "test", "rules", tests)
    assert rc == 0, out + err
    # the trickle is also below the engine's data-state count (the period gate): drop both
    import re
    open(rules, "w").write(re.sub(r"(count_period\{[^}]*\}) >= \d+ or", r"\1 >= 0 or",
                                  good.replace(">= 100) without", ">= 0) without")))
    rc, out, err = run("promtool", "test", "rules", tests)
    assert rc != 0, "low-traffic test passed without the min_events and data-state gates"


def test_calendar_and_no_data_comments():
    """Calendar periods get period rules that follow the calendar (no WARNING any more); a zone
    whose DST makes them inexact says so, precisely, in a comment (and only such a zone)."""
    rc, out, err = run(MELTP, "slo", "rules", *SPECS)
    assert rc == 0, err
    assert "WARNING" not in out
    head = out.split("- name: sloth-slo-sli-recordings-patient-api-latency")[0].split(
        "sloth-slo-alerts-patient-api-availability")[1]
    assert "# patient-api-latency: calendar month in Europe/Berlin." in head
    # Berlin's DST changes never come near a month boundary: months are exact there
    assert "NOT EXACT" not in head
    lat = out.split("- name: sloth-slo-sli-recordings-patient-api-latency")[1].split("- name:")[0]
    assert "record: slo:sli_error:ratio_period\n" in lat and "sloth_window: 'month'" in lat
    assert "ratio_rate30d" not in lat
    # no_data: freeze on occurrences: ratios keep their last value; its tiers (1m for, no
    # keep_firing_for, short = long / 12) cannot be changed by the engine's hold
    assert "# patient-api-availability: no_data: freeze. A window without events keeps the " \
        "previous evaluation's ratio" in out
    # no NOT EQUIVALENT notes: rules with `for` hold their own pending or firing alert while
    # the engine calls the data invalid (it holds every tier then), one rule per such tier
    assert "NOT EQUIVALENT" not in out
    assert "ALERTS{alertname=" in out and "slo:sli_invalid:flag" in out
    assert ') >= -Inf\n      or on()\n      slo:sli_error:ratio_rate5m{sloth_id="patient-api-' \
        'availability", sloth_service="patient-api", sloth_slo="availability", ' \
        'sloth_window="5m"}\n' in out
    # New York weeks: a Monday before the March or November change takes the month-end offset
    assert "# scheduling-search-latency: calendar week in America/New_York." in out
    assert "# NOT EXACT: scheduling-search-latency: America/New_York has DST" in out
    assert out.count("NOT EXACT") == 1
    assert "# billing-requests-availability: calendar" not in out


NODATA_SPEC = """version: meltp/v1
service: checkout
slos:
  - name: latency
    objective: 99
    period: 30d
    no_data: alert
    min_events: 20
    sli:
      ratio:
        bad: 'http_requests_total{job="checkout",code=~"5.."}'
        total: 'http_requests_total{job="checkout"}'
    alerting:
      name: CheckoutLatencyBurn
      labels: {team: shop}
"""


def test_no_data_alert_rule_matches_engine():
    """`no_data: alert` gets a CheckoutLatencyNoData rule (the engine's name: Burn suffix ->
    NoData) that fires once the series have been absent for the shortest long window (1h, the
    engine's delay); the generated test catches a rule that never fires."""
    d = tempfile.mkdtemp(prefix="meltp-slo-")
    spec = os.path.join(d, "nodata.yaml")
    open(spec, "w").write(NODATA_SPEC)
    rules, tests = gen([spec], d)
    good = open(rules).read()
    assert "- alert: CheckoutLatencyNoData\n" in good
    assert "(time() - slo:nodata_watch_start:time" in good, good
    assert 'unless on()\n      (sum (rate(http_requests_total{job="checkout"}[1h])) > 0)' in good, good
    assert "sloth_severity: 'ticket'" in good and "burnrate_tier: 'no-data'" in good
    assert "no_data: alert. Prometheus" not in good
    rc, out, err = run("promtool", "check", "rules", rules)
    assert rc == 0, out + err
    text = open(tests).read()
    assert "'checkout-latency no data alerts after 1h'" in text
    assert "eval_time: 68m\n        alertname: CheckoutLatencyNoData\n        exp_alerts: []" in text
    assert "eval_time: 71m\n        alertname: CheckoutLatencyNoData\n        exp_alerts:\n" in text
    assert "'checkout-latency low traffic below min_events fires nothing'" in text
    rc, out, err = run("promtool", "test", "rules", tests)
    assert rc == 0, out + err
    open(rules, "w").write(good.replace(">= 3600\n", ">= 3600 and absent(vector(1))\n"))
    rc, out, err = run("promtool", "test", "rules", tests)
    assert rc != 0, "no-data test passed with a rule that never fires"


def test_subcommand_flag_errors():
    spec = os.path.join(ROOT, "rules", "slos", "sloth-billing.yaml")
    d = tempfile.mkdtemp()
    try:
        for cmd in ("explain", "rules", "dashboards"):
            rc, out, err = run(MELTP, "slo", cmd, "--bogus", spec)
            assert rc == 2 and err.startswith("meltp slo %s: unknown flag --bogus\n" % cmd), err
            assert "usage" in err.lower(), err
        rc, _, err = run(MELTP, "slo", "simulate", "--bogus", spec)
        assert rc == 2 and err == "meltp slo simulate: unknown flag --bogus\n", err
        rc, _, err = run(MELTP, "slo", "explain", "--eval-interval", "nope", "--bogus", spec)
        assert rc == 2 and err == "meltp slo explain: bad --eval-interval\n", err
        rc, out, err = run(MELTP, "slo", "explain", "--eval-interval", "30s", "--", spec)
        assert rc == 0 and "evaluation interval (30s)" in out, err
        rc, _, err = run(MELTP, "slo", "rules", "--tests", os.path.join(d, "t.yml"), spec)
        assert rc == 2 and "--tests needs --out" in err, err
        rc, _, err = run(MELTP, "slo", "rules", "-o", os.path.join(d, "r.yml"), spec)
        assert rc == 0 and os.path.getsize(os.path.join(d, "r.yml")) > 0, err
        rc, _, err = run(MELTP, "slo", "dashboards", "--out", d, spec)
        assert rc == 0 and glob.glob(os.path.join(d, "*.json")), err
        rc, _, err = run(MELTP, "slo", "simulate", spec)
        assert rc == 2 and "needs --series" in err, err
    finally:
        shutil.rmtree(d)
