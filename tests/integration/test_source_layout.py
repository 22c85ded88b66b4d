"""Source layout rules that keep the split modules split: the files of slo/spec,
processors/schema, core/config, formats/prw_decode, slo/engine, formats/promconv and
validate/validate_mode (and every other C file) stay under ~1,500 lines, and a private `<module>_int.h` is included only
by that module's own parts (docs/ARCHITECTURE.md)."""
import glob
import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC_DIRS = ["collector/core", "collector/formats", "collector/processors", "collector/receivers",
            "collector/validate", "exporters", "slo", "rules"]
MAX_LINES = 1500

# modules split along their seams; each part must stay under the limit
SPLIT_MODULES = ["slo/spec", "collector/processors/schema", "collector/core/config",
                 "collector/formats/prw_decode", "slo/engine", "collector/formats/promconv",
                 "collector/validate/validate_mode", "exporters/loki", "rules/rules_gen",
                 "exporters/prw", "collector/formats/pprof_conv"]


def sources():
    for d in SRC_DIRS:
        for p in sorted(glob.glob(os.path.join(ROOT, d, "*.[ch]"))):
            yield p


def test_split_modules_stay_under_the_line_limit():
    too_long = []
    for mod in SPLIT_MODULES:
        parts = glob.glob(os.path.join(ROOT, mod + ".[ch]")) + \
            glob.glob(os.path.join(ROOT, mod + "_*.[ch]"))
        assert parts, mod
        for p in parts:
            with open(p) as f:
                n = sum(1 for _ in f)
            if n > MAX_LINES:
                too_long.append("%s: %d lines" % (os.path.relpath(p, ROOT), n))
    assert not too_long, too_long


def test_private_headers_are_included_only_by_their_module():
    offenders = []
    for p in sources():
        with open(p) as f:
            text = f.read()
        for hdr in re.findall(r'^#include "(\w+)_int\.h"', text, re.M):
            name = os.path.basename(p)
            # <module>.c, <module>_<part>.c and <module>_int.h itself may include it
            if not (name.startswith(hdr + ".") or name.startswith(hdr + "_")):
                offenders.append("%s includes %s_int.h" % (os.path.relpath(p, ROOT), hdr))
    assert not offenders, offenders


def test_no_source_file_over_the_limit():
    """Every C file of the project, split or not, stays under ~1,500 lines."""
    too_long = []
    for p in sources():
        with open(p) as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            too_long.append("%s: %d lines" % (os.path.relpath(p, ROOT), n))
    assert not too_long, too_long
