"""`make install` / `make uninstall` into a DESTDIR (the layout, the systemd unit and
`systemd-analyze verify` on it when systemd-analyze is present) and `meltp help COMMAND`
against the command table of docs/OPERATIONS.md."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness import MELTP, ROOT, BUILD


def _make(*args):
    r = subprocess.run(["make", "-s", "BUILD=" + BUILD] + list(args), cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _unit(text):
    keys = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            keys.setdefault(k.strip(), []).append(v.strip())
    return keys


def test_install_uninstall_destdir():
    dest = tempfile.mkdtemp(prefix="meltp-destdir-")
    try:
        _make("install", "DESTDIR=" + dest, "PREFIX=/opt/meltp")
        root = os.path.join(dest, "opt/meltp")
        binary = os.path.join(root, "bin/meltp")
        assert os.access(binary, os.X_OK)
        out = subprocess.run([binary, "version"], capture_output=True, text=True).stdout
        assert out.startswith("meltp ")
        share = os.path.join(root, "share/meltp")
        for rel in ["configs/local.yaml", "configs/gateway.yaml", "rules/slos/patient-api.yaml",
                    "dashboards/slo-billing.json", "configs/kubernetes/base/kustomization.yaml",
                    "dashboards/meltp-overview.json", "dashboards/meltp-coverage.json",
                    "configs/prometheus/meltp-alerts.yml", "configs/demo.yaml"]:
            assert os.path.exists(os.path.join(share, rel)), rel
        # the demo config finds the SLO specs beside it, as in the source tree
        r = subprocess.run([binary, "check-config", "--config",
                            os.path.join(share, "configs", "demo.yaml")], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        cfg = os.path.join(root, "etc/meltp/meltp.yaml")
        r = subprocess.run([binary, "check-config", "--config", cfg], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        unit_path = os.path.join(root, "lib/systemd/system/meltp.service")
        text = open(unit_path).read()
        assert not re.search(r"@[A-Z]+@", text)
        # the documentation the unit names is installed
        for doc in _unit(text)["Documentation"]:
            assert doc.startswith("file:/opt/meltp/share/meltp/docs/")
            assert os.path.exists(dest + doc[len("file:"):]), doc
        u = _unit(text)
        assert u["ExecStart"] == ["/opt/meltp/bin/meltp run --config /opt/meltp/etc/meltp/meltp.yaml"]
        assert u["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
        for k, v in [("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                     ("StateDirectory", "meltp"), ("NoNewPrivileges", "yes"),
                     ("CapabilityBoundingSet", ""), ("WorkingDirectory", "/var/lib/meltp")]:
            assert u.get(k) == [v], (k, u.get(k))

        if shutil.which("systemd-analyze"):
            # verify checks that ExecStart exists: point it at the DESTDIR binary
            vdir = tempfile.mkdtemp(prefix="meltp-unit-")
            good = os.path.join(vdir, "meltp.service")
            with open(good, "w") as f:
                f.write(text.replace("/opt/meltp/bin/meltp", binary))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", good],
                               capture_output=True, text=True)
            assert r.returncode == 0 and not r.stderr.strip(), r.stderr
            # and the check can fail: a broken copy is refused
            bad = os.path.join(vdir, "bad", "meltp.service")
            os.makedirs(os.path.dirname(bad))
            with open(bad, "w") as f:
                f.write(text.replace("/opt/meltp/bin/meltp", os.path.join(vdir, "missing")))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", bad],
                               capture_output=True, text=True)
            assert r.returncode != 0
            shutil.rmtree(vdir)
        else:
            print("systemd-analyze not found: unit checked by parsing only")

        # a second install keeps an edited config; uninstall keeps it too and removes the rest
        with open(cfg, "a") as f:
            f.write("# edited\n")
        _make("install", "DESTDIR=" + dest, "PREFIX=/opt/meltp")
        assert open(cfg).read().endswith("# edited\n")
        r = _make("uninstall", "DESTDIR=" + dest, "PREFIX=/opt/meltp")
        assert "kept" in r.stdout
        left = [os.path.relpath(os.path.join(d, f), root)
                for d, _, fs in os.walk(root) for f in fs]
        assert left == ["etc/meltp/meltp.yaml"]
        os.remove(cfg)
        _make("install", "DESTDIR=" + dest, "PREFIX=/opt/meltp")
        _make("uninstall", "DESTDIR=" + dest, "PREFIX=/opt/meltp")
        assert [f for _, _, fs in os.walk(root) for f in fs] == []
    finally:
        shutil.rmtree(dest)


def _commands_table():
    text = open(os.path.join(ROOT, "docs/OPERATIONS.md")).read()
    sect = text.split("### Command line", 1)[1].split("\n\n", 2)[1]
    rows = []
    for line in sect.splitlines():
        m = re.match(r"\| `meltp ([a-z-]+)([^`]*)`", line)
        if m:
            rows.append((m.group(1), m.group(2), line))
    return rows


def test_help_per_command_matches_docs():
    rows = _commands_table()
    assert len(rows) >= 7
    seen = set()
    for cmd, rest, line in rows:
        r = subprocess.run([MELTP, "help", cmd], capture_output=True, text=True)
        assert r.returncode == 0, (cmd, r.stderr)
        assert "usage: meltp " + cmd in r.stdout, (cmd, r.stdout)
        # every flag the docs list for the command is in its help
        for flag in re.findall(r"--[a-z-]+", rest):
            assert flag in r.stdout, (cmd, flag)
        if cmd == "slo":
            sub = rest.split()[0]
            assert "meltp slo " + sub in r.stdout
        seen.add(cmd)
    assert {"run", "check-config", "help-config", "validate", "slo", "version"} <= seen
    r = subprocess.run([MELTP, "help", "no-such-command"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = subprocess.run([MELTP, "help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in seen:
        assert "meltp " + cmd in r.stdout
