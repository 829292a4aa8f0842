#!/usr/bin/env python3
"""The end-to-end API tests against a Spin CLI the user has, with a per-test report.

    SPIN_BIN=/path/to/spin python3 tests/spin_compat.py      # under the Spin CLI
    python3 tests/spin_compat.py                             # the same tests on our host

Runs every test file that talks to the app over HTTP (FILES below) one test at a time, then
prints a Markdown table per file: passed, failed, and "not run" for the tests marked as
places where our host does better on purpose (common::we_do_better) or that check a feature
only our host has (common::host_only), each with its reason. Exits non-zero when a test
failed. docs/spin-compatibility.md records the results per Spin version.

The project never builds, downloads or vendors Spin: SPIN_BIN names a binary you have.
"""

import argparse
import os
import re
import subprocess
import sys
from collections import OrderedDict

# Every test file whose tests reach the app over HTTP. Left out: our host's own features
# (host.rs, connections.rs, swap.rs, observability.rs, doctor.rs) and deploy.rs (files only).
FILES = [
    "users",
    "logins",
    "access",
    "cars_orders",
    "cart",
    "capacity",
    "fines",
    "payments",
    "bonuses",
    "bonus_payments",
    "refunds",
    "support",
    "relay",
    "events_security",
    "pg_types",
    "tls",
    "docs",
    "faults",
]

RESULT = re.compile(r"^test (\S+) \.\.\. ?(ok|FAILED|ignored)?(.*)$")
# A test's first output (the harness building the components) may come between its name and
# its result, which then stands alone on a later line.
LATE_RESULT = re.compile(r"^(ok|FAILED|ignored)$")
RUNNING = re.compile(r"^\s+Running tests/(\w+)\.rs")
STDOUT = re.compile(r"^---- (\S+) stdout ----$")
NOT_RUN = re.compile(r"^SPIN: not run — ([^:]+): (.*)$")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="test files (without .rs) to run")
    parser.add_argument("--log", default="target/spin-compat.log", help="cargo's whole output")
    args = parser.parse_args()

    spin = os.environ.get("SPIN_BIN")
    if spin:
        version = subprocess.run([spin, "--version"], capture_output=True, text=True, check=True)
        host = version.stdout.strip()
    else:
        host = "our host (detailing up)"
    files = args.only or FILES
    command = ["cargo", "test", "--release", "--no-fail-fast", "-p", "detailing"]
    for name in files:
        command += ["--test", name]
    # One test at a time: Spin keeps up to 64 PostgreSQL connections per component open, and
    # the suite shares one PostgreSQL.
    command += ["--", "--test-threads=1", "--show-output"]
    print(f"running {len(files)} test files under {host}", file=sys.stderr)

    os.makedirs(os.path.dirname(args.log) or ".", exist_ok=True)
    results = OrderedDict()  # file -> {test: [status, reason]}
    current = None
    pending = None  # a test whose result has not been printed yet
    in_stdout_of = None
    with open(args.log, "w") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:
            log.write(line)
            line = line.rstrip("\n")
            if m := RUNNING.match(line):
                current = results.setdefault(m.group(1), OrderedDict())
                in_stdout_of = None
            elif (m := RESULT.match(line)) and current is not None:
                pending = None
                if m.group(2) and not m.group(3):
                    record(current, m.group(1), m.group(2))
                else:
                    pending = m.group(1)
            elif (m := LATE_RESULT.match(line)) and pending and current is not None:
                record(current, pending, m.group(1))
                pending = None
            elif m := STDOUT.match(line):
                in_stdout_of = m.group(1)
            elif (m := NOT_RUN.match(line)) and in_stdout_of and current is not None:
                entry = current.setdefault(in_stdout_of, ["passed", ""])
                if entry[0] == "passed":
                    entry[0] = "not run"
                entry[1] = f"{m.group(1)}: {m.group(2)}"
        code = process.wait()

    print(report(host, results))
    failed = sum(1 for tests in results.values() for s, _ in tests.values() if s == "failed")
    missing = [f for f in files if f not in results]
    if missing:
        print(f"no results for: {', '.join(missing)} (did they build? see {args.log})")
    return 1 if failed or missing or (code != 0 and not failed) else 0


def record(tests, name, result):
    status = {"ok": "passed", "FAILED": "failed", "ignored": "ignored"}[result]
    previous = tests.get(name)
    tests[name] = [status, previous[1] if previous else ""]
    print(f"{result:>7}  {name}", file=sys.stderr)


def report(host, results):
    lines = [f"Host: {host}", "", "| File | Passed | Failed | Not run |", "| --- | --- | --- | --- |"]
    totals = [0, 0, 0]
    for name, tests in results.items():
        counts = [sum(1 for s, _ in tests.values() if s == k) for k in ("passed", "failed", "not run")]
        totals = [a + b for a, b in zip(totals, counts)]
        lines.append(f"| {name}.rs | {counts[0]} | {counts[1]} | {counts[2]} |")
    lines.append(f"| **all** | **{totals[0]}** | **{totals[1]}** | **{totals[2]}** |")
    details = [
        f"- `{name}::{test}`: {status}{' — ' + reason if reason else ''}"
        for name, tests in results.items()
        for test, (status, reason) in tests.items()
        if status != "passed"
    ]
    if details:
        lines += ["", *details]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
