"""The documentation against the code: docs/CONFIGURATION.md is what
`meltp help-config --format markdown` prints (regenerate with `make docs`), the text and
Markdown forms list the same settings."""
import os
import re
import subprocess

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
    md_types = re.findall(r"^### `(\w+)`$", md, re.M)
    assert text_types and text_types == md_types, (text_types, md_types)
    rc, _, err = _help_config("--format", "yaml")
    assert rc == 2 and "unknown format yaml" in err and "usage" in err, err
    rc, _, err = _help_config("--bogus")
    assert rc == 2 and "unknown flag --bogus" in err, err
