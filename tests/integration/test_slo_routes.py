"""SLO alert routing end to end (issue #16). The Sloth example `api` (99.9 %, 30 days) gets
three hours of healthy traffic, then a full outage: with slo.routes the ticket reaches the
ticket notifier only, the page reaches the page notifier within one evaluation interval of the
page tier firing (and, on a catch-all route, is not held behind the ticket by group_interval),
the ticket is inhibited while the page fires and sent again when the page resolves, resolved
notices follow. A silence created through the API (and the `meltp slo silence` client)
mutes notices, shows as `silenced_by`, survives a restart and, expired, lets notices through.
A real Alertmanager (Debian's prometheus-alertmanager) receives meltp's alerts, groups them and
resolves them. `meltp slo explain --config` prints each tier's route and notifiers, and bad
matchers or unknown notifier names are check-config errors with FILE:LINE."""
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from harness import MELTP, Meltp, free_port, http_request, wait_until, _servers

SLOTH_API = """version: "prometheus/v1"
service: "api"
labels:
  team: sre
slos:
  - name: "requests-availability"
    objective: 99.9
    description: "The api answers without errors."
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="api",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="api"}[{{.window}}]))
    alerting:
      name: ApiHighErrorRate
      page_alert:
        labels:
          routing_key: api-oncall
      ticket_alert:
        labels:
          slack_channel: "#sre"
"""

ROUTES_CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file/m:
    path: {dir}/m.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [file/m]
slo:
  specs: [SPECDIR/*.yaml]
  evaluation_interval: 1s
  state_dir: STATEDIR
  notifiers:
    - {name: all, type: webhook, url: "${env:ALL_URL}"}
    - {name: oncall, type: teams, webhook_url: "${env:TEAMS_ONCALL_URL}"}
    - {name: sre-slack, type: slack, webhook_url: "${env:SLACK_SRE_URL}"}
  routes:                       # first match wins unless `continue: true`
    - matchers: []
      notifiers: [all]
      group_wait: 0s
      continue: true
    - matchers: ['severity="page"']
      notifiers: [oncall]
      group_wait: 0s
    - matchers: ['severity=~"ticket|slack"', 'team="sre"']
      notifiers: [sre-slack]
      group_wait: 0s
      repeat_interval: 2s
  inhibit: [{source_matchers: ['severity="page"'], target_matchers: ['severity="ticket"'], equal: [sloth_id]}]
"""

RATE = 100  # requests per second


class Hook:
    """Records JSON POSTs with their arrival time, per path."""

    def __init__(self):
        self.port = free_port()
        self.got = []  # (time, path, body)
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with outer.lock:
                    outer.got.append((time.time(), self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _servers.append(self.server)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def on(self, path):
        with self.lock:
            return [g for g in self.got if g[1] == path]


def attr(k, v):
    return {"key": k, "value": {"stringValue": v}}


class Traffic:
    """Cumulative http_requests_total{job="api", code} counters, posted as OTLP/JSON."""

    def __init__(self, m, start_ns):
        self.m = m
        self.start_ns = start_ns
        self.ok = 0
        self.err = 0
        self.lock = threading.Lock()

    def post(self, points):
        """points: [(t_ns, ok, err)], one request."""
        metrics = []
        for t, ok, err in points:
            for code, v in (("200", ok), ("500", err)):
                metrics.append({"name": "http_requests_total", "sum": {
                    "aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [{
                        "attributes": [attr("job", "api"), attr("code", code)],
                        "startTimeUnixNano": str(self.start_ns), "timeUnixNano": str(t),
                        "asInt": str(v)}]}})
        body = json.dumps({"resourceMetrics": [{
            "resource": {"attributes": [attr("service.name", "api")]},
            "scopeMetrics": [{"scope": {"name": "t"}, "metrics": metrics}]}]}).encode()
        st, _, resp = self.m.post("/v1/metrics", body, "application/json")
        assert st == 200, resp

    def step(self, t_ns, ok=0, err=0):
        with self.lock:
            self.ok += ok
            self.err += err
            self.post([(t_ns, self.ok, self.err)])


def escaped(cfg):
    """The config as Meltp's str.format template: every brace doubled but the placeholders."""
    cfg = cfg.replace("{", "{{").replace("}", "}}")
    for k in ("otlp", "metrics", "dir"):
        cfg = cfg.replace("{{%s}}" % k, "{%s}" % k)
    return cfg


def api(m):
    st, _, body = http_request("http://127.0.0.1:%d/api/v1/slos" % m.metrics, method="GET")
    assert st == 200, st
    return json.loads(body)["slos"]


def routes_meltp(tmp, hook, cfg=ROUTES_CFG, spec=SLOTH_API):
    os.makedirs(os.path.join(tmp, "slos"), exist_ok=True)
    with open(os.path.join(tmp, "slos", "api.yaml"), "w") as f:
        f.write(spec)
    env = {"ALL_URL": hook.url("/all"), "TEAMS_ONCALL_URL": hook.url("/teams-oncall"),
           "SLACK_SRE_URL": hook.url("/slack-sre")}
    return Meltp(escaped(cfg.replace("SPECDIR", tmp + "/slos").replace("STATEDIR",
                                                                       tmp + "/state")),
                 extra_env=env)


def teams_text(body):
    card = body["attachments"][0]["content"]
    return " ".join(b.get("text", "") for b in card["body"] if b.get("type") == "TextBlock")


@pytest.mark.slow
def test_outage_routes_page_ticket_inhibition_and_resolution():
    tmp = tempfile.mkdtemp(prefix="meltp-routes-")
    hook = Hook()
    m = routes_meltp(tmp, hook)
    # three hours of healthy traffic, one point a minute, then a full outage that started 45 s
    # ago, one point a second; the page tier (14.4x over 1h and 5m) fires once errors are 1.44 %
    # of the hour: 3600 s x 0.0144 / (1 - 0.0144) = 52.6 s into the outage
    now = time.time()
    outage = now - 45
    tr = Traffic(m, int((outage - 3 * 3600 - 120) * 1e9))
    tr.post([(int((outage - 3 * 3600 - 60) * 1e9), 0, 0)])  # the counters' first sample
    for k in range(0, 181, 30):
        pts = []
        for i in range(k, min(k + 30, 181)):
            tr.ok += 60 * RATE
            pts.append((int((outage - 3 * 3600 + i * 60) * 1e9), tr.ok, tr.err))
        tr.post(pts)
    t = outage
    while t + 1 < time.time():
        t += 1
        tr.step(int(t * 1e9), err=RATE)
    page_fires_at = outage + 3600 * 0.0144 / (1 - 0.0144)
    stop = threading.Event()

    def live():
        last = t
        while not stop.is_set():
            n = time.time()
            tr.step(int(n * 1e9), err=int(round((n - last) * RATE)))
            last = n
            stop.wait(0.25)
    th = threading.Thread(target=live, daemon=True)
    th.start()
    try:
        # the ticket goes to the ticket route only, re-sent every repeat_interval (2 s)
        wait_until(lambda: len(hook.on("/slack-sre")) >= 2, 15, what="two ticket notices on Slack")
        # the page reaches on-call within one evaluation interval of firing
        page = wait_until(lambda: hook.on("/teams-oncall"), 30, what="the page on Teams")[0]
        late = page[0] - page_fires_at
        assert -2.0 <= late <= 1.0 + 2.0, "page notice %.1f s after the tier fired" % late
        assert "[FIRING:page]" in teams_text(page[2])
        tickets_before = hook.on("/slack-sre")
        assert all(b["attachments"][0]["color"] == "warning" for _, _, b in tickets_before)
        assert all("[FIRING:ticket]" in b["text"] for _, _, b in tickets_before)
        assert all(b.get("type") != "message" for _, _, b in tickets_before)  # no Teams cards
        # the catch-all route (continue: true) got the ticket first, then the page escalation
        # at once: not held for its group_interval (5m)
        allp = hook.on("/all")
        assert allp[0][2]["alerts"][0]["labels"]["severity"] == "ticket"
        esc = [g for g in allp if g[2]["alerts"][0]["labels"]["severity"] == "page"]
        assert esc, [g[2]["alerts"][0]["labels"] for g in allp]
        assert esc[0][0] - page_fires_at <= 3.0, esc[0][0] - page_fires_at
        assert esc[0][2]["alerts"][0]["labels"]["routing_key"] == "api-oncall"
        # inhibited: no ticket re-sent while the page fires (repeat_interval 2 s); an absence
        # over a fixed time (two repeat intervals and more), which no wait can show
        time.sleep(5)
        during = [g for g in hook.on("/slack-sre") if g[0] > page[0] + 1.5]
        assert during == [], "ticket re-sent while the page fires"
        s = api(m)[0]
        assert s["alert_state"] == "firing" and "silenced_by" not in s
        # the outage ends and traffic floods in: the page tiers clear, the slow ticket
        # (1x over 3d and 6h) still burns: the page resolves, the ticket is sent again
        stop.set()
        th.join()
        n_slack = len(hook.on("/slack-sre"))
        tr.step(int(time.time() * 1e9), ok=15000 * RATE)
        res = wait_until(lambda: [g for g in hook.on("/teams-oncall")
                                  if "[RESOLVED]" in teams_text(g[2])], 10,
                         what="the page's resolved notice on Teams")
        again = wait_until(lambda: hook.on("/slack-sre")[n_slack:], 10,
                           what="the ticket again once the page resolved")
        assert "[FIRING:ticket]" in again[0][2]["text"]
        assert again[0][0] >= res[0][0] - 1.5
        # then the ticket clears too: its resolved notice goes to Slack only
        tr.step(int(time.time() * 1e9), ok=100000 * RATE)
        wait_until(lambda: [g for g in hook.on("/slack-sre") if "[RESOLVED]" in g[2]["text"]], 10,
                   what="the ticket's resolved notice on Slack")
        assert all("ticket" not in teams_text(b) for _, _, b in hook.on("/teams-oncall"))
        assert m.metric("meltp_slo_notifications_failed_total", notifier="oncall") == 0
    finally:
        stop.set()
    assert m.stop() == 0


SPANS_SPEC = """version: meltp/v1
service: checkout
slos:
  - name: availability
    objective: 99
    period: 30d
    sli:
      spans:
        service: checkout
        type: errors
    alerting:
      name: CheckoutAvailabilityBurn
      tiers:
        - {name: page-quick, severity: page, long: 1h, short: 5m, factor: 14.4}
        - {name: ticket-slow, severity: ticket, long: 3d, short: 6h, factor: 1}
"""

SPANS_CFG = """
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
    traces:
      receivers: [otlp]
      exporters: [file/t]
slo:
  specs: [SPECDIR/*.yaml]
  evaluation_interval: 1s
  state_dir: STATEDIR
  group_wait: 0s
  repeat_interval: 1s
  notifiers:
NOTIFIERS
"""


def spans(n_ok, n_err):
    now = time.time_ns()
    out = []
    for i in range(n_ok + n_err):
        s = {"traceId": "%032x" % (0xfeed000 + i), "spanId": "%016x" % (i + 1), "name": "GET /",
             "kind": 2, "startTimeUnixNano": str(now - 5_000_000), "endTimeUnixNano": str(now)}
        if i >= n_ok:
            s["status"] = {"code": 2}
        out.append(s)
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", "checkout")]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": out}]}]}).encode()


def spans_meltp(tmp, notifiers, env):
    os.makedirs(os.path.join(tmp, "slos"), exist_ok=True)
    with open(os.path.join(tmp, "slos", "checkout.yaml"), "w") as f:
        f.write(SPANS_SPEC)
    cfg = SPANS_CFG.replace("SPECDIR", tmp + "/slos").replace("STATEDIR", tmp + "/state")
    return Meltp(escaped(cfg.replace("NOTIFIERS", notifiers)), extra_env=env)


def silences(m, method="GET", path="/api/v1/silences", body=None):
    st, _, resp = http_request("http://127.0.0.1:%d%s" % (m.metrics, path),
                               body=json.dumps(body).encode() if body is not None else None,
                               ctype="application/json", method=method)
    return st, resp


def test_silence_mutes_notices_and_survives_a_restart():
    tmp = tempfile.mkdtemp(prefix="meltp-silence-")
    hook = Hook()
    notifiers = '    - {type: webhook, url: "${env:HOOK_URL}"}'
    env = {"HOOK_URL": hook.url("/hook")}
    m = spans_meltp(tmp, notifiers, env)
    # bad silences: 400 with the reason, nothing stored
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    for bad, why in (({"matchers": [], "endsAt": future, "createdBy": "t", "comment": "c"},
                      b"matchers"),
                     ({"matchers": [{"name": "sloth_id", "value": "(", "isRegex": True}],
                       "endsAt": future, "createdBy": "t", "comment": "c"}, b"does not compile"),
                     ({"matchers": [{"name": "sloth_id", "value": "x", "isRegex": False}],
                       "endsAt": "2001-01-01T00:00:00Z", "createdBy": "t", "comment": "c"},
                      b"past"),
                     ({"matchers": [{"name": "sloth_id", "value": "x", "isRegex": False}],
                       "endsAt": future, "createdBy": "t"}, b"comment")):
        st, resp = silences(m, "POST", body=bad)
        assert st == 400 and why in resp, (st, resp)
    st, _, resp = http_request("http://127.0.0.1:%d/api/v1/silences" % m.metrics, body=b"{not json",
                            ctype="application/json", method="POST")
    assert st == 400 and b"bad JSON" in resp
    assert m.metric("meltp_slo_silence_requests_total", code="400") == 5
    # the client creates one (Alertmanager syntax, 2h, a comment)
    out = subprocess.run([MELTP, "slo", "silence", "--url", "http://127.0.0.1:%d" % m.metrics,
                          "--matcher", 'sloth_id="checkout-availability"', "--matcher",
                          'severity=~"page|ticket"', "--duration", "2h", "--comment",
                          "chaos drill", "--created-by", "sre-bot"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["silenceID"]
    st, resp = silences(m)
    assert st == 200
    lst = json.loads(resp)
    assert [s["id"] for s in lst] == [sid]
    s = lst[0]
    assert s["status"]["state"] == "active" and s["comment"] == "chaos drill"
    assert s["createdBy"] == "sre-bot"
    assert s["matchers"][0] == {"name": "sloth_id", "value": "checkout-availability",
                                "isRegex": False, "isEqual": True}
    assert s["matchers"][1]["isRegex"] is True
    ends = time.mktime(time.strptime(s["endsAt"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(ends - (time.time() + 7200)) < 60
    # an outage: the SLO fires, silenced: no notice, silenced_by in the API
    st, _, _ = m.post("/v1/traces", spans(150, 50), "application/json")
    assert st == 200
    wait_until(lambda: api(m) and api(m)[0]["alert_state"] == "firing", 10, what="firing")
    assert api(m)[0]["silenced_by"] == [sid]
    time.sleep(3)  # three evaluations with repeat_interval 1s
    assert hook.on("/hook") == []
    assert m.stop() == 0
    # restart on the same state_dir: the silence and the firing alert are back, still muted
    m = spans_meltp(tmp, notifiers, env)
    st, resp = silences(m)
    assert [s["id"] for s in json.loads(resp)] == [sid]
    # the client finds the endpoint in the config
    out = subprocess.run([MELTP, "slo", "silence", "--config", m.config_path, "--list"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert [s["id"] for s in json.loads(out.stdout)] == [sid]
    wait_until(lambda: api(m)[0]["alert_state"] == "firing", 10, what="firing after the restart")
    assert api(m)[0]["silenced_by"] == [sid]
    time.sleep(2)  # an absence: two evaluations with repeat_interval 1s, still no notice
    assert hook.on("/hook") == []
    # expired (DELETE, as in Alertmanager): the notice goes out at the next evaluation
    st, _ = silences(m, "DELETE", "/api/v1/silences/" + sid)
    assert st == 200
    st, resp = silences(m, "GET", "/api/v1/silences/" + sid)
    assert st == 200 and json.loads(resp)["status"]["state"] == "expired"
    got = wait_until(lambda: hook.on("/hook"), 5, what="the notice once the silence expired")
    assert got[0][2]["status"] == "firing"
    assert "silenced_by" not in api(m)[0]
    st, _ = silences(m, "DELETE", "/api/v1/silences/no-such-id")
    assert st == 404
    assert m.stop() == 0


AM_BIN = "/usr/bin/prometheus-alertmanager"


@pytest.mark.skipif(not os.access(AM_BIN, os.X_OK),
                    reason="needs Debian's prometheus-alertmanager (%s)" % AM_BIN)
def test_real_alertmanager_receives_groups_and_resolves():
    tmp = tempfile.mkdtemp(prefix="meltp-am-")
    hook = Hook()
    am_port = free_port()
    with open(os.path.join(tmp, "am.yml"), "w") as f:
        f.write("""route:
  receiver: hook
  group_by: [alertname, sloth_id]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: true
""" % hook.url("/am"))
    am_log = open(os.path.join(tmp, "am.log"), "wb")
    am = subprocess.Popen([AM_BIN, "--config.file=" + os.path.join(tmp, "am.yml"),
                           "--storage.path=" + os.path.join(tmp, "am-data"),
                           "--web.listen-address=127.0.0.1:%d" % am_port,
                           "--cluster.listen-address="], stdout=am_log, stderr=subprocess.STDOUT)
    try:
        def am_ready():
            try:
                st, _, _ = http_request("http://127.0.0.1:%d/-/ready" % am_port, method="GET")
                return st == 200
            except OSError:
                return False
        wait_until(am_ready, 20, what="alertmanager to be ready")
        notifiers = ('    - {name: am, type: alertmanager, url: "http://127.0.0.1:%d/", '
                     'resend_interval: 2s}' % am_port)
        m = spans_meltp(tmp, notifiers, {})
        st, _, _ = m.post("/v1/traces", spans(150, 50), "application/json")
        assert st == 200
        # both tiers fire (25 % errors: 25x burn): two alerts, one Alertmanager group
        def grouped():
            for _, _, b in hook.on("/am"):
                if b["status"] == "firing" and len(b["alerts"]) == 2:
                    return b
        b = wait_until(grouped, 20, what="Alertmanager's grouped notification")
        assert b["groupLabels"] == {"alertname": "CheckoutAvailabilityBurn",
                                    "sloth_id": "checkout-availability"}
        tiers = sorted(a["labels"]["burnrate_tier"] for a in b["alerts"])
        assert tiers == ["page-quick", "ticket-slow"]
        assert {a["labels"]["severity"] for a in b["alerts"]} == {"page", "ticket"}
        assert all(a["annotations"]["summary"] for a in b["alerts"])
        st, _, body = http_request("http://127.0.0.1:%d/api/v2/alerts" % am_port, method="GET")
        assert st == 200 and len(json.loads(body)) == 2
        # re-posted every resend_interval
        wait_until(lambda: m.metric("meltp_slo_notifications_sent_total", notifier="am") >= 4, 10,
                   what="re-posts every resend_interval")
        # recovery: 10,000 good spans bring every burn rate under its factor
        for _ in range(10):
            st, _, _ = m.post("/v1/traces", spans(1000, 0), "application/json")
            assert st == 200
        # the tiers may clear at different evaluations: each ends up resolved in a
        # notification, the last one resolves the group
        def resolved():
            bodies = hook.on("/am")
            done = {a["labels"]["burnrate_tier"] for _, _, b in bodies for a in b["alerts"]
                    if a["status"] == "resolved" and not a["endsAt"].startswith("0001")}
            return done == {"page-quick", "ticket-slow"} and bodies[-1][2]["status"] == "resolved"
        wait_until(resolved, 20, what="Alertmanager's resolved notifications")
        st, _, body = http_request("http://127.0.0.1:%d/api/v2/alerts?active=true" % am_port,
                                   method="GET")
        assert st == 200 and json.loads(body) == []
        assert m.stop() == 0
    finally:
        am.terminate()
        try:
            am.wait(10)
        except subprocess.TimeoutExpired:
            am.kill()
        am_log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_explain_prints_each_tiers_route_and_notifiers():
    tmp = tempfile.mkdtemp(prefix="meltp-explain-")
    os.makedirs(os.path.join(tmp, "slos"))
    with open(os.path.join(tmp, "slos", "api.yaml"), "w") as f:
        f.write(SLOTH_API)
    cfg = ROUTES_CFG.replace("SPECDIR", tmp + "/slos").replace("STATEDIR", tmp + "/state")
    cfg = cfg.replace("{otlp}", "4318").replace("{metrics}", "8888").replace("{dir}", tmp)
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    env = dict(os.environ, ALL_URL="http://127.0.0.1:9/a", TEAMS_ONCALL_URL="http://127.0.0.1:9/t",
               SLACK_SRE_URL="http://127.0.0.1:9/s")
    out = subprocess.run([MELTP, "slo", "explain", "--config", path], capture_output=True,
                         text=True, env=env, timeout=20)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # each tier line is followed by its route lines
    tiers = {}
    cur = None
    for ln in lines:
        w = ln.split()
        if w and w[0] in ("page-quick", "page-slow", "ticket-quick", "ticket-slow"):
            cur = w[0]
            tiers[cur] = []
        elif cur and ln.startswith("    ") and ("route:" in ln or "inhibited" in ln):
            tiers[cur].append(ln.strip())
    assert set(tiers) == {"page-quick", "page-slow", "ticket-quick", "ticket-slow"}, out.stdout
    for t in ("page-quick", "page-slow"):
        assert tiers[t][0].startswith("route: slo.routes[0] {} -> all"), tiers[t]
        assert tiers[t][1].startswith('route: slo.routes[1] {severity="page"} -> oncall '), tiers[t]
        assert "group_wait 0s" in tiers[t][1]
        assert not any("inhibited" in x for x in tiers[t])
    for t in ("ticket-quick", "ticket-slow"):
        assert tiers[t][1] == ('route: slo.routes[2] {severity=~"ticket|slack", team="sre"} -> '
                               'sre-slack (group_wait 0s, group_interval 5m, repeat_interval 2s)'
                               ), tiers[t]
        assert "inhibited by slo.inhibit[0]" in tiers[t][2]
    # without routes: the default route to every notifier
    plain = cfg.split("  routes:")[0]
    with open(path, "w") as f:
        f.write(plain)
    out = subprocess.run([MELTP, "slo", "explain", "--config", path], capture_output=True,
                         text=True, env=env, timeout=20)
    assert out.returncode == 0, out.stderr
    assert "route: (default: no slo.routes) -> all, oncall, sre-slack" in out.stdout


def test_bad_matcher_and_unknown_notifier_are_config_errors_with_lines():
    tmp = tempfile.mkdtemp(prefix="meltp-routecfg-")
    os.makedirs(os.path.join(tmp, "slos"))
    with open(os.path.join(tmp, "slos", "api.yaml"), "w") as f:
        f.write(SLOTH_API)
    cfg = ROUTES_CFG.replace("SPECDIR", tmp + "/slos").replace("STATEDIR", tmp + "/state")
    cfg = cfg.replace("{otlp}", "4318").replace("{metrics}", "8888").replace("{dir}", tmp)
    cfg = cfg.replace("""['severity="page"']""", """['severity=~"(page"']""")
    cfg = cfg.replace("notifiers: [sre-slack]", "notifiers: [sre-slack, pagerduty]")
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    lines = cfg.splitlines()
    bad_line = next(i + 1 for i, ln in enumerate(lines) if "(page" in ln)
    pd_line = next(i + 1 for i, ln in enumerate(lines) if "pagerduty" in ln)
    env = dict(os.environ, ALL_URL="http://127.0.0.1:9/a", TEAMS_ONCALL_URL="http://127.0.0.1:9/t",
               SLACK_SRE_URL="http://127.0.0.1:9/s")
    out = subprocess.run([MELTP, "check-config", "--config", path], capture_output=True,
                         text=True, env=env, timeout=20)
    assert out.returncode != 0
    err = out.stderr + out.stdout
    assert "%s:%d: slo.routes[1]: matchers[0]: bad matcher" % (path, bad_line) in err, err
    assert ('%s:%d: slo.routes[2]: notifiers[1]: unknown notifier "pagerduty"' % (path, pd_line)
            in err), err
