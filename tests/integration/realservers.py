"""The real-server tier: Loki, Tempo and Pyroscope built from their public sources (see
../shared/servers/README.md). A test that checks meltp against a real server calls
`real_server("pyroscope")`; when no binary is found it raises Skip, which the runner reports
as a skip with the reason, never as a pass.

Where binaries are looked up, in order:
  1. MELTP_REAL_SERVERS=DIR (a folder holding loki, tempo, pyroscope),
  2. PATH.
`.ci/run` unpacks ../shared/servers into build/servers and sets MELTP_REAL_SERVERS."""
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import harness

CONFIGS = os.environ.get("MELTP_REAL_SERVER_CONFIGS",
                         os.path.join(harness.ROOT, "tests", "fixtures", "servers"))


try:  # under pytest a Skip is pytest's own skip outcome
    import pytest
    Skip = pytest.skip.Exception
except ImportError:  # pragma: no cover
    class Skip(Exception):
        """Raised by a test that cannot run here; reported as a skip with the reason."""


def find(name):
    d = os.environ.get("MELTP_REAL_SERVERS")
    if d:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class RealServer:
    """One real server on free loopback ports with its own data directory. Attributes by kind:
    loki: .http (push and query); tempo: .http (query API), .otlp_http, .otlp_grpc;
    pyroscope: .http (/ingest, /render)."""

    READY = {"loki": "/ready", "tempo": "/ready", "pyroscope": "/healthz"}
    CONF = {"loki": "loki.yaml.in", "tempo": "tempo.yaml.in", "pyroscope": "pyroscope.yml.in"}

    def __init__(self, kind, timeout=90):
        binary = find(kind)
        if not binary:
            raise Skip("real %s not found (set MELTP_REAL_SERVERS=DIR or put it on PATH)" % kind)
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="meltp-real-%s-" % kind)
        ports = {k: harness.free_port() for k in ("LP", "LG", "TP", "TG", "TO", "TOG", "TM", "PY")}
        with open(os.path.join(CONFIGS, self.CONF[kind])) as f:
            text = f.read()
        text = text.replace("@DIR@", self.dir)
        for k in sorted(ports, key=len, reverse=True):  # @TOG@ before @TO@
            text = text.replace("@%s@" % k, str(ports[k]))
        conf = os.path.join(self.dir, self.CONF[kind][:-3])
        with open(conf, "w") as f:
            f.write(text)
        if kind == "loki":
            self.http = ports["LP"]
            argv = [binary, "-config.file=" + conf]
        elif kind == "tempo":
            self.http, self.otlp_http, self.otlp_grpc = ports["TP"], ports["TO"], ports["TOG"]
            argv = [binary, "-config.file=" + conf]
        else:
            self.http = ports["PY"]
            argv = [binary, "server", "-config", conf]
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        harness._procs.append(self.proc)
        ready = "http://127.0.0.1:%d%s" % (self.http, self.READY[kind])
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited: %s" % (kind, self.logtext()[-2000:]))
            if _get(ready) == 200:
                break
            time.sleep(0.25)
        else:
            raise AssertionError("%s not ready in %ds: %s" % (kind, timeout, self.logtext()[-2000:]))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http, path)

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")
