"""Integration test runner: imports every tests/integration/test_*.py, runs each test_*
function, prints ok/FAIL lines and ends with 'integration: N passed, N failed'.
A test fails by raising (assert). Every test cleans up the processes it started."""
import importlib.util
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402


def main():
    flt = sys.argv[1] if len(sys.argv) > 1 else ""
    # MELTP_TEST_SKIP: comma-separated name parts of tests to leave out (make test-asan)
    skip = [x for x in os.environ.get("MELTP_TEST_SKIP", "").split(",") if x]
    passed = failed = skipped = 0
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(fn[:-3], os.path.join(HERE, fn))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name in sorted(n for n in dir(mod) if n.startswith("test_")):
            full = "%s:%s" % (fn[:-3], name)
            if flt and flt not in full:
                continue
            if any(x in full for x in skip):
                skipped += 1
                print("skip %s (MELTP_TEST_SKIP)" % full, flush=True)
                continue
            t0 = time.time()
            try:
                getattr(mod, name)()
                passed += 1
                print("ok   %s (%.1fs)" % (full, time.time() - t0), flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure and go on
                failed += 1
                print("FAIL %s: %s" % (full, e), flush=True)
                traceback.print_exc(limit=4)
            finally:
                harness.cleanup()
    if skipped:
        print("%d left out by MELTP_TEST_SKIP" % skipped)
    print("integration: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
