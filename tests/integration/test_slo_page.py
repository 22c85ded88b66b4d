"""GET /slo and GET /slo/<id> on the telemetry endpoint: one self-contained HTML page (no
scripts, no external resources, inline SVG charts) per SLO and group with objective, SLI,
budget left and its burn-down, burn rate per window, error ratio per minute, alert state per
tier, time to exhaustion and the spec's runbook and dashboard links; hostile group values are
escaped; headless Chromium loads it without a console error and takes a screenshot."""
import html.parser
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from harness import Meltp, http_request, wait_until

SPEC = """version: meltp/v1
service: checkout
slos:
  - name: availability
    description: Checkout requests succeed.
    objective: 99
    period: 30d
    sli:
      spans: {service: checkout, type: errors, http_5xx: true}
    runbook_url: https://runbooks.example.org/checkout
    dashboard_url: https://grafana.example.org/d/meltp-slo/checkout
    alerting:
      name: CheckoutAvailabilityBurn
      tiers:
        - {name: page-quick, severity: page, long: 1h, short: 5m, factor: 14.4}
        - {name: ticket-slow, severity: ticket, long: 3d, short: 6h, factor: 1}
  - name: by-route
    objective: 99.5
    period: 7d
    sli:
      spans: {service: checkout, type: errors}
    group_by: [http.route]
    max_groups: 10
    runbook_url: "javascript:alert(1)"
"""

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file/t:
    path: {dir}/t.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file/t]}}
slo:
  specs: [{dir}/slos/*.yaml]
  evaluation_interval: 1s
  state_dir: {dir}/state
"""

HOSTILE = "/pay<script>alert(1)</script>\"'&"


def spans(n_ok, n_err, route):
    now = time.time_ns()
    out = []
    for i in range(n_ok + n_err):
        s = {"traceId": "%032x" % (0xdef000 + i), "spanId": "%016x" % (i + 1), "name": "GET",
             "kind": 2, "startTimeUnixNano": str(now - 5_000_000), "endTimeUnixNano": str(now),
             "attributes": [{"key": "http.route", "value": {"stringValue": route}}]}
        if i >= n_ok:
            s["status"] = {"code": 2}
        out.append(s)
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"spans": out}]}]}).encode()


def start():
    m = Meltp.__new__(Meltp)
    d = tempfile.mkdtemp(prefix="meltp-slo-page-")
    os.makedirs(os.path.join(d, "slos"))
    with open(os.path.join(d, "slos", "checkout.yaml"), "w") as f:
        f.write(SPEC)
    m = Meltp(CFG.replace("{dir}/slos", d + "/slos"))
    return m


def get(m, path, method="GET"):
    return http_request("http://127.0.0.1:%d%s" % (m.metrics, path), method=method)


class Page(html.parser.HTMLParser):
    """Collects tags, attributes and text to check the page is self-contained."""

    def __init__(self):
        super().__init__()
        self.tags, self.hrefs, self.text, self.svgs = [], [], [], 0
        self.bad = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag in ("script", "iframe", "object", "embed", "img", "link", "base", "form"):
            self.bad.append(tag)
        if "src" in a or any(k.startswith("on") for k in a):
            self.bad.append("%s %s" % (tag, a))
        if tag == "a":
            self.hrefs.append(a.get("href"))
        if tag == "svg":
            self.svgs += 1

    def handle_data(self, data):
        self.text.append(data)


def parse(body):
    p = Page()
    p.feed(body.decode())
    p.alltext = " ".join(p.text)
    return p


def test_slo_page_content_and_ids():
    m = start()
    assert m.post("/v1/traces", spans(180, 20, "/pay"), "application/json")[0] == 200
    assert m.post("/v1/traces", spans(50, 0, HOSTILE), "application/json")[0] == 200
    wait_until(lambda: b"checkout-availability" in get(m, "/slo")[2]
               and HOSTILE.encode()[:4] in get(m, "/api/v1/slos")[2], 15, what="instances")

    st, hdr, body = get(m, "/slo")
    assert st == 200 and hdr["content-type"].startswith("text/html")
    assert "default-src 'none'" in hdr["content-security-policy"]
    p = parse(body)
    assert not p.bad, p.bad
    assert b"<script" not in body.lower() and b"@import" not in body and b"url(" not in body
    # escaped, not markup
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in body
    # per SLO: objective, SLI, budget, charts, windows, tiers, time to exhaustion, links
    t = p.alltext
    for want in ["99.00%", "SLI (period)", "90.00%", "Error budget left", "Time to exhaustion",
                 "Burn rate per window", "Alerts per tier", "page-quick", "ticket-slow",
                 "CheckoutAvailabilityBurn", "5m", "1h", "6h", "3d", "30d",
                 "Error ratio per minute, last 6 hours", "Error budget burn-down"]:
        assert want in t, want
    assert p.svgs >= 4  # two charts per instance
    assert "https://runbooks.example.org/checkout" in p.hrefs
    assert "https://grafana.example.org/d/meltp-slo/checkout" in p.hrefs
    assert not any(h and h.startswith("javascript:") for h in p.hrefs)
    # budget: 20 bad of 200 at 99% is 10x the budget: overspent, alert state shown
    api = json.loads(get(m, "/api/v1/slos")[2])
    a = [s for s in api["slos"] if s["id"] == "checkout-availability"][0]
    assert a["budget_remaining"] < 0
    assert "%.2f%%" % (a["budget_remaining"] * 100) in t

    # one SLO by id; a group by its (percent-encoded) id; a spec id selects its groups
    st, _, one = get(m, "/slo/checkout-availability")
    assert st == 200 and b"checkout-availability" in one and b"checkout-by-route" not in one
    gid = [s["id"] for s in api["slos"] if "by-route" in s["id"] and "script" in s["id"]][0]
    st, _, g = get(m, "/slo/" + urllib.parse.quote(gid, safe=""))
    assert st == 200 and b"&lt;script&gt;" in g
    pg = parse(g)
    assert "/slo/" + urllib.parse.quote(gid, safe="") in pg.hrefs
    st, _, groups = get(m, "/slo/checkout-by-route")
    assert st == 200 and groups.count(b'<section class="slo"') == 2
    st, _, nf = get(m, "/slo/no-such-slo")
    assert st == 404 and b"No SLO" in nf
    assert get(m, "/slo", method="POST")[0] == 405


def test_slo_page_without_slos():
    m = Meltp("""
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{otlp}}}}}}}
exporters:
  file: {{path: {dir}/t.jsonl}}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics}}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
""")
    st, _, body = get(m, "/slo")
    assert st == 200 and b"No SLOs" in body and not parse(body).bad


def test_slo_page_in_headless_chromium():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed")
    m = start()
    assert m.post("/v1/traces", spans(90, 10, "/pay"), "application/json")[0] == 200
    wait_until(lambda: b"checkout-availability" in get(m, "/slo")[2], 15, what="an instance")
    d = tempfile.mkdtemp(prefix="meltp-chromium-")
    try:
        shot = os.path.join(d, "slo.png")
        r = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--user-data-dir=" + os.path.join(d, "profile"), "--enable-logging=stderr",
             "--v=0", "--window-size=1400,2400", "--screenshot=" + shot,
             "http://127.0.0.1:%d/slo" % m.metrics],
            capture_output=True, text=True, timeout=90)
        log = r.stdout + r.stderr
        assert r.returncode == 0, log
        with open(shot, "rb") as f:
            png = f.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000, len(png)
        # console messages and CSP violations are logged as CONSOLE lines
        bad = [l for l in log.splitlines() if "CONSOLE" in l or "Refused to" in l
               or "Uncaught" in l]
        assert not bad, bad
        # the DOM chromium built holds the charts
        r = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--user-data-dir=" + os.path.join(d, "profile2"), "--dump-dom",
             "http://127.0.0.1:%d/slo/checkout-availability" % m.metrics],
            capture_output=True, text=True, timeout=90)
        assert r.returncode == 0 and "<svg" in r.stdout and "Error budget left" in r.stdout
        # readable with JavaScript off: the same page renders to a screenshot of the same size
        shot2 = os.path.join(d, "slo-nojs.png")
        r = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--user-data-dir=" + os.path.join(d, "profile3"),
             "--disable-javascript", "--window-size=1400,2400",
             "--screenshot=" + shot2, "http://127.0.0.1:%d/slo" % m.metrics],
            capture_output=True, text=True, timeout=90)
        assert r.returncode == 0
        with open(shot2, "rb") as f:
            png2 = f.read()
        assert png2[:8] == b"\x89PNG\r\n\x1a\n" and len(png2) > 20000
    finally:
        shutil.rmtree(d)
