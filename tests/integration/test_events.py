"""Events: a log record with an event name (the event_name field or an event.name attribute) is
counted per service in meltp_events_total, whatever the pipeline exports to."""
import json

from harness import Meltp

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  debug: {{}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs: {{receivers: [otlp], exporters: [debug]}}
"""


def logs(service, records):
    return {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"logRecords": records}]}]}


def test_events_counted_per_service_in_json_and_protobuf():
    m = Meltp(CFG)
    body = logs("checkout", [
        {"body": {"stringValue": "plain log"}},
        {"eventName": "deployment.finished", "body": {"stringValue": "v2 rolled out"}},
        {"attributes": [{"key": "event.name", "value": {"stringValue": "chaos.experiment"}}]},
        {"attributes": [{"key": "other", "value": {"stringValue": "x"}}]},
    ])
    st, _, _ = m.post("/v1/logs", json.dumps(body).encode(), "application/json")
    assert st == 200
    st, _, _ = m.post("/v1/logs", json.dumps(logs("billing", [{"eventName": "e"}])).encode(),
                      "application/json")
    assert st == 200
    assert m.metric("meltp_events_total", service="checkout") == 2
    assert m.metric("meltp_events_total", service="billing") == 1
    # the real SDK fixture: events counted per service as an independent reading of its JSON says
    from harness import fixture
    raw = fixture("otlp-js/logs-n100/logs-json-1.bin")
    want = {}
    for rl in json.loads(raw)["resourceLogs"]:
        svc = [a["value"]["stringValue"] for a in rl["resource"]["attributes"]
               if a["key"] == "service.name"][0]
        for sl in rl["scopeLogs"]:
            for r in sl["logRecords"]:
                ev = r.get("eventName") or any(a["key"] == "event.name"
                                               for a in r.get("attributes", []))
                want[svc] = want.get(svc, 0) + (1 if ev else 0)
    assert sum(want.values()) > 0
    st, _, _ = m.post("/v1/logs", raw, "application/json")
    assert st == 200
    for svc, n in want.items():
        if n:
            assert m.metric("meltp_events_total", service=svc) == n, (svc, n)


def test_events_counted_from_protobuf_on_the_fast_path():
    from harness import pb_len, pb_kv_str
    m = Meltp(CFG)
    rec_ev = pb_len(5, pb_len(1, b"hello")) + pb_len(12, b"deploy.done")
    rec_attr = pb_len(6, pb_kv_str("event.name", "chaos.start"))
    rec_plain = pb_len(5, pb_len(1, b"plain"))
    scope = pb_len(2, rec_ev) + pb_len(2, rec_attr) + pb_len(2, rec_plain)
    res = lambda svc: pb_len(1, pb_len(1, pb_kv_str("service.name", svc)))
    body = pb_len(1, res("svc-a") + pb_len(2, scope)) + pb_len(1, res("svc-b") + pb_len(2, pb_len(2, rec_ev)))
    st, _, resp = m.post("/v1/logs", body, "application/x-protobuf")
    assert st == 200, resp
    assert m.metric("meltp_events_total", service="svc-a") == 2
    assert m.metric("meltp_events_total", service="svc-b") == 1
