"""meltp_service_items_total{service,environment,signal} on /metrics: what meltp accepted per
service and environment (after the processors: the resource processor's environment counts),
bounded by service.telemetry.metrics.max_services with the rest in
meltp_service_items_overflow_total."""
import json
import subprocess

from harness import Meltp, MELTP, wait_until

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  resource:
    attributes:
      - {{key: deployment.environment.name, value: lab, action: insert}}
exporters:
  file:
    path: {dir}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
      max_services: 2
  pipelines:
    traces: {{receivers: [otlp], processors: [resource], exporters: [file]}}
    logs: {{receivers: [otlp], processors: [resource], exporters: [file]}}
"""


def _res(svc, env=None):
    attrs = [{"key": "service.name", "value": {"stringValue": svc}}]
    if env:
        attrs.append({"key": "deployment.environment.name", "value": {"stringValue": env}})
    return {"attributes": attrs}


def test_service_items_counted_and_bounded():
    m = Meltp(CONFIG)
    body = {"resourceSpans": [
        {"resource": _res("patient-api", "demo"),
         "scopeSpans": [{"spans": [{"name": "a"}, {"name": "b"}]}]},
        {"resource": _res("billing"), "scopeSpans": [{"spans": [{"name": "c"}]}]},
        {"resource": _res("scheduling"), "scopeSpans": [{"spans": [{"name": "d"}]}]},
    ]}
    st, _, _ = m.post("/v1/traces", json.dumps(body).encode(), "application/json")
    assert st == 200
    logs = {"resourceLogs": [{"resource": _res("patient-api", "demo"), "scopeLogs": [
        {"logRecords": [{"body": {"stringValue": "x"}}, {"eventName": "checkin"}]}]}]}
    st, _, _ = m.post("/v1/logs", json.dumps(logs).encode(), "application/json")
    assert st == 200
    wait_until(lambda: m.metric("meltp_service_items_total", service="patient-api",
                                signal="events") == 1, what="events counted")
    assert m.metric("meltp_service_items_total", service="patient-api", environment="demo",
                    signal="traces") == 2
    assert m.metric("meltp_service_items_total", service="patient-api", signal="logs") == 1
    # the resource processor inserted the environment before counting
    assert m.metric("meltp_service_items_total", service="billing", environment="lab",
                    signal="traces") == 1
    # max_services: 2 - the third service is overflow
    assert m.metric("meltp_service_items_total", service="scheduling") == 0
    assert m.metric("meltp_service_items_overflow_total", signal="traces") == 1
    # refused requests are not counted
    st, _, _ = m.post("/v1/traces", b"{not json", "application/json")
    assert st == 400
    assert m.metric("meltp_service_items_total", signal="traces") == 3


def test_max_services_is_checked(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(CONFIG.replace("max_services: 2", "max_services: -1").format(
        otlp=1, metrics=2, dir=str(tmp_path)))
    r = subprocess.run([MELTP, "check-config", "--config", str(p)], capture_output=True,
                       text=True)
    assert r.returncode == 1
    assert "service.telemetry.metrics.max_services: must be between 0 and" in r.stderr
