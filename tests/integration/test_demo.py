"""The demo drill: configs/demo.yaml, the synthetic traffic generator (demo/traffic.py) and the
local webhook receiver (demo/webhook_receiver.py). The generator alone sends all five signals
for the three example services, marked synthetic so the demo's synthetic_guard passes them
(unmarked data is dropped), with an error burst where --chaos puts it; the receiver prints
meltp's real Slack payload; and (slow) `demo/run.sh` on a compressed schedule prints the page
alert and stops cleanly on Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from harness import MELTP, ROOT, BUILD, free_port, http_request, wait_until, _procs

PY = sys.executable
TRAFFIC = os.path.join(ROOT, "demo", "traffic.py")
HOOKS = os.path.join(ROOT, "demo", "webhook_receiver.py")


def _env(d):
    ports = {k: free_port() for k in ("OTLP", "HEALTH", "METRICS", "HOOKS")}
    env = dict(os.environ, MELTP_DEMO_DIR=d)
    for k, p in ports.items():
        env["MELTP_DEMO_" + k] = "127.0.0.1:%d" % p
    return env, ports


def _start_meltp(d):
    env, ports = _env(d)
    p = subprocess.Popen([MELTP, "run", "--config", os.path.join(ROOT, "configs", "demo.yaml")],
                         stdout=open(os.path.join(d, "meltp.log"), "wb"),
                         stderr=subprocess.STDOUT, env=env)
    _procs.append(p)

    def up():
        if p.poll() is not None:
            pytest.fail(open(os.path.join(d, "meltp.log")).read())
        try:
            return http_request("http://127.0.0.1:%d/healthz" % ports["HEALTH"],
                                method="GET")[0] == 200
        except OSError:
            return False
    wait_until(up, 10, what="meltp")
    return p, env, ports


def _metric(ports, name, **labels):
    _, _, text = http_request("http://127.0.0.1:%d/metrics" % ports["METRICS"], method="GET")
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def test_demo_config_is_valid():
    d = tempfile.mkdtemp(prefix="meltp-demo-")
    env, _ = _env(d)
    r = subprocess.run([MELTP, "check-config", "--config", os.path.join(ROOT, "configs", "demo.yaml")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr


def test_traffic_generator_alone():
    d = tempfile.mkdtemp(prefix="meltp-demo-")
    _, env, ports = _start_meltp(d)
    r = subprocess.run([PY, TRAFFIC, "--endpoint", "http://127.0.0.1:%d" % ports["OTLP"],
                        "--rate", "40", "--duration", "4", "--seed", "7",
                        "--chaos", "patient-api:1s:2s:1.0", "--report-every", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CHAOS t=1s: error burst on patient-api" in r.stdout
    assert "patient-api recovered" in r.stdout and "traffic: done" in r.stdout
    # every service sent every signal, all accepted: the synthetic marker passes the guard
    for svc in ("patient-api", "billing", "scheduling"):
        for sig in ("metrics", "events", "logs", "traces", "profiles"):
            wait_until(lambda: _metric(ports, "meltp_service_items_total", service=svc,
                                       environment="demo", signal=sig) > 0, 10,
                       what="%s %s" % (svc, sig))
    assert _metric(ports, "meltp_receiver_refused_requests_total") == 0
    assert _metric(ports, "meltp_pipeline_processor_dropped_items_total") == 0
    assert _metric(ports, "meltp_guard_findings_total") == 0  # nothing looked like real PII
    # the burst: patient-api spans failed, the others did not
    wait_until(lambda: os.path.getsize(os.path.join(d, "traces.jsonl")) > 0, 10, what="traces")
    failed = {}
    for req in _lines(os.path.join(d, "traces.jsonl")):
        for rs in req["resourceSpans"]:
            a = {kv["key"]: kv["value"].get("stringValue") for kv in rs["resource"]["attributes"]}
            assert a["synthetic"] == "true" and a["deployment.environment.name"] == "demo"
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    if sp.get("status", {}).get("code") == 2:
                        failed[a["service.name"]] = failed.get(a["service.name"], 0) + 1
    assert failed.get("patient-api", 0) >= 10, failed
    assert failed.get("billing", 0) + failed.get("scheduling", 0) <= 3, failed


def test_demo_guard_drops_unmarked_data():
    d = tempfile.mkdtemp(prefix="meltp-demo-")
    _, env, ports = _start_meltp(d)
    body = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "patient-api"}}]},
        "scopeLogs": [{"logRecords": [{"body": {"stringValue": "not synthetic"}}]}]}]}
    st, _, _ = http_request("http://127.0.0.1:%d/v1/logs" % ports["OTLP"],
                            json.dumps(body).encode(), "application/json")
    assert st == 200
    wait_until(lambda: _metric(ports, "meltp_pipeline_processor_dropped_items_total") >= 1, 10,
               what="the guard to drop it")


def test_traffic_generator_usage_errors():
    for bad in (["--chaos", "nosuch:1:1"], ["--chaos", "billing:1:1:2"], ["--rate", "0"]):
        r = subprocess.run([PY, TRAFFIC] + bad, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, bad


def test_webhook_receiver_prints_meltps_slack_alert():
    d = tempfile.mkdtemp(prefix="meltp-demo-")
    env, ports = _env(d)
    out = open(os.path.join(d, "hooks.out"), "w+")
    p = subprocess.Popen([PY, HOOKS, "--listen", env["MELTP_DEMO_HOOKS"], "--save",
                          os.path.join(d, "alerts")], stdout=out, stderr=subprocess.STDOUT)
    _procs.append(p)
    wait_until(lambda: "listening" in open(out.name).read(), 10, what="the receiver")
    r = subprocess.run([MELTP, "slo", "test-notify", "--config",
                        os.path.join(ROOT, "configs", "demo.yaml")],
                       capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_until(lambda: "alertmanager webhook" in open(out.name).read()
               and "Teams card" in open(out.name).read()
               and "as Slack shows it" in open(out.name).read(), 10, what="three notices")
    p.send_signal(signal.SIGINT)
    assert p.wait(10) == 0
    text = open(out.name).read()
    assert "notifications received" in text
    saved = sorted(os.listdir(os.path.join(d, "alerts")))
    assert len(saved) == 3 and any(s.endswith("-slack.json") for s in saved)


@pytest.mark.slow
def test_make_demo_pages_and_stops_cleanly():
    """demo/run.sh on a compressed schedule: chaos at 30 s, the page alert printed as Slack
    shows it well within five minutes, then Ctrl-C (SIGINT to the group) stops everything."""
    d = tempfile.mkdtemp(prefix="meltp-demo-")
    env, ports = _env(d)
    env.update(DEMO_RATE="60", DEMO_DURATION="0", DEMO_CHAOS="patient-api:30s:5m:0.5",
               MELTP_BUILD=BUILD, MELTP_PYTHON=PY, MELTP_DEMO_DIR=os.path.join(d, "demo"))
    out = open(os.path.join(d, "demo.out"), "w+")
    p = subprocess.Popen(["bash", os.path.join(ROOT, "demo", "run.sh")], cwd=ROOT, env=env,
                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _procs.append(p)
    t0 = time.time()
    try:
        wait_until(lambda: "PAGE as Slack shows it" in open(out.name).read(), 290, step=1,
                   what="the page alert (output: %s)" % out.name)
        assert time.time() - t0 < 300
        text = open(out.name).read()
        assert "CHAOS" in text and "http://%s/slo" % env["MELTP_DEMO_METRICS"] in text
        st, _, page = http_request("http://%s/slo" % env["MELTP_DEMO_METRICS"], method="GET")
        assert st == 200 and b"firing" in page
    finally:
        os.killpg(p.pid, signal.SIGINT)
    assert p.wait(60) == 0
    text = open(out.name).read()
    assert "demo: stopping" in text and "files written" in text and "traces.jsonl" in text
    assert "ledger:" not in text or "dropped=0" in text
