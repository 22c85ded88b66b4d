"""One instance per port: a second meltp with the same config must not join the first one's
SO_REUSEPORT group and take half of its traffic; it exits with "address in use"."""
import subprocess

from harness import MELTP, Meltp, fixture, wait_until

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file:
    path: {dir}/out.jsonl
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
"""


def test_second_instance_with_the_same_config_refuses_to_start():
    first = Meltp(CFG)
    second = subprocess.Popen([MELTP, "run", "--config", first.config_path],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: second.poll() is not None, 10, what="the second meltp to exit")
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    out = second.stdout.read().decode("utf-8", "replace")
    assert second.returncode != 0, out
    assert "address in use" in out, out
    assert any("127.0.0.1:%d" % p in out for p in (first.otlp, first.health, first.metrics)), out
    # the first one keeps serving every request (none lands on a half-started second)
    body = fixture("otlp-js/traces-n1/traces-proto-1.bin")
    for _ in range(40):
        st, _, resp = first.post("/v1/traces", body)
        assert st == 200, resp
    assert first.metric("meltp_receiver_accepted_items_total") == 40
