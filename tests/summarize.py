#!/usr/bin/env python3
"""Sum the Catch2 test cases of meson test runs into one closing line.

Reads meson's testlog.json files; a Catch2 run contributes its test cases (a line
"ringlet-skip: ..." turns a passed case into a skipped one); any other test counts as one.
A run that crashed before Catch2 printed its totals counts as one more failure.
Prints a line per run and ends with "N passed, M failed, K skipped"; exits 1 on failures.
"""
import json
import re
import sys

total_pass = total_fail = total_skip = 0
for path in sys.argv[1:]:
    build, log = path.split("/meson-logs/") if "/meson-logs/" in path else (path, "")
    # A run under a test setup other than the default has its own log, testlog-SETUP.json.
    if log.startswith("testlog-") and log.endswith(".json"):
        build += " (" + log[len("testlog-"):-len(".json")] + ")"
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        print(f"{path}: cannot read ({e})")
        total_fail += 1
        continue
    for line in lines:
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        skips = [l for l in out.splitlines() if l.startswith("ringlet-skip:")]
        passed = failed = 0
        m_all = re.search(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)", out)
        m_some = re.search(r"^test cases:\s*(\d+)(.*)$", out, re.M)
        if m_all:
            passed = int(m_all.group(1))
        elif m_some:
            rest = m_some.group(2)
            p = re.search(r"(\d+) passed", rest)
            f = re.search(r"(\d+) failed", rest)
            passed = int(p.group(1)) if p else 0
            failed = int(f.group(1)) if f else 0
        elif t["result"] == "SKIP":
            skips.append("whole test skipped")
        elif t["result"] == "OK":
            passed = 1
        if t["result"] not in ("OK", "SKIP", "EXPECTEDFAIL") and failed == 0:
            failed = 1  # crashed, timed out or failed outside Catch2's accounting
        passed = max(0, passed - len(skips))
        print(f"  {build}: {t['name']}: {passed} passed, {failed} failed, {len(skips)} skipped"
              f" [{t['result']}]")
        for s in skips:
            print(f"    {s}")
        total_pass += passed
        total_fail += failed
        total_skip += len(skips)

print(f"{total_pass} passed, {total_fail} failed, {total_skip} skipped")
sys.exit(1 if total_fail else 0)
