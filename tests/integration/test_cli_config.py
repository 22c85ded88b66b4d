"""The command line and configuration loading: check-config reports every error as
FILE:LINE: path: reason, an OpenTelemetry Collector config using meltp's components loads
unchanged, env substitution, unknown flags, SIGHUP reload and SIGTERM drain."""
import os
import signal
import subprocess
import tempfile
import time

from harness import MELTP, Meltp, make_traces, wait_until, free_port

PB = "application/x-protobuf"


def run(*args, env=None):
    p = subprocess.run([MELTP] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=20)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def write(text):
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


OTEL_CONFIG = """\
extensions:
  health_check:
    endpoint: 127.0.0.1:13133

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318

processors:
  batch:
    send_batch_size: 1024
    timeout: 5s
  memory_limiter:
    check_interval: 1s
    limit_mib: 400
    spike_limit_mib: 100
  resource:
    attributes:
      - key: deployment.environment
        value: lab-dev
        action: upsert
  attributes:
    actions:
      - key: patient.ssn
        action: delete
      - key: user.email
        action: hash

exporters:
  otlphttp/tempo:
    endpoint: http://tempo.example:4318
    compression: gzip
    headers:
      X-Scope-OrgID: lab-dev
    timeout: 10s
    retry_on_failure:
      enabled: true
      initial_interval: 5s
      max_interval: 30s
      max_elapsed_time: 300s
    sending_queue:
      enabled: true
      num_consumers: 10
      queue_size: 5000
  file:
    path: /tmp/meltp-otel.json
    rotation:
      max_megabytes: 10
      max_backups: 3
  debug:
    verbosity: detailed

service:
  extensions: [health_check]
  telemetry:
    logs:
      level: info
    metrics:
      address: 127.0.0.1:8888
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, resource, attributes, batch]
      exporters: [otlphttp/tempo, debug]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp/tempo, file]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [file]
"""


def test_otel_collector_config_loads_unchanged():
    path = write(OTEL_CONFIG)
    rc, out, err = run("check-config", "--config", path)
    assert rc == 0, err
    assert "valid" in out


def test_check_config_reports_every_error_with_file_and_line():
    bad = OTEL_CONFIG.replace("timeout: 10s", "timeout: 10 parsecs").replace(
        "verbosity: detailed", "verbosity: detailed\n    colour: blue").replace(
        "exporters: [file]", "exporters: [file, nosuch]").replace(
        "  file:\n    path", "  kinesis:\n    stream: [x]\n  file:\n    path")
    path = write(bad)
    rc, out, err = run("check-config", "--config", path)
    assert rc == 1, (rc, out, err)
    lines = err.strip().splitlines()
    lineno = lambda s: next(i + 1 for i, l in enumerate(bad.splitlines()) if s in l)
    expect = [
        "%s:%d: exporters.otlphttp/tempo.timeout:" % (path, lineno("10 parsecs")),
        "%s:%d: exporters.debug.colour: unknown key" % (path, lineno("colour: blue")),
        "%s:%d: exporters.kinesis: unknown exporter type \"kinesis\"" % (path, lineno("kinesis:")),
        "service.pipelines.logs.exporters: \"nosuch\" is not defined",
    ]
    for e in expect:
        assert any(e in l for l in lines), "missing %r in:\n%s" % (e, err)
    assert all(l.startswith(path + ":") for l in lines), err


def test_yaml_syntax_error_has_line():
    path = write("receivers:\n  otlp:\n   protocols: [\n")
    rc, _, err = run("check-config", "--config", path)
    assert rc == 1 and err.startswith(path + ":"), err


def test_env_substitution():
    path = write("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: ${env:MELTP_TEST_EP:-127.0.0.1:4318}
exporters:
  otlphttp:
    endpoint: ${env:MELTP_TEST_BACKEND}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [otlphttp]}
""")
    env = dict(os.environ, MELTP_TEST_BACKEND="http://127.0.0.1:1")
    rc, _, err = run("check-config", "--config", path, env=env)
    assert rc == 0, err
    env = dict(os.environ, MELTP_TEST_BACKEND="not-a-url")
    rc, _, err = run("check-config", "--config", path, env=env)
    assert rc == 1 and "not-a-url" in err and "exporters.otlphttp" in err, err


def test_cli_usage_and_exit_codes():
    rc, out, _ = run("version")
    assert rc == 0 and out.startswith("meltp "), out
    rc, out, _ = run("--help")
    assert rc == 0 and "check-config" in out
    rc, out, _ = run("help")
    assert rc == 0 and "run --config" in out
    rc, _, err = run("run", "--config", "x.yaml", "--bogus")
    assert rc == 2 and "unknown flag" in err and "usage" in err, err
    rc, _, err = run("frobnicate")
    assert rc == 2 and "usage" in err
    rc, _, err = run("check-config")
    assert rc == 2 and "--config" in err
    rc, _, err = run("check-config", "--config", "/nonexistent.yaml")
    assert rc == 1 and "/nonexistent.yaml" in err, err
    rc, out, _ = run("help-config")
    assert rc == 0 and "sending_queue.on_full" in out and "max_request_body_size" in out


CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 3s
exporters:
  file:
    path: {dir}/%s
service:
  shutdown_timeout: 5s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [file]}}
"""


def _spans(m, name):
    return [s for l in m.file_lines(name) for rs in l["resourceSpans"] for ss in rs["scopeSpans"]
            for s in ss["spans"]]


def test_sigterm_drains_batches_then_exits_zero():
    m = Meltp(CFG % "a.jsonl")
    st, _, _ = m.post("/v1/traces", make_traces([b"\x11" * 8, b"\x12" * 8]), PB)
    assert st == 200
    assert _spans(m, "a.jsonl") == []  # still waiting in the 3 s batch
    t0 = time.time()
    assert m.stop() == 0
    assert time.time() - t0 < 3, "drain must not wait for the batch timeout"
    assert len(_spans(m, "a.jsonl")) == 2


def test_sighup_reload_valid_and_invalid():
    m = Meltp(CFG % "a.jsonl")
    # invalid new config: keep running the old one
    good = open(m.config_path).read()
    with open(m.config_path, "w") as f:
        f.write(good.replace("exporters: [file]", "exporters: [nosuch]"))
    m.signal(signal.SIGHUP)
    wait_until(lambda: "keeping the old one" in m.logtext(), 5, what="reload refusal")
    st, _, _ = m.post("/v1/traces", make_traces([b"\x21" * 8]), PB)
    assert st == 200
    # valid new config: writes to b.jsonl from now on
    with open(m.config_path, "w") as f:
        f.write(good.replace("a.jsonl", "b.jsonl"))
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload: done" in m.logtext(), 10, what="reload")
    wait_until(lambda: m._up(), 5, what="receiver back")
    st, _, _ = m.post("/v1/traces", make_traces([b"\x22" * 8]), PB)
    assert st == 200
    assert m.stop() == 0
    assert [s["spanId"] for s in _spans(m, "a.jsonl")] == ["2121212121212121"]
    assert [s["spanId"] for s in _spans(m, "b.jsonl")] == ["2222222222222222"]


def test_port_in_use_is_a_clear_start_error():
    port = free_port()
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    path = write("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  debug: {}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
""" % port)
    rc, _, err = run("run", "--config", path)
    s.close()
    assert rc == 1 and "cannot listen" in err, (rc, err)


def test_shipped_configs_are_valid():
    import glob
    from harness import ROOT
    # collector configs; policy-*.yaml are validation-mode policies (checked by their own tests)
    paths = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.yaml"))
                   if not os.path.basename(p).startswith("policy-"))
    assert len(paths) >= 2
    for p in paths:
        rc, _, err = run("check-config", "--config", p)
        assert rc == 0, "%s: %s" % (p, err)


def test_sighup_reload_that_cannot_start_falls_back():
    m = Meltp(CFG % "a.jsonl")
    good = open(m.config_path).read()
    with open(m.config_path, "w") as f:
        f.write(good.replace("{dir}/a.jsonl".format(dir=m.dir), "/proc/meltp-cannot/b.jsonl"))
    m.signal(signal.SIGHUP)
    wait_until(lambda: "going back to the previous configuration" in m.logtext(), 10,
               what="fallback after a failed start")
    wait_until(lambda: m._up(), 5, what="receiver back")
    st, _, _ = m.post("/v1/traces", make_traces([b"\x31" * 8]), PB)
    assert st == 200
    assert m.stop() == 0
    assert [s["spanId"] for s in _spans(m, "a.jsonl")] == ["3131313131313131"]


def test_port_in_use_is_a_clear_start_error_for_every_http_receiver():
    # prw and pyroscope start their server through the same recv_http_start as otlp
    import socket
    for recv, sig in (("prometheusremotewrite", "metrics"), ("pyroscope", "profiles")):
        port = free_port()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        path = write("""
receivers:
  %s:
    endpoint: 127.0.0.1:%d
exporters:
  debug: {}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    %s: {receivers: [%s], exporters: [debug]}
""" % (recv, port, sig, recv))
        rc, _, err = run("run", "--config", path)
        s.close()
        assert rc == 1 and "cannot listen" in err, (recv, rc, err)


def test_exporter_endpoints_must_be_http_urls():
    path = write("""
receivers:
  otlp:
    protocols: {http: {endpoint: 127.0.0.1:0}}
exporters:
  loki: {endpoint: "ftp://l"}
  pyroscope: {endpoint: "ftp://p"}
  otlphttp: {endpoint: "ftp://o", logs_endpoint: "ftp://ol"}
  prometheusremotewrite: {endpoint: "ftp://r"}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    logs: {receivers: [otlp], exporters: [loki, otlphttp]}
    metrics: {receivers: [otlp], exporters: [prometheusremotewrite]}
    profiles: {receivers: [otlp], exporters: [pyroscope]}
""")
    rc, _, err = run("check-config", "--config", path)
    assert rc != 0, err
    for key, url in (("loki.endpoint", "ftp://l"), ("pyroscope.endpoint", "ftp://p"),
                     ("otlphttp.endpoint", "ftp://o"), ("otlphttp.logs_endpoint", "ftp://ol"),
                     ("prometheusremotewrite.endpoint", "ftp://r")):
        assert 'exporters.%s: "%s" is not an http:// or https:// URL' % (key, url) in err, err
