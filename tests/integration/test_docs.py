"""The documentation against the code: docs/CONFIGURATION.md is what
`meltp help-config --format markdown` prints (regenerate with `make docs`), the text and
Markdown forms list the same settings, every file (and heading) a README or docs/ page names
exists, and the README's first configuration runs as written."""
import json
import os
import re
import subprocess

import fakeloki
import harness

DOCS = os.path.join(harness.ROOT, "docs")


def _help_config(*args):
    p = subprocess.run([harness.MELTP, "help-config", *args], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_docs_configuration_md_is_generated():
    rc, out, err = _help_config("--format", "markdown")
    assert rc == 0, err
    with open(os.path.join(DOCS, "CONFIGURATION.md"), encoding="utf-8") as f:
        committed = f.read()
    if committed != out:
        a, b = committed.splitlines(), out.splitlines()
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        raise AssertionError(
            "docs/CONFIGURATION.md differs from `meltp help-config --format markdown` at line %d"
            " (run `make docs`):\n  committed: %r\n  generated: %r"
            % (i + 1, a[i] if i < len(a) else "<end>", b[i] if i < len(b) else "<end>"))


def test_docs_help_config_formats_agree():
    """Every key the text form prints is a row of the Markdown form, and the other way round."""
    rc, text, err = _help_config()
    assert rc == 0, err
    rc2, md, err2 = _help_config("--format=markdown")
    assert rc2 == 0, err2
    rc3, text2, _ = _help_config("--format", "text")
    assert rc3 == 0 and text2 == text
    text_keys = re.findall(r"^  (\S+) \(", text, re.M)
    md_keys = re.findall(r"^\| `([^`]+)` \|", md, re.M)
    assert text_keys and text_keys == md_keys, (len(text_keys), len(md_keys))
    text_types = re.findall(r"^(\w+) - ", text, re.M)
    md_types = re.findall(r"^### `(\w+)` (?:receiver|processor|exporter|extension)$", md, re.M)
    assert text_types and text_types == md_types, (text_types, md_types)
    # a '|' inside a description or default is escaped, so every row keeps its four cells
    for row in re.findall(r"^\|.*\|$", md, re.M):
        cells = re.split(r"(?<!\\)\|", row)[1:-1]
        assert len(cells) == 4, row
    assert "insert\\|update" in md
    rc, _, err = _help_config("--format", "yaml")
    assert rc == 2 and "unknown format yaml" in err and "usage" in err, err
    rc, _, err = _help_config("--bogus")
    assert rc == 2 and "unknown flag --bogus" in err, err


def _pages():
    pages = [os.path.join(harness.ROOT, "README.md")]
    pages += sorted(os.path.join(DOCS, n) for n in os.listdir(DOCS) if n.endswith(".md"))
    return pages


# Backquoted repository paths like `collector/core/queue.c` or `tests/integration/`; patterns
# (`rules/slos/*.yaml`, `tests/unit/<role>/`, `recv.[ch]`) and runtime paths are not checked.
_TOP = ("collector/", "exporters/", "slo/", "rules/", "tests/", "configs/", "docs/", "proto/",
        "dashboards/")
_PATH = re.compile(r"`((?:%s)[^`\s]*)`" % "|".join(re.escape(t) for t in _TOP))
_LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]*))?\)")


def _anchors(path):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats -1, -2."""
    seen, out = {}, set()
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"^```.*?^```", "", f.read(), flags=re.M | re.S)
    for h in re.findall(r"^#+ (.*)$", text, re.M):
        a = re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else "%s-%d" % (a, n))
    return out


def test_docs_named_files_exist():
    missing = []
    for page in _pages():
        with open(page, encoding="utf-8") as f:
            text = f.read()
        base = os.path.dirname(page)
        rel = os.path.relpath(page, harness.ROOT)
        for target, anchor in _LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, mailto:
            path = os.path.normpath(os.path.join(base, target)) if target else page
            if not os.path.exists(path):
                missing.append("%s: link %s" % (rel, target))
            elif anchor and path.endswith(".md") and anchor not in _anchors(path):
                missing.append("%s: link %s#%s (no such heading)" % (rel, target, anchor))
        for path in _PATH.findall(text):
            if any(c in path for c in "*<>{}[]$"):
                continue
            if not os.path.exists(os.path.join(harness.ROOT, path)):
                missing.append("%s: path %s" % (os.path.relpath(page, harness.ROOT), path))
    assert not missing, "named in the docs but not in the tree:\n  " + "\n  ".join(missing)


def test_docs_readme_first_config_runs():
    """The README's first configuration, with its addresses moved to free loopback ports: a
    log sent to it reaches Loki and the file, a span the file."""
    with open(os.path.join(harness.ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    m = re.search(r"^```yaml\n(.*?)^```", readme, re.M | re.S)
    assert m, "README.md has no yaml block"
    cfg = m.group(1)
    for s in ("127.0.0.1:4318", "http://127.0.0.1:3100/loki/api/v1/push", "./data/otlp.jsonl"):
        assert s in cfg, s
    loki = fakeloki.FakeLoki(auth_enabled=False)
    cfg = cfg.replace("{", "{{").replace("}", "}}")
    cfg = cfg.replace("127.0.0.1:4318", "127.0.0.1:{otlp}")
    cfg = cfg.replace("http://127.0.0.1:3100/loki/api/v1/push", loki.url)
    cfg = cfg.replace("./data/otlp.jsonl", "{dir}/otlp.jsonl")
    # meltp's own metrics default to 127.0.0.1:8888: keep parallel tests apart
    cfg = cfg.replace("service:\n", "service:\n  telemetry: {{metrics: {{address: "
                      "127.0.0.1:{metrics}}}}}\n", 1)
    m = harness.Meltp(cfg)
    log = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "demo"}}]},
        "scopeLogs": [{"logRecords": [{"severityNumber": 9,
                                       "body": {"stringValue": "hello"}}]}]}]}
    status, _, body = m.post("/v1/logs", json.dumps(log).encode(), ctype="application/json")
    assert status == 200, body
    span = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "demo"}}]},
        "scopeSpans": [{"spans": [{"traceId": "01" * 16, "spanId": "02" * 8, "name": "op",
                                   "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}
    status, _, body = m.post("/v1/traces", json.dumps(span).encode(), ctype="application/json")
    assert status == 200, body
    harness.wait_until(lambda: loki.count() == 1, what="the log in Loki")
    assert [e[3] for e in loki.entries()] == ["hello"]
    assert loki.entries()[0][1].get("service_name") == "demo"
    lines = harness.wait_until(lambda: len(m.file_lines("otlp.jsonl")) == 2 and
                               m.file_lines("otlp.jsonl"), what="the log and the span in the file")
    assert sorted(k for line in lines for k in line) == ["resourceLogs", "resourceSpans"]
