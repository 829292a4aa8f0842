#!/usr/bin/env python3
"""The side-by-side benchmark: one command, one run, BENCHMARKS.md rewritten.

    python3 bench/run.py            # full run (about 7 minutes once built), writes BENCHMARKS.md
    python3 bench/run.py --quick    # smoke run (short runs), writes target/bench/quick.md
    python3 bench/run.py --only ours,fresh,floor --skip criterion,payment
    SPIN_BIN=/path/to/spin python3 bench/run.py    # adds the real Spin CLI as a contender

It builds what it measures (release builds, the components, the FastAPI reference stack's
venv), makes a database of its own (migrated by `detailing migrate`, one customer and one car
seeded, an HS256 token minted with the run's own secret), refuses any contender that answers
the car lookup differently from ours, then measures one contender at a time with wrk:

  ours    `detailing up` (release build, every component of spin.toml as shipped, whose
          `[component.<id>.tool.detailing]` sections may opt into instance reuse; relay inside)
  fresh   the same with `--max-instance-reuse-count 1`: a fresh instance per request, Spin's
          model
  spin    the real Spin CLI (`spin up`), only when SPIN_BIN or --spin-bin names a binary the
          user has: the bench never builds or downloads Spin
  native  bench-native-twin (axum + tokio-postgres)
  seed    the FastAPI reference stack, bench/seed-stack (FastAPI + uvicorn, 2 workers per
          service, asyncpg)
  floor   bench-floor (hyper, every request 200 {"status":"ok"})

Scenarios: (1) GET /api/cars/health/live, 32 connections, and (1c) at one connection;
(2) GET /api/cars/{id} with a token and a pooled query, 32 connections; (3) POST /api/orders
(a chained call to car-service and an insert), every booking a half hour of its own inside the
opening hours, so none waits for a bay; (3b) ours only: booking under contention, random half
hours of one day with the shop set by staff to fewer bays than the run asks for, counting
201s, 409 slot_taken and, in SQL afterwards, double-bookings; (4) (2) at 256 connections;
(5) cold start (compile cache emptied) and warm start to the first 200; (6) idle RSS of
`detailing up`, its peak under load and its RSS after the load runs (also Spin's); (7) payment
-> bonus latency at 200/s (bench/payment_bonus.py); and the criterion micro-benchmark of one
instantiate+handle cycle (crates/runtime/benches/instantiate.rs).

Everything it starts (servers, the database, a RabbitMQ vhost) is removed at exit, also on
Ctrl-C or failure. Python 3 standard library only; needs root for `apt-get install -y wrk`
when wrk is missing.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import platform
import queue
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "target")
WORK = os.path.join(TARGET, "bench")
LOGS = os.path.join(WORK, "logs")
RELEASE = os.path.join(TARGET, "release")
SEED_VENV = os.path.join(WORK, "seed-venv")
OURS_CACHE = os.path.join(WORK, "compile-cache")
ADMIN_DB = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
MARK_BEGIN = "<!-- bench:run.py begin -->"
MARK_END = "<!-- bench:run.py end -->"
# ours first: it is the correctness gate's reference and every ratio's numerator.
CONTENDERS = ["ours", "fresh", "spin", "native", "seed", "floor"]
STAGES = ["build", "start", "payment", "criterion"]
LABELS = {
    "ours": "ours (`detailing up`)",
    "fresh": "ours, fresh instance per request (`--max-instance-reuse-count 1`)",
    "spin": "Spin CLI (`spin up`)",
    "native": "native twin (axum + tokio-postgres)",
    "seed": "FastAPI reference stack (FastAPI + uvicorn ×2 + asyncpg)",
    "floor": "floor (hyper hello)",
}
# The hosts of wasm components, whose RSS after the load runs is compared.
WASM_HOSTS = ["ours", "fresh", "spin"]
SPIN_NOT_SET = ("SPIN_BIN is not set (the bench never builds or downloads Spin; point SPIN_BIN "
                "at a `spin` 4.x binary to add it)")
SPIN_HEALTH = "/.well-known/spin/health"
SPIN_LOGS = os.path.join(LOGS, "spin")
SPIN_STATE = os.path.join(WORK, "spin-state")
LIVE_PATH = "/api/cars/health/live"
# Every booking the bench makes has a half hour of its own (no two share a bay's time), from
# FIRST_DAY on, at one of the 24 starts inside the default opening hours (09:00-21:00
# Europe/Moscow: 06:00Z to 17:30Z). Booking k of a run that starts at day d is on day
# d + k // 24 at 06:00Z + 30 min × (k % 24), CONTENTION_DAY left out.
FIRST_DAY = datetime.date(2031, 1, 1)
SLOTS_PER_DAY = 24
FIRST_START_UTC = datetime.timedelta(hours=6)
# The one day of the booking-under-contention scenario: random half hours, bays few enough
# that the day fills during the run.
CONTENTION_DAY = datetime.date(2031, 6, 2)
CONTENTION_CONNECTIONS = 32
ORDERS_LUA = os.path.join(WORK, "orders.lua")
CONTENTION_LUA = os.path.join(WORK, "contention.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
STARTED = time.monotonic()

# Requests the script makes itself never go through a proxy (the servers are on loopback).
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def component_count():
    try:
        with open(os.path.join(ROOT, "spin.toml")) as f:
            return len(re.findall(r"^\[component\.[A-Za-z0-9_-]+\]\s*$", f.read(), re.M))
    except OSError:
        return 0


def log(message):
    elapsed = time.monotonic() - STARTED
    print(f"[{int(elapsed) // 60:2d}:{int(elapsed) % 60:02d}] {message}", flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Processes: everything started is remembered and ended (its own process group) at exit.

CHILDREN = []
CLEANUPS = []


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(extra)
    return env


def run(cmd, timeout=None, check=True, env=None, quiet=False, cwd=ROOT):
    if not quiet:
        log("$ " + shlex.join(cmd))
    out = subprocess.run(cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                         timeout=timeout)
    if check and out.returncode != 0:
        raise BenchError(f"`{shlex.join(cmd)}` failed ({out.returncode}):\n"
                         f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def run_streamed(cmd, logfile, env=None):
    """Runs a long build step with its output in a log file; returns its exit code."""
    log("$ " + shlex.join(cmd) + f"   (output: {os.path.relpath(logfile, ROOT)})")
    with open(logfile, "w") as out:
        child = subprocess.Popen(cmd, cwd=ROOT, env=env or clean_env(), stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        CHILDREN.append(child)
        try:
            return child.wait()
        finally:
            CHILDREN.remove(child)


def end_process(child, grace=10.0):
    """SIGTERM to the child's own process group, then SIGKILL after `grace` seconds. Ends when
    the whole group is gone, not only the child: `spin up` runs each trigger as a child
    process that can outlive it for a moment, holding database connections."""
    def running():
        return child.poll() is None or group_members(child.pid)
    if not running():
        return
    signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while running() and time.monotonic() < deadline:
        time.sleep(0.02)
    if running():
        signal_group(child.pid, signal.SIGKILL)
        child.wait()


def signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def cleanup():
    for child in list(CHILDREN):
        end_process(child, grace=5.0)
    CHILDREN.clear()
    while CLEANUPS:
        action = CLEANUPS.pop()
        try:
            action()
        except Exception as error:  # noqa: BLE001 - cleanup goes on
            print(f"cleanup: {error}", file=sys.stderr)


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------------
# /proc: a process tree's CPU time and memory.

def proc_table():
    """pid -> (ppid, utime+stime ticks, comm, process group) for every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        # A zombie is gone but for its exit status (nobody may reap an orphan in a container).
        if fields[0] == "Z":
            continue
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), comm,
                             int(fields[2]))
    return table


def group_members(pgid, table=None):
    table = table if table is not None else proc_table()
    return [pid for pid, row in table.items() if row[3] == pgid]


def tree(roots, table=None):
    """The roots and their descendants, each once (a root may descend from another)."""
    table = table if table is not None else proc_table()
    children = {}
    for pid, row in table.items():
        children.setdefault(row[0], []).append(pid)
    found, stack = set(), [r for r in roots if r in table]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, []))
    return sorted(found)


def cpu_seconds(roots):
    table = proc_table()
    return sum(table[pid][1] for pid in tree(roots, table)) / CLK_TCK


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(roots):
    return sum(status_kb(pid, "VmRSS") for pid in tree(roots)) / 1024


def hwm_mb(roots):
    return sum(status_kb(pid, "VmHWM") for pid in tree(roots)) / 1024


def postgres_roots():
    """The postmaster(s): `postgres` processes whose parent is not one."""
    table = proc_table()
    return [pid for pid, (ppid, _, comm, _) in table.items()
            if comm == "postgres" and table.get(ppid, (0, 0, "", 0))[2] != "postgres"]


class Sampler:
    """Samples a tree's summed RSS every 100 ms in a thread; keeps the peak."""

    def __init__(self, roots):
        self.roots = roots
        self.peak = 0.0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, rss_mb(self.roots))
            self.stop_flag.wait(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop_flag.set()
        self.thread.join()
        self.peak = max(self.peak, rss_mb(self.roots))


# --------------------------------------------------------------------------------------------
# HTTP and tokens.

def http(method, url, token=None, body=None, timeout=10):
    headers = {"content-type": "application/json"} if body is not None else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with HTTP.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def mint_token(user_id, secret, ttl=6 * 3600, role="customer"):
    """HS256 access token with the claims crates/auth expects: sub, role, iat, exp."""
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=")
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": user_id, "role": role, "iat": now,
                             "exp": now + ttl}).encode())
    signing_input = header + b"." + claims
    signature = b64(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def booking_time(first, k):
    """Booking k of a run that starts at day `first` (counted from FIRST_DAY), as orders.lua
    books it: RFC 3339 in UTC."""
    day = first + k // SLOTS_PER_DAY
    if day >= (CONTENTION_DAY - FIRST_DAY).days:
        day += 1
    start = datetime.datetime.combine(FIRST_DAY, datetime.time(), datetime.timezone.utc)
    at = start + datetime.timedelta(days=day, minutes=30 * (k % SLOTS_PER_DAY)) + FIRST_START_UTC
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http_200(url, deadline, interval=0.005, alive=None):
    """Polls `url` until it answers 200; returns the monotonic time it did. Gives up early
    when `alive` says the server has exited."""
    while time.monotonic() < deadline:
        if alive and not alive():
            raise BenchError(f"the server exited before {url} answered 200; see target/bench/logs/")
        try:
            status, _ = http("GET", url, timeout=2)
            if status == 200:
                return time.monotonic()
        except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
            pass
        time.sleep(interval)
    raise BenchError(f"{url} did not answer 200 in time")


# --------------------------------------------------------------------------------------------
# Servers.

class Server:
    """One running contender: its processes (each in its own process group) and base URLs."""

    def __init__(self, name):
        self.name = name
        self.children = []
        self.bases = {}
        self.roots_for = {}

    def spawn(self, cmd, env, logname):
        logfile = os.path.join(LOGS, f"{logname}.log")
        err = open(logfile, "a")
        err.write(f"\n=== {datetime.datetime.now().isoformat()} {shlex.join(cmd)}\n")
        err.flush()
        child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=err, text=True, start_new_session=True, bufsize=1)
        err.close()
        lines = queue.Queue()

        def drain():
            with open(logfile, "a") as out:
                for line in child.stdout:
                    lines.put(line)
                    out.write(line)
            lines.put(None)
        threading.Thread(target=drain, daemon=True).start()
        child.lines = lines
        CHILDREN.append(child)
        self.children.append(child)
        return child

    @staticmethod
    def wait_line(child, prefix, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{what} printed no `{prefix}` line within {timeout:.0f} s")
            try:
                line = child.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise BenchError(f"{what} exited ({child.wait()}) before `{prefix}`; "
                                 f"see target/bench/logs/")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def roots(self, scenario=None):
        """The processes measured: each root's process group as well as its descendants, so
        what end_process stops is what is counted (`spin up`'s trigger processes, uvicorn's
        workers), also a member that left the tree."""
        roots = self.roots_for.get(scenario) or [c.pid for c in self.children]
        table = proc_table()
        return sorted({pid for root in roots for pid in [root] + group_members(root, table)})

    def base(self, scenario=None):
        return self.bases.get(scenario) or self.bases[None]

    def alive(self):
        return all(c.poll() is None for c in self.children)

    def stop(self):
        for child in self.children:
            end_process(child)
            if child in CHILDREN:
                CHILDREN.remove(child)
        self.children = []


class Bench:
    def __init__(self, args):
        self.args = args
        self.secret = secrets.token_hex(32)
        self.relay_token = secrets.token_hex(24)
        self.event_signing_key = secrets.token_hex(32)
        self.db_name = f"bench_{uuid.uuid4().hex[:12]}"
        self.db_url = f"postgres://postgres@127.0.0.1:5432/{self.db_name}?sslmode=disable"
        self.amqp_url = "amqp://guest:guest@127.0.0.1:5672/%2f"
        self.vhost = None
        self.user_id = str(uuid.uuid4())
        self.token = mint_token(self.user_id, self.secret)
        self.car_id = None
        self.available = {}      # contender -> None (ok) or the reason it is not measured
        self.results = {"runs": {}, "start": {}, "memory": {}, "after_load_rss_mb": {},
                        "payment": None, "criterion": None, "gate": {}, "commands": [],
                        "contention": None}
        self.reference = {}

    # ---------------------------------------------------------------- set-up

    def wanted(self, name):
        return name in self.args.only and name not in self.args.skip

    def ensure_wrk(self):
        if shutil.which("wrk"):
            return
        log("wrk is missing: installing Debian's package")
        if run(["apt-get", "install", "-y", "wrk"], check=False, timeout=600).returncode != 0:
            run(["apt-get", "update"], timeout=600)
            run(["apt-get", "install", "-y", "wrk"], timeout=600)
        if not shutil.which("wrk"):
            raise BenchError("wrk is still missing after apt-get install -y wrk")

    def build(self):
        os.makedirs(LOGS, exist_ok=True)
        packages = ["detailing", "bench-floor"]
        if self.wanted("native"):
            packages.append("bench-native-twin")
        cargo = ["cargo", "build", "--release"] + [a for p in packages for a in ("-p", p)]
        started = time.monotonic()
        if run_streamed(cargo, os.path.join(LOGS, "build-release.log")) != 0:
            if "bench-native-twin" not in packages:
                raise BenchError("the release build failed: see target/bench/logs/build-release.log")
            log("the release build failed; retrying without the native twin")
            self.available["native"] = "its release build failed (target/bench/logs/build-release.log)"
            cargo = ["cargo", "build", "--release", "-p", "detailing", "-p", "bench-floor"]
            if run_streamed(cargo, os.path.join(LOGS, "build-release-2.log")) != 0:
                raise BenchError("the release build failed: see target/bench/logs/build-release-2.log")
        self.results["build_seconds"] = round(time.monotonic() - started)
        if run_streamed([self.detailing(), "build"], os.path.join(LOGS, "build-components.log")) != 0:
            raise BenchError("`detailing build` failed: see target/bench/logs/build-components.log")
        if self.wanted("seed"):
            setup = os.path.join(ROOT, "bench", "seed-stack", "setup.sh")
            if not os.path.exists(setup):
                self.available["seed"] = "bench/seed-stack/setup.sh does not exist yet"
            elif run_streamed(["sh", setup], os.path.join(LOGS, "seed-setup.log")) != 0:
                self.available["seed"] = "its venv could not be made (target/bench/logs/seed-setup.log)"
        if "criterion" not in self.args.skip:
            fixture = ["cargo", "build", "--profile", "wasm", "--target", "wasm32-wasip1",
                       "-p", "empty"]
            bench = ["cargo", "bench", "-p", "detailing-host", "--bench", "instantiate", "--no-run"]
            if run_streamed(fixture, os.path.join(LOGS, "build-empty.log")) != 0:
                self.results["criterion"] = {"error": "tests/fixtures/empty did not build"}
            elif run_streamed(bench, os.path.join(LOGS, "build-criterion.log")) != 0:
                self.results["criterion"] = {"error": "the bench did not build"}
        log(f"built in {time.monotonic() - started:.0f} s")

    def detailing(self):
        return self.args.ours_bin or os.path.join(RELEASE, "detailing")

    def check_binaries(self):
        needs = {"ours": self.detailing(), "floor": os.path.join(RELEASE, "bench-floor"),
                 "native": os.path.join(RELEASE, "bench-native-twin"),
                 "seed": os.path.join(SEED_VENV, "bin", "uvicorn")}
        for name, path in needs.items():
            if self.available.get(name) is None and not os.access(path, os.X_OK):
                self.available[name] = f"{os.path.relpath(path, ROOT)} is missing"
        if self.wanted("fresh") and self.available.get("fresh") is None:
            self.available["fresh"] = self.reuse_flag_missing()
        # Unset SPIN_BIN is the reason shown even when --only leaves spin out: it says how
        # to add it.
        if self.wanted("spin") or not self.args.spin_bin:
            self.available["spin"] = self.check_spin()
        for name in CONTENDERS:
            self.available.setdefault(name, None)
        if self.available["ours"]:
            raise BenchError(f"cannot measure ours: {self.available['ours']}")

    def reuse_flag_missing(self):
        """Why fresh cannot run, or None: an older build (`--ours-bin`) has no such flag."""
        out = run([self.detailing(), "up", "--help"], check=False, quiet=True, timeout=60)
        if "--max-instance-reuse-count" in out.stdout:
            return None
        return (f"{os.path.relpath(self.detailing(), ROOT)} has no `--max-instance-reuse-count` "
                "(an older build)")

    def check_spin(self):
        """Why the Spin CLI cannot run, or None (and its version recorded)."""
        spin = self.args.spin_bin
        if not spin:
            return SPIN_NOT_SET
        if not os.access(spin, os.X_OK) or os.path.isdir(spin):
            return f"SPIN_BIN ({spin}) is not an executable file"
        out = run([spin, "--version"], check=False, quiet=True, timeout=60)
        if out.returncode != 0 or not out.stdout.strip():
            return f"`{spin} --version` failed ({out.returncode}): {out.stderr.strip()[:200]}"
        self.results["spin_version"] = out.stdout.strip().splitlines()[0]
        log(f"Spin CLI: {spin}, {self.results['spin_version']}")
        return None

    def psql(self, url, sql):
        out = run(["psql", url, "-v", "ON_ERROR_STOP=1", "-Atc", sql], quiet=True)
        return out.stdout.strip()

    def make_database(self):
        log(f"database {self.db_name}: create, migrate, seed")
        self.psql(ADMIN_DB, f"CREATE DATABASE {self.db_name}")
        CLEANUPS.append(lambda: self.psql(
            ADMIN_DB, f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)"))
        run([self.detailing(), "--manifest", os.path.join(ROOT, "spin.toml"), "migrate"],
            env=clean_env(SPIN_VARIABLE_POSTGRES_URL=self.db_url, RUST_LOG="warn"))
        # A customer (nobody logs in: the token is minted) and one car of theirs.
        fake_hash = "$2b$12$" + "a" * 53
        self.psql(self.db_url, f"""
            INSERT INTO users.users (id, email, password_hash, full_name, phone_number, role)
            VALUES ('{self.user_id}', 'bench@example.com', '{fake_hash}', 'Bench Customer',
                    '+79991234567', 'customer')""")
        self.car_id = self.psql(self.db_url, f"""
            INSERT INTO cars.cars (owner_id, license_plate, vin, make, model, year)
            VALUES ('{self.user_id}', 'А123БВ799', 'XTA210930V0123456', 'Lada', 'Vesta', 2021)
            RETURNING id""").splitlines()[0]
        self.write_scripts()

    def write_scripts(self):
        """The wrk scripts of (3) and (3b), for the run's car."""
        epoch = int(datetime.datetime.combine(FIRST_DAY, datetime.time(),
                                              datetime.timezone.utc).timestamp())
        start = epoch + int(FIRST_START_UTC.total_seconds())
        skip = (CONTENTION_DAY - FIRST_DAY).days
        prefix = json.dumps({"car_id": self.car_id})[:-1] + ',"desired_time":"'
        suffix = '","description":"bench"}'
        with open(ORDERS_LUA, "w") as f:
            f.write(f"""\
-- POST /api/orders, every request a half hour no other booking holds; written by
-- bench/run.py. Arguments after `--`: the first day (counted from {FIRST_DAY}) and wrk's
-- thread count. Request n of thread i is booking k = n * threads + i: day first + k / 24
-- ({CONTENTION_DAY}, the contention scenario's, left out), starting 06:00Z + 30 min * (k % 24).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local started = 0
function setup(thread)
  thread:set("index", started)
  started = started + 1
end
function init(args)
  first = tonumber(args[1]) or 0
  stride = tonumber(args[2]) or 1
  n = 0
end
function request()
  local k = n * stride + index
  n = n + 1
  local day = first + math.floor(k / {SLOTS_PER_DAY})
  if day >= {skip} then
    day = day + 1
  end
  local at = {start} + day * 86400 + (k % {SLOTS_PER_DAY}) * 1800
  local body = '{prefix}' .. os.date("!%Y-%m-%dT%H:%M:%SZ", at) .. '{suffix}'
  return wrk.format(nil, nil, nil, body)
end
""")
        with open(CONTENTION_LUA, "w") as f:
            f.write(f"""\
-- POST /api/orders, every request a random half hour of {CONTENTION_DAY} inside the
-- opening hours (starts 06:00Z to 17:30Z), no items; written by bench/run.py. Counts the
-- answers of each thread; at the end prints `CONTENTION created taken other` and, if any
-- other answer came, `CONTENTION-OTHER <the first one>`.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = {{}}
function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(1000 + index)
  created, taken, other, first_other = 0, 0, 0, ""
end
function request()
  local slot = math.random(0, {SLOTS_PER_DAY - 1})
  local minutes = 6 * 60 + slot * 30
  local at = string.format("{CONTENTION_DAY}T%02d:%02d:00Z", math.floor(minutes / 60),
                           minutes % 60)
  return wrk.format(nil, nil, nil, '{prefix}' .. at .. '{suffix}')
end
function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 409 and string.find(body, '"code":"slot_taken"', 1, true) then
    taken = taken + 1
  else
    other = other + 1
    if first_other == "" then
      first_other = status .. " " .. string.sub(body, 1, 300)
    end
  end
end
function done(summary, latency, requests)
  local c, t, o, first = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    c = c + thread:get("created")
    t = t + thread:get("taken")
    o = o + thread:get("other")
    if first == "" then
      first = thread:get("first_other")
    end
  end
  io.write(string.format("CONTENTION %d %d %d\\n", c, t, o))
  if first ~= "" then
    io.write("CONTENTION-OTHER " .. string.gsub(first, "\\n", " ") .. "\\n")
  end
end
""")

    def next_day(self):
        """The first day (counted from FIRST_DAY) after every booking made so far: where the
        next run's half hours start, so no two bookings of the bench share one."""
        return int(self.psql(self.db_url, f"""
            SELECT coalesce(max((desired_time AT TIME ZONE 'UTC')::date)
                            - DATE '{FIRST_DAY}' + 1, 0)
            FROM orders.orders WHERE desired_time >= '{FIRST_DAY}T00:00:00Z'"""))

    def make_vhost(self):
        """A RabbitMQ vhost of the run's own, so no other relay takes its payment events."""
        if not shutil.which("rabbitmqctl"):
            log("rabbitmqctl not found: the relay uses the default vhost")
            return
        name = self.db_name
        try:
            run(["rabbitmqctl", "-q", "add_vhost", name], quiet=True, timeout=60)
        except (BenchError, subprocess.TimeoutExpired) as error:
            log(f"cannot add a RabbitMQ vhost ({error}); the relay uses the default one")
            return
        CLEANUPS.append(lambda: run(["rabbitmqctl", "-q", "delete_vhost", name], quiet=True,
                                    check=False, timeout=60))
        run(["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            quiet=True, timeout=60)
        self.vhost = name
        self.amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{name}"

    # ---------------------------------------------------------------- contenders

    def ours_command(self):
        return [self.detailing(), "--manifest", os.path.join(ROOT, "spin.toml"), "up",
                "--listen", "127.0.0.1:0", "--cache-dir", OURS_CACHE]

    def fresh_command(self):
        return self.ours_command() + ["--max-instance-reuse-count", "1"]

    def spin_command(self, port, spin=None):
        """As the test harness starts it (crates/detailing/tests/common/mod.rs, spawn_spin):
        component output in the log folder only, state of the bench's own."""
        return [spin or self.args.spin_bin, "up", "-f", os.path.join(ROOT, "spin.toml"),
                "--quiet", "--listen", f"127.0.0.1:{port}",
                "--log-dir", SPIN_LOGS, "--state-dir", SPIN_STATE]

    def ours_env(self):
        env = clean_env(SPIN_VARIABLE_POSTGRES_URL=self.db_url,
                        SPIN_VARIABLE_JWT_SECRET=self.secret,
                        SPIN_VARIABLE_RELAY_TOKEN=self.relay_token,
                        SPIN_VARIABLE_EVENT_SIGNING_KEY=self.event_signing_key,
                        AMQP_URL=self.amqp_url, RUST_LOG=self.args.ours_log)
        # ours is the manifest as shipped: a reuse count from the caller's shell would make
        # it fresh (or something else) without the report saying so.
        env.pop("DETAILING_MAX_INSTANCE_REUSE_COUNT", None)
        return env

    def start(self, name, timeout=120):
        server = Server(name)
        try:
            if name in ("ours", "fresh"):
                cmd = self.ours_command() if name == "ours" else self.fresh_command()
                child = server.spawn(cmd, self.ours_env(), name)
                server.bases[None] = server.wait_line(child, "Serving ", timeout, "detailing up")
            elif name == "spin":
                # The database is already migrated, and the payment stage (the only one that
                # needs the relay) runs for ours alone: `spin up` is all there is to start.
                port = free_port()
                for folder in (SPIN_LOGS, SPIN_STATE):
                    os.makedirs(folder, exist_ok=True)
                server.spawn(self.spin_command(port), self.ours_env(), "spin")
                server.bases[None] = f"http://127.0.0.1:{port}"
                wait_http_200(server.base() + SPIN_HEALTH, time.monotonic() + timeout, 0.1,
                              alive=server.alive)
            elif name == "native":
                cmd = [os.path.join(RELEASE, "bench-native-twin"), "--listen", "127.0.0.1:0",
                       "--database-url", self.db_url, "--jwt-secret", self.secret]
                child = server.spawn(cmd, clean_env(), "native")
                server.bases[None] = server.wait_line(child, "listening on ", timeout,
                                                      "bench-native-twin")
            elif name == "floor":
                cmd = [os.path.join(RELEASE, "bench-floor"), "--listen", "127.0.0.1:0"]
                child = server.spawn(cmd, clean_env(), "floor")
                server.bases[None] = server.wait_line(child, "listening on ", timeout,
                                                      "bench-floor")
            elif name == "seed":
                uvicorn = os.path.join(SEED_VENV, "bin", "uvicorn")
                env = clean_env(POSTGRES_URL=self.db_url, JWT_SECRET_KEY=self.secret)
                cars_port, orders_port = free_port(), free_port()
                cars = server.spawn(self.seed_command(uvicorn, "cars", cars_port), env, "seed-cars")
                cars_base = f"http://127.0.0.1:{cars_port}"
                orders = server.spawn(self.seed_command(uvicorn, "orders", orders_port),
                                      dict(env, CAR_SERVICE_URL=cars_base), "seed-orders")
                orders_base = f"http://127.0.0.1:{orders_port}"
                deadline = time.monotonic() + timeout
                wait_http_200(cars_base + LIVE_PATH, deadline, 0.1)
                wait_http_200(orders_base + "/api/orders/health/live", deadline, 0.1)
                server.bases = {None: cars_base, "order": orders_base}
                server.roots_for = {"order": [cars.pid, orders.pid],
                                    None: [cars.pid]}
            if name != "seed":
                server.roots_for = {None: [server.children[0].pid]}
            return server
        except BaseException:
            server.stop()
            raise

    @staticmethod
    def seed_command(uvicorn, module, port):
        return [uvicorn, "--app-dir", os.path.join(ROOT, "bench", "seed-stack"), f"{module}:app",
                "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--no-access-log"]

    # ---------------------------------------------------------------- correctness gate

    def gate(self, server):
        """The contender must answer the car lookup exactly as ours does, and book an order
        with the same fields; a contender that answers differently is not measured."""
        name = server.name
        if name == "floor":
            status, body = http("GET", server.base() + LIVE_PATH)
            ok = status == 200 and json.loads(body) == {"status": "ok"}
            return None if ok else f"GET {LIVE_PATH} answered {status} {body[:200]!r}"
        status, body = http("GET", server.base() + LIVE_PATH)
        if status != 200:
            return f"GET {LIVE_PATH} answered {status} {body[:200]!r}"
        status, body = http("GET", f"{server.base()}/api/cars/{self.car_id}", self.token)
        if status != 200:
            return f"GET /api/cars/{{id}} answered {status} {body[:300]!r}"
        car = json.loads(body)
        order_url = server.base("order") + "/api/orders"
        # Two half hours of a day no booking of the run has touched yet, so each contender's
        # two bookings get the same bay as ours' did.
        first = self.next_day()
        orders = []
        for k in range(2):
            order_body = {"car_id": self.car_id, "desired_time": booking_time(first, k),
                          "description": "bench"}
            status, body = http("POST", order_url, self.token, order_body)
            if status != 201:
                return f"POST /api/orders answered {status} {body[:300]!r}"
            orders.append(json.loads(body))
        if name == "ours":
            self.reference["car"] = car
            self.results["gate"]["ours"] = "the reference"
            # Fields that differ between two bookings (id, timestamps) are not compared.
            volatile = {k for k in orders[0] if orders[0].get(k) != orders[1].get(k)}
            self.reference["volatile"] = volatile
            self.reference["order"] = {k: v for k, v in orders[0].items() if k not in volatile}
            self.reference["order_keys"] = set(orders[0])
            return None
        if "car" not in self.reference:
            return "ours was not checked first, so there is nothing to compare with"
        if car != self.reference["car"]:
            return "GET /api/cars/{id} body differs from ours: " + diff(self.reference["car"], car)
        if set(orders[0]) != self.reference["order_keys"]:
            return ("POST /api/orders fields differ from ours: "
                    f"{sorted(set(orders[0]) ^ self.reference['order_keys'])}")
        stable = {k: v for k, v in orders[0].items() if k not in self.reference["volatile"]}
        if stable != self.reference["order"]:
            return "POST /api/orders body differs from ours: " + diff(self.reference["order"], stable)
        return None

    # ---------------------------------------------------------------- wrk

    def wrk(self, server, scenario, connections, url, script=None, record=True):
        duration = self.args.duration if record else self.args.warmup
        # wrk wants a connection per thread at least: one connection, one thread.
        threads = min(2, connections)
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
               "--latency", "-H", f"Authorization: Bearer {self.token}"]
        if script:
            cmd += ["-s", script]
        cmd.append(url)
        if script == ORDERS_LUA:
            # Each run (warm-ups too) books days of its own, after every booking so far.
            cmd += ["--", str(self.next_day()), str(threads)]
        if not record:
            subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
            return None
        roots = server.roots(scenario)
        pg = postgres_roots()
        cpu_before, pg_before = cpu_seconds(roots), cpu_seconds(pg)
        with Sampler(roots) as sampler:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
        cpu = cpu_seconds(roots) - cpu_before
        pg_cpu = cpu_seconds(pg) - pg_before
        if out.returncode != 0:
            raise BenchError(f"wrk failed: {out.stderr or out.stdout}")
        result = parse_wrk(out.stdout)
        requests = max(result["requests"], 1)
        result.update({
            "connections": connections,
            "cpu_ms_per_request": 1000 * cpu / requests,
            "cpu_cores": cpu / result["seconds"] if result["seconds"] else 0,
            "pg_cpu_ms_per_request": 1000 * pg_cpu / requests,
            "peak_rss_mb": sampler.peak,
            "hwm_mb": hwm_mb(roots),
            "alive": server.alive(),
            "command": display(cmd, self.token),
        })
        with open(os.path.join(LOGS, f"wrk-{server.name}-{scenario}.txt"), "w") as f:
            f.write(out.stdout)
        return result

    def scenarios(self, server):
        base = server.base()
        car_url = f"{base}/api/cars/{self.car_id}"
        # live1: one connection, so latency is a request's own cost, not a queue's.
        plan = [("live", 32, base + LIVE_PATH, None), ("live1", 1, base + LIVE_PATH, None)]
        if server.name != "floor":
            plan += [("car", 32, car_url, None),
                     ("order", 32, server.base("order") + "/api/orders", ORDERS_LUA),
                     ("car256", 256, car_url, None)]
        for scenario, connections, url, script in plan:
            self.wrk(server, scenario, connections, url, script, record=False)
            result = self.wrk(server, scenario, connections, url, script)
            self.results["runs"].setdefault(scenario, {})[server.name] = result
            self.results["commands"].append((server.name, result["command"]))
            note = "" if result["errors_ok"] else f"  ({result['errors']})"
            log(f"  {server.name:6} {scenario:7} {result['rps']:9,.0f} req/s  "
                f"p50 {fmt_ms(result['p50_ms'])}  p99 {fmt_ms(result['p99_ms'])}  "
                f"cpu {result['cpu_ms_per_request']:.3f} ms/req  "
                f"peak {result['peak_rss_mb']:.0f} MB{note}")
            if not result["alive"]:
                raise BenchError(f"{server.name} died during {scenario}: see target/bench/logs/")

    # ---------------------------------------------------------------- the stages

    def measure_starts(self):
        """Cold start (the compile cache emptied) and warm start (cache kept), to the first
        200 of a component route, from the moment the process is spawned."""
        cold_runs = 1 if self.args.quick else 2
        warm_runs = 1 if self.args.quick else 3
        cold, warm = [], []
        for kind, count in (("cold", cold_runs), ("warm", warm_runs)):
            for _ in range(count):
                if kind == "cold":
                    shutil.rmtree(OURS_CACHE, ignore_errors=True)
                started = time.monotonic()
                server = self.start("ours")
                try:
                    ready = wait_http_200(server.base() + LIVE_PATH, time.monotonic() + 120, 0.002)
                    seconds = ready - started
                    (cold if kind == "cold" else warm).append(seconds)
                    log(f"  {kind} start to first 200: {seconds * 1000:.0f} ms")
                finally:
                    server.stop()
        self.results["start"] = {"cold_s": cold, "warm_s": warm,
                                 "cache_dir": os.path.relpath(OURS_CACHE, ROOT)}

    def measure_contender(self, name):
        log(f"{LABELS[name]}: start")
        server = self.start(name)
        try:
            if name == "ours":
                time.sleep(3)
                roots = server.roots()
                self.results["memory"]["idle_rss_mb"] = rss_mb(roots)
                log(f"  idle RSS after start: {rss_mb(roots):.0f} MB")
            problem = self.gate(server)
            self.results["gate"].setdefault(name, problem or (
                "answers 200 {\"status\":\"ok\"}" if name == "floor" else "same answers as ours"))
            if problem:
                log(f"  REFUSED {name}: {problem}")
                self.available[name] = f"refused by the correctness gate: {problem}"
                return
            log("  correctness gate passed")
            self.scenarios(server)
            if name == "ours":
                self.record_ours_peaks(server)
            if name in WASM_HOSTS:
                self.record_after_load(server)
            if name == "ours":
                # After the RSS just recorded, which the other wasm hosts' runs match.
                self.measure_contention(server)
            if name == "ours" and "payment" not in self.args.skip:
                self.measure_payment(server)
        finally:
            server.stop()

    def record_ours_peaks(self, server):
        ours_runs = {s: runs["ours"] for s, runs in self.results["runs"].items()
                     if "ours" in runs}
        if "car256" in ours_runs:
            self.results["memory"]["loaded_rss_mb"] = ours_runs["car256"]["peak_rss_mb"]
        self.results["memory"]["max_rss_mb"] = max(r["peak_rss_mb"] for r in ours_runs.values())
        self.results["memory"]["hwm_mb"] = hwm_mb(server.roots())

    def record_after_load(self, server):
        """RSS 2 s after the load runs: what a host keeps once the burst is over (instances
        kept for reuse, pools, allocator caches), the same measure for each wasm host."""
        time.sleep(2)
        rss = rss_mb(server.roots())
        self.results["after_load_rss_mb"][server.name] = rss
        if server.name == "ours":
            self.results["memory"]["after_load_rss_mb"] = rss
        log(f"  RSS 2 s after the load runs: {rss:.0f} MB")

    def contention_bays(self):
        """Bays for the contention day: as many as ours, at its rate in (3), books in about a
        quarter of the run, so the run has both the race for a day's last free bays (201s)
        and a full day (409s), even if booking under contention goes at a quarter of (3)'s
        rate. The shop allows 1 to 100 bays; at 100, 2,400 bookings fill the day."""
        order = self.results["runs"].get("order", {}).get("ours")
        rate = order["rps"] if order else 500
        return max(1, min(100, round(rate * self.args.duration / 4 / SLOTS_PER_DAY)))

    def measure_contention(self, server):
        """(3b) booking under contention: 32 connections each booking a random half hour of
        CONTENTION_DAY (no warm-up: the day is empty only once; (3) warmed the same route),
        the shop set by staff to a number of bays the run fills. Afterwards the day's
        bookings are counted in SQL, and pairs of live orders in one bay at overlapping times
        (double-bookings, which the exclusion constraint forbids). Then the day's orders are
        cancelled and the shop set back, so the contenders after ours book as (3) did."""
        base = server.base("order")
        staff = mint_token(str(uuid.uuid4()), self.secret, role="staff")
        result = {}
        self.results["contention"] = result
        status, body = http("GET", base + "/api/orders/shop", staff)
        if status != 200:
            result["error"] = f"GET /api/orders/shop answered {status} {body[:300]!r}"
            log(f"  contention: {result['error']}")
            return
        before = json.loads(body)
        bays = self.contention_bays()
        shop = {"bays": bays, "time_zone": "Europe/Moscow",
                "hours": {day: {"opens": "09:00", "closes": "21:00"}
                          for day in ("monday", "tuesday", "wednesday", "thursday", "friday",
                                      "saturday", "sunday")}}
        status, body = http("PUT", base + "/api/orders/shop", staff, shop)
        if status != 200:
            result["error"] = f"PUT /api/orders/shop answered {status} {body[:300]!r}"
            log(f"  contention: {result['error']}")
            return
        day = CONTENTION_DAY.isoformat()
        next_day = (CONTENTION_DAY + datetime.timedelta(days=1)).isoformat()
        on_day = (f"{{t}}.desired_time >= '{day}T00:00:00Z' "
                  f"AND {{t}}.desired_time < '{next_day}T00:00:00Z'")
        log(f"  booking under contention: {bays} bays, {CONTENTION_CONNECTIONS} connections, "
            f"random half hours of {day}")
        try:
            run_ = self.wrk(server, "contend", CONTENTION_CONNECTIONS, base + "/api/orders",
                            CONTENTION_LUA)
            bookings = int(self.psql(self.db_url, f"""
                SELECT count(*) FROM orders.orders AS o
                WHERE o.status <> 'cancelled' AND {on_day.format(t='o')}"""))
            double = int(self.psql(self.db_url, f"""
                SELECT count(*) FROM orders.orders AS a JOIN orders.orders AS b
                  ON a.id < b.id AND a.bay = b.bay
                 AND tstzrange(a.desired_time, a.ends_at) && tstzrange(b.desired_time, b.ends_at)
                WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'
                  AND {on_day.format(t='a')}
                  AND b.desired_time < '{next_day}T00:00:00Z' AND b.ends_at > '{day}T00:00:00Z'"""))
            result.update(run_)
            result.update({"bays": bays, "day": day, "bookings": bookings,
                           "capacity": bays * SLOTS_PER_DAY, "double_bookings": double,
                           "shop": shop})
            answers = run_.get("answers")
            if answers is None:
                result["error"] = "wrk printed no CONTENTION line (target/bench/logs/)"
                log(f"  contention: {result['error']}")
            else:
                log(f"  contend {run_['rps']:9,.0f} req/s  p50 {fmt_ms(run_['p50_ms'])}  "
                    f"p99 {fmt_ms(run_['p99_ms'])}  201: {answers['created']}, 409 slot_taken: "
                    f"{answers['taken']}, other: {answers['other']}; {bookings} bookings of "
                    f"{bays * SLOTS_PER_DAY}; double-bookings: {double}")
                if answers.get("first_other"):
                    log(f"  contention: first other answer: {answers['first_other']}")
            if not run_["alive"]:
                raise BenchError(f"{server.name} died during contend: see target/bench/logs/")
        finally:
            self.psql(self.db_url, f"""
                UPDATE orders.orders AS o SET status = 'cancelled'
                WHERE o.status <> 'cancelled' AND {on_day.format(t='o')}""")
            status, body = http("PUT", base + "/api/orders/shop", staff, before)
            if status != 200:
                raise BenchError(f"the shop could not be set back to {before}: {status} "
                                 f"{body[:300]!r}")

    def measure_payment(self, server):
        seconds = 3 if self.args.quick else 15
        cmd = [sys.executable, os.path.join(ROOT, "bench", "payment_bonus.py"), "latency",
               "--base", server.base(), "--db", self.db_url, "--rate", "200",
               "--seconds", str(seconds)]
        log(f"  payment -> bonus at 200/s for {seconds} s")
        out = run(cmd, env=clean_env(SPIN_VARIABLE_JWT_SECRET=self.secret), check=False,
                  timeout=seconds + 300, quiet=True)
        result = {"command": display(["python3"] + cmd[1:])}
        if out.returncode == 0 and out.stdout.strip():
            result.update(json.loads(out.stdout.strip().splitlines()[-1]))
            log(f"  payment -> bonus p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
                f"{result['accrued']}/{result['payments']} accrued")
        else:
            result["error"] = (out.stderr or out.stdout)[-500:]
            log(f"  payment -> bonus failed: {result['error']}")
        self.results["payment"] = result

    def measure_criterion(self):
        if self.results.get("criterion"):
            return
        timing = ["--warm-up-time", "1", "--measurement-time", "2"] if self.args.quick else \
            ["--warm-up-time", "2", "--measurement-time", "5"]
        cmd = ["cargo", "bench", "-p", "detailing-host", "--bench", "instantiate", "--"] + timing
        log("criterion: one instantiate+handle cycle of tests/fixtures/empty")
        code = run_streamed(cmd, os.path.join(LOGS, "criterion.log"))
        result = {"command": shlex.join(cmd)}
        if code != 0:
            result["error"] = "cargo bench failed (target/bench/logs/criterion.log)"
        for bench in ("http_request", "host_only", "redis_message"):
            path = os.path.join(TARGET, "criterion", "instantiate", bench, "new", "estimates.json")
            try:
                with open(path) as f:
                    estimates = json.load(f)
                if os.path.getmtime(path) < time.time() - 600:
                    continue
                result[bench] = {"mean_us": estimates["mean"]["point_estimate"] / 1000,
                                 "median_us": estimates["median"]["point_estimate"] / 1000}
            except (OSError, KeyError, ValueError):
                pass
        if "http_request" in result and "host_only" in result:
            result["http_guest_us"] = (result["http_request"]["median_us"]
                                       - result["host_only"]["median_us"])
        for bench in ("http_request", "host_only", "redis_message"):
            if bench in result:
                log(f"  {bench}: median {result[bench]['median_us']:.1f} µs")
        self.results["criterion"] = result

    # ---------------------------------------------------------------- the whole run

    def go(self):
        os.makedirs(LOGS, exist_ok=True)
        log(f"bench/run.py{' --quick' if self.args.quick else ''}: "
            f"contenders {', '.join(c for c in CONTENDERS if self.wanted(c))}")
        self.ensure_wrk()
        if "build" not in self.args.skip:
            self.build()
        self.check_binaries()
        self.make_database()
        if "payment" not in self.args.skip:
            self.make_vhost()
        if "start" not in self.args.skip:
            log("ours: cold and warm start")
            self.measure_starts()
        else:
            # Idle RSS is measured on a start from the compile cache: a start that compiles
            # keeps Cranelift's memory (about 50 MB more).
            log("ours: one start to fill the compile cache")
            self.start("ours").stop()
        for name in CONTENDERS:
            if not self.wanted(name):
                continue
            if self.available.get(name):
                log(f"{name}: not measured ({self.available[name]})")
                continue
            self.measure_contender(name)
        if "criterion" not in self.args.skip:
            self.measure_criterion()
        self.results["seconds"] = time.monotonic() - STARTED
        with open(os.path.join(WORK, "results.json"), "w") as f:
            json.dump(self.results, f, indent=2, default=sorted)
        report = Report(self).render()
        write_section(self.args.output, report)
        log(f"wrote {os.path.relpath(self.args.output, ROOT)} and target/bench/results.json "
            f"in {self.results['seconds'] / 60:.1f} min")


# --------------------------------------------------------------------------------------------
# Parsing and formatting.

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(text):
    result = {}
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        result[key] = to_ms(match.group(1)) if match else float("nan")
    match = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text)
    result["requests"] = int(match.group(1))
    result["seconds"] = to_ms(match.group(2) + match.group(3)) / 1000
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = []
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if match:
        errors.append(f"{match.group(1)} non-2xx")
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if match and any(int(n) for n in match.groups()):
        errors.append("socket errors: connect {}, read {}, write {}, timeout {}".format(*match.groups()))
    result["errors"] = "; ".join(errors)
    result["errors_ok"] = not errors
    # The contention script's own count of the answers.
    match = re.search(r"^CONTENTION (\d+) (\d+) (\d+)$", text, re.M)
    if match:
        created, taken, other = (int(n) for n in match.groups())
        result["answers"] = {"created": created, "taken": taken, "other": other}
        match = re.search(r"^CONTENTION-OTHER (.*)$", text, re.M)
        if match:
            result["answers"]["first_other"] = match.group(1)[:300]
    return result


def display(cmd, token=None):
    """A command line as a reader would type it: paths relative to the repository, the token
    as $TOKEN."""
    words = []
    for word in cmd:
        word = word.replace(ROOT + "/", "")
        # A placeholder for the reader to fill ($DB, 127.0.0.1:$PORT) stays unquoted.
        if word.startswith("$") or re.fullmatch(r"[\w.:/-]*\$[A-Z_0-9]+", word):
            words.append(word)
        elif token and token in word:
            words.append('"' + word.replace(token, "$TOKEN") + '"')
        else:
            words.append(shlex.quote(word))
    return " ".join(words)


def diff(want, got):
    keys = sorted(set(want) | set(got))
    parts = [f"{k}: ours {want.get(k)!r}, this {got.get(k)!r}" for k in keys
             if want.get(k) != got.get(k)]
    return "; ".join(parts)[:600]


def fmt_ms(value):
    if value != value:  # NaN
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} µs"
    if value < 10:
        return f"{value:.2f} ms"
    return f"{value:.1f} ms"


def fmt_rps(value):
    return f"{value:,.0f}"


class Report:
    def __init__(self, bench):
        self.bench = bench
        self.r = bench.results
        self.args = bench.args

    def run_of(self, scenario, contender):
        return self.r["runs"].get(scenario, {}).get(contender)

    def ratio(self, scenario, other):
        ours, them = self.run_of(scenario, "ours"), self.run_of(scenario, other)
        if not ours or not them or not them["rps"]:
            return None
        return ours["rps"] / them["rps"]

    def measured(self, name):
        return any(name in runs for runs in self.r["runs"].values())

    def why_not(self, name):
        """Why `name` has no run: not available (with the reason), left out, or neither."""
        if self.bench.available.get(name):
            return self.bench.available[name]
        return "not run" if self.bench.wanted(name) else "skipped (--only/--skip)"

    def why_missing(self, *needs):
        """The reason of the first (contender, run) pair that has no run."""
        for name, run_ in needs:
            if not run_:
                return self.why_not(name)
        return "no number (see target/bench/logs/)"

    def rps_ratio(self, scenario, a, b, scenario_b=None):
        """(a's req/s ÷ b's, the two numbers), or (None, why not); b's run may be of another
        scenario."""
        ra, rb = self.run_of(scenario, a), self.run_of(scenario_b or scenario, b)
        if not ra or not rb or not rb["rps"]:
            return None, self.why_missing((a, ra), (b, rb))
        return ra["rps"] / rb["rps"], f"{fmt_rps(ra['rps'])} vs {fmt_rps(rb['rps'])} req/s"

    def latency_ratio(self, scenario, a, b, key_a="p50_ms", key_b="p50_ms"):
        """(a's latency ÷ b's, the two numbers), or (None, why not)."""
        ra, rb = self.run_of(scenario, a), self.run_of(scenario, b)
        if not ra or not rb or not rb[key_b] > 0 or ra[key_a] != ra[key_a]:  # absent or NaN
            return None, self.why_missing((a, ra), (b, rb))
        return ra[key_a] / rb[key_b], f"{fmt_ms(ra[key_a])} vs {fmt_ms(rb[key_b])}"

    def machine(self):
        model = "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        mem = status_line("/proc/meminfo", "MemTotal")
        gib = f"{mem / 1024 / 1024:.0f} GiB" if mem else "? GiB"
        return f"{os.cpu_count()} × {model}, {gib}, Linux {platform.release()}"

    def versions(self):
        parts = []
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        first = (wrk.stdout or wrk.stderr).splitlines()
        if first:
            parts.append(first[0].split(" [")[0].strip())
        try:
            parts.append("PostgreSQL " + self.bench.psql(ADMIN_DB, "SHOW server_version").split()[0])
        except BenchError:
            pass
        parts.append(f"Python {platform.python_version()}")
        if self.measured("spin"):
            parts.append(f"Spin CLI: `{self.r.get('spin_version', 'unknown version')}`")
        return ", ".join(parts)

    def commit(self):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return f"`{head}`" + (" with uncommitted changes" if dirty else "")

    def scenario_table(self, scenario, title):
        lines = [f"#### {title}", "",
                 "| contender | req/s | p50 | p99 | server CPU / req | PostgreSQL CPU / req "
                 "| peak RSS | ours ÷ this (req/s) |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        # The floor answers the trivial route only.
        contenders = CONTENDERS if scenario in ("live", "live1") else \
            [c for c in CONTENDERS if c != "floor"]
        for name in contenders:
            run_ = self.run_of(scenario, name)
            if not run_:
                lines.append(f"| {LABELS[name]} | not measured: {self.why_not(name)} |||||||")
                continue
            ratio = self.ratio(scenario, name)
            note = "" if run_["errors_ok"] else f" ⚠ {run_['errors']}"
            lines.append(
                f"| {LABELS[name]} | {fmt_rps(run_['rps'])}{note} | {fmt_ms(run_['p50_ms'])} "
                f"| {fmt_ms(run_['p99_ms'])} | {run_['cpu_ms_per_request'] * 1000:.0f} µs "
                f"| {run_['pg_cpu_ms_per_request'] * 1000:.0f} µs "
                f"| {run_['peak_rss_mb']:.0f} MB "
                f"| {'—' if name == 'ours' or ratio is None else f'{ratio:.2f}×'} |")
        return lines + [""]

    def targets(self):
        """Each goal as a ratio within this one run (or an absolute bound); a row without a
        number says why."""
        rows = []

        def add(label, goal, measured, ok):
            verdict = "—" if ok is None else ("**met**" if ok else "**missed**")
            rows.append(f"| {label} | {goal} | {measured} | {verdict} |")

        def goal_row(label, at_least, limit, found):
            goal = f"{'≥' if at_least else '≤'} {limit}×"
            ratio, text = found
            if ratio is None:
                add(label, goal, f"not measured: {text}", None)
            else:
                add(label, goal, f"{ratio:.2f}× ({text})",
                    ratio >= limit if at_least else ratio <= limit)

        car = "`GET /api/cars/{id}`"
        goal_row("(1) trivial route, 32 conns: ours ÷ FastAPI stack", True, 3,
                 self.rps_ratio("live", "ours", "seed"))
        goal_row("(1) trivial route, 32 conns: ours ÷ floor", True, 0.3,
                 self.rps_ratio("live", "ours", "floor"))
        goal_row("(1c) trivial route, 1 connection: ours p50 ÷ native twin p50", False, 2,
                 self.latency_ratio("live1", "ours", "native"))
        goal_row(f"(2) {car}, 32 conns: ours ÷ native twin", True, 0.6,
                 self.rps_ratio("car", "ours", "native"))
        goal_row(f"(2) {car}, 32 conns: ours ÷ FastAPI stack", True, 4,
                 self.rps_ratio("car", "ours", "seed"))
        goal_row("(3) `POST /api/orders`, 32 conns: ours ÷ native twin", True, 0.5,
                 self.rps_ratio("order", "ours", "native"))
        self.contention_target(add)
        goal_row(f"(4) {car}, 256 conns: ours ÷ ours at 32 conns", True, 0.9,
                 self.rps_ratio("car256", "ours", "ours", "car"))
        goal_row(f"(4) {car}, 256 conns: ours p99 ÷ ours p50", False, 3,
                 self.latency_ratio("car256", "ours", "ours", "p99_ms", "p50_ms"))
        warm = self.r["start"].get("warm_s") if self.r["start"] else None
        if warm:
            median = statistics.median(warm)
            add("(5) warm start to the first 200", "≤ 0.5 s", f"{median:.2f} s", median <= 0.5)
        else:
            add("(5) warm start to the first 200", "≤ 0.5 s", "not measured", None)
        self.memory_targets(add)
        pay = self.r.get("payment") or {}
        if "p99_ms" in pay:
            add("(7) payment → bonus p99 at 200/s", "≤ 100 ms", f"{pay['p99_ms']:.1f} ms",
                pay["p99_ms"] <= 100 and not pay.get("failed_payments"))
        else:
            add("(7) payment → bonus p99 at 200/s", "≤ 100 ms",
                "failed" if pay.get("error") else "not measured", None if not pay else False)
        self.spin_targets(add)
        return ["| target | goal | measured | |", "|---|---|---|---|"] + rows + [""]

    def contention_target(self, add):
        label = ("(3b) booking under contention, 32 conns, one day: live orders in one bay at "
                 "overlapping times")
        goal = "double-bookings: 0; bookings ≤ bays × 24; only 201 and 409 `slot_taken`"
        c = self.r.get("contention") or {}
        answers = c.get("answers")
        if "double_bookings" not in c or answers is None:
            add(label, goal, f"not measured: {c['error'][:200]}" if c.get("error")
                else "not measured", None)
            return
        ok = (c["double_bookings"] == 0 and c["bookings"] <= c["capacity"]
              and answers["other"] == 0)
        add(label, goal, f"double-bookings: {c['double_bookings']}; {c['bookings']:,} bookings "
            f"≤ {c['bays']} × 24 = {c['capacity']:,}; 201: {answers['created']:,}, 409 "
            f"`slot_taken`: {answers['taken']:,}, other: {answers['other']}", ok)

    def contention_table(self):
        c = self.r.get("contention") or {}
        bays = f"{c['bays']} bays" if "bays" in c else "bays set by staff"
        lines = [f"#### (3b) booking under contention: `POST /api/orders`, each request a random "
                 f"half hour of {CONTENTION_DAY} inside the opening hours, no items, "
                 f"{CONTENTION_CONNECTIONS} connections, {bays}, no warm-up", "",
                 "Before the run staff set the shop (`PUT /api/orders/shop`) to as many bays as "
                 "ours, at its rate in (3), books in a quarter of the run (at most 100, the "
                 "shop's limit), so the day fills during the run: first the race for each half "
                 "hour's last free bays, then 409 `slot_taken` for every request. req/s counts "
                 "every answer; the bookings and double-bookings (pairs of live orders in one "
                 "bay at overlapping times) are counted in SQL afterwards. Then the day's orders "
                 "are cancelled and the shop set back, so the contenders after ours book as in "
                 "(3).", "",
                 "| contender | req/s (all answers) | p50 | p99 | server CPU / req | PostgreSQL "
                 "CPU / req | 201 | 409 `slot_taken` | other | bookings / bays × 24 | "
                 "double-bookings |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        reasons = {
            "fresh": "run for ours only (the same order-service and database constraint)",
            "spin": "run for ours only (the same order-service and database constraint)",
            "native": "it has no opening hours and no `PUT /api/orders/shop` (it books any "
                      "time, in the lowest free bay)",
            "seed": "it has no opening hours and no `PUT /api/orders/shop` (it books any time, "
                    "in the lowest free bay)",
        }
        for name in [n for n in CONTENDERS if n != "floor"]:
            if name != "ours":
                lines.append(f"| {LABELS[name]} | not run: {reasons[name]} ||||||||||")
                continue
            answers = c.get("answers")
            if answers is None or "double_bookings" not in c:
                why = c.get("error") or self.why_not("ours")
                lines.append(f"| {LABELS[name]} | not measured: {why[:300]} ||||||||||")
                continue
            sockets = [e for e in c["errors"].split("; ") if e.startswith("socket")]
            note = f" ⚠ {sockets[0]}" if sockets else ""
            other = str(answers["other"]) + (f" (first: `{answers['first_other'][:120]}`)"
                                             if answers.get("first_other") else "")
            lines.append(
                f"| {LABELS[name]} | {fmt_rps(c['rps'])}{note} | {fmt_ms(c['p50_ms'])} "
                f"| {fmt_ms(c['p99_ms'])} | {c['cpu_ms_per_request'] * 1000:.0f} µs "
                f"| {c['pg_cpu_ms_per_request'] * 1000:.0f} µs | {answers['created']:,} "
                f"| {answers['taken']:,} | {other} | {c['bookings']:,} / {c['capacity']:,} "
                f"| {c['double_bookings']} |")
        return lines + [""]

    def memory_targets(self, add):
        mem = self.r["memory"]
        if "idle_rss_mb" in mem:
            add(f"(6) idle RSS, all {component_count()} components", "≤ 80 MB", f"{mem['idle_rss_mb']:.0f} MB",
                mem["idle_rss_mb"] <= 80)
        else:
            add(f"(6) idle RSS, all {component_count()} components", "≤ 80 MB", "not measured", None)
        if "loaded_rss_mb" in mem:
            add("(6) RSS under load (peak during (4), 256 connections)", "≤ 200 MB",
                f"{mem['loaded_rss_mb']:.0f} MB", mem["loaded_rss_mb"] <= 200)
        else:
            add("(6) RSS under load", "≤ 200 MB", "not measured", None)
        after = self.r["after_load_rss_mb"]
        label = "(6) RSS 2 s after the load runs: ours ÷ Spin's"
        if "spin" not in after:
            add(label, "≤ 1.5×", f"not run: {self.why_not('spin')}", None)
        elif "ours" not in after:
            add(label, "≤ 1.5×", "not measured", None)
        else:
            ratio = after["ours"] / after["spin"]
            add(label, "≤ 1.5×", f"{ratio:.2f}× ({after['ours']:.0f} vs {after['spin']:.0f} MB)",
                ratio <= 1.5)

    def spin_targets(self, add):
        """The real Spin CLI beside ours: for information, no goal."""
        if not self.measured("spin"):
            add("(8) real Spin CLI: ours ÷ Spin for (1), (1c), (2), (3), (4)", "—",
                f"not run: {self.why_not('spin')}", None)
            return
        car = "`GET /api/cars/{id}`"
        for label, (ratio, text) in (
                ("(1) trivial route, 32 conns: ours ÷ Spin", self.rps_ratio("live", "ours", "spin")),
                ("(1c) trivial route, 1 connection: Spin p50 ÷ ours p50",
                 self.latency_ratio("live1", "spin", "ours")),
                (f"(2) {car}, 32 conns: ours ÷ Spin", self.rps_ratio("car", "ours", "spin")),
                ("(3) `POST /api/orders`, 32 conns: ours ÷ Spin",
                 self.rps_ratio("order", "ours", "spin")),
                (f"(4) {car}, 256 conns: ours ÷ Spin", self.rps_ratio("car256", "ours", "spin"))):
            add(f"(8) real Spin CLI, {label}", "—",
                f"{ratio:.2f}× ({text})" if ratio is not None else f"not run: {text}", None)

    def render(self):
        r, args = self.r, self.args
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        kind = "quick smoke run (`--quick`): short runs, numbers indicative only" if args.quick \
            else "full run"
        lines = [MARK_BEGIN,
                 "## Side by side: `python3 bench/run.py` (generated, do not edit by hand)",
                 "",
                 f"{now}, {kind}, took {r['seconds'] / 60:.1f} min. Machine: {self.machine()}; "
                 f"{self.versions()}. Commit {self.commit()}. The load generator (wrk, 2 "
                 "threads; 1 at one connection), PostgreSQL and the server share the same "
                 "cores, so read ratios, not absolute numbers.",
                 "",
                 f"Each contender ran alone against the same database (one customer, one car), "
                 f"{args.warmup} s of warm-up then {args.duration} s measured per line. ours is "
                 f"`detailing up`, release build, spin.toml as shipped (its "
                 "`[component.<id>.tool.detailing]` sections may opt components into instance "
                 "reuse), relay inside, defaults otherwise (pool 16), "
                 f"`RUST_LOG={args.ours_log}` (no per-request log line, like the FastAPI stack's "
                 "`--no-access-log`); fresh is the same command with "
                 "`--max-instance-reuse-count 1`, a fresh instance per request as in Spin; spin "
                 "is the real Spin CLI (`spin up`, same manifest and variables) when SPIN_BIN "
                 "names one. Server CPU is utime + stime of the server's whole process "
                 "tree and process group from `/proc` over the measured run, per request (for "
                 "Spin, `spin up` and the trigger processes it starts); PostgreSQL CPU the same "
                 "for the postmaster's tree; peak RSS the largest sum of VmRSS over the tree, "
                 "sampled every 100 ms. The FastAPI stack's numbers are both services' trees for "
                 "`POST /api/orders`, the car service's tree otherwise.",
                 "",
                 "### Targets",
                 "",
                 "Ratios are between contenders of this one run.",
                 ""]
        lines += self.targets()
        lines += ["### Throughput and latency", ""]
        lines += self.scenario_table("live", "(1) trivial route: `GET /api/cars/health/live` "
                                             "(no database), 32 connections")
        lines += self.scenario_table("live1", "(1c) the trivial route at one connection "
                                              "(`wrk -t1 -c1`): a request's own latency")
        lines += self.scenario_table("car", "(2) `GET /api/cars/{id}`: token check and a pooled "
                                            "query, 32 connections")
        lines += self.scenario_table("order", "(3) `POST /api/orders`: chained call to "
                                              "car-service, then an insert, 32 connections")
        lines += self.contention_table()
        lines += self.scenario_table("car256", "(4) `GET /api/cars/{id}` at 256 connections")
        lines += ["### Start and memory (ours unless said)", "", "| measure | value |",
                  "|---|---|"]
        start = r["start"]
        if start:
            lines.append("| (5) cold start to the first 200 (compile cache emptied, all "
                         f"{component_count()} compiled) | {', '.join(f'{s:.2f} s' for s in start['cold_s'])} |")
            lines.append("| (5) warm start to the first 200 (compile cache kept) | "
                         f"{', '.join(f'{s:.2f} s' for s in start['warm_s'])} |")
        mem = r["memory"]
        for key, label in (("idle_rss_mb", f"(6) RSS 3 s after start, idle, all {component_count()} components"),
                           ("loaded_rss_mb", "(6) peak RSS during (4), 256 connections"),
                           ("max_rss_mb", "(6) peak RSS over all of ours' load runs"),
                           ("hwm_mb", "(6) VmHWM after the load runs"),
                           ("after_load_rss_mb", "(6) RSS 2 s after the load runs")):
            if key in mem:
                lines.append(f"| {label} | {mem[key]:.0f} MB |")
        for name, rss in r["after_load_rss_mb"].items():
            if name != "ours":
                lines.append(f"| (6) RSS 2 s after the load runs: {LABELS[name]} | {rss:.0f} MB |")
        pay = r.get("payment") or {}
        if "p99_ms" in pay:
            lines.append(f"| (7) payment → bonus at {pay['rate_per_s']}/s, {pay['payments']} "
                         f"payments | p50 {pay['p50_ms']} ms, p99 {pay['p99_ms']} ms, max "
                         f"{pay['max_ms']} ms; {pay['failed_payments']} failed, "
                         f"{pay['accrued']} accrued |")
        elif pay:
            lines.append(f"| (7) payment → bonus | failed: {pay.get('error', '')[:200]} |")
        crit = r.get("criterion") or {}
        for bench, label in (("http_request", "criterion `instantiate/http_request`: "
                                              "`GET /empty` through the HTTP trigger, one "
                                              "kept-alive loopback connection"),
                             ("host_only", "criterion `instantiate/host_only`: the host's own "
                                           "`/.well-known/spin/health`, same connection"),
                             ("redis_message", "criterion `instantiate/redis_message`: "
                                               "`App::handle_redis_message`, no network")):
            if bench in crit:
                lines.append(f"| {label} | median {crit[bench]['median_us']:.1f} µs, mean "
                             f"{crit[bench]['mean_us']:.1f} µs |")
        if "http_guest_us" in crit:
            lines.append("| instantiate+handle on the HTTP path (http_request − host_only) | "
                         f"{crit['http_guest_us']:.1f} µs |")
        lines += ["", "### Correctness gate", "",
                  "Before measuring, each contender's `GET /api/cars/{id}` body must equal ours "
                  "(as JSON) and two `POST /api/orders`, at two half hours of a day no earlier "
                  "booking touched, must answer 201 with ours' fields and values (ids and times "
                  "aside).", ""]
        for name in CONTENDERS:
            verdict = r["gate"].get(name) or self.why_not(name)
            lines.append(f"- {LABELS[name]}: {verdict}")
        lines += ["", "### Commands", "", "```sh", "python3 bench/run.py" +
                  (" --quick" if args.quick else ""),
                  "# inside it, per contender (ports picked at start; $TOKEN minted by run.py; "
                  "each run follows a warm-up of the same command with "
                  f"-d{args.warmup}s):"]
        previous = None
        for contender, command in r["commands"]:
            if contender != previous:
                lines.append(f"# {LABELS[contender]}")
                previous = contender
            lines.append(command)
        if r["commands"]:
            lines.append("# target/bench/orders.lua: POST, Content-Type application/json, "
                         "body {\"car_id\":\"<the car>\",\"desired_time\":<a half hour of "
                         "its own>,\"description\":\"bench\"}; the arguments after -- are the "
                         f"first day (counted from {FIRST_DAY}, after every booking so far) and "
                         "wrk's thread count: request n of thread i books day first + k / 24 at "
                         "06:00Z + 30 min × (k % 24), k = n × threads + i, skipping "
                         f"{CONTENTION_DAY}")
        c = self.r.get("contention") or {}
        if c.get("command"):
            lines.append(f"# (3b), ours, after PUT /api/orders/shop as staff: "
                         f"{json.dumps(c['shop'], separators=(',', ':'))}")
            lines.append(c["command"])
            lines.append("# target/bench/contention.lua: the same body, desired_time a random "
                         f"half hour of {CONTENTION_DAY} from 06:00Z to 17:30Z; counts 201, 409 "
                         "slot_taken and other answers. Afterwards, in SQL: the day's live "
                         "orders, and pairs of them in one bay with overlapping "
                         "tstzrange(desired_time, ends_at)")
        lines.append("# the servers (SPIN_VARIABLE_POSTGRES_URL / --database-url / POSTGRES_URL: "
                     "the run's database; the JWT secret: the run's own)")
        lines.append("# ours: spin.toml as shipped")
        lines.append(f"RUST_LOG={args.ours_log} " + display(self.bench.ours_command()))
        lines.append("# fresh: the same, a fresh instance per request")
        lines.append(f"RUST_LOG={args.ours_log} " + display(self.bench.fresh_command()))
        lines.append("# spin: the Spin CLI named by SPIN_BIN (or --spin-bin), same SPIN_VARIABLE_*")
        lines.append(display(self.bench.spin_command("$PORT", "$SPIN_BIN")))
        lines.append(display([os.path.join(RELEASE, "bench-native-twin"), "--listen",
                              "127.0.0.1:0", "--database-url", "$DB", "--jwt-secret",
                              "$SECRET"]))
        lines.append(display(Bench.seed_command(os.path.join(SEED_VENV, "bin", "uvicorn"),
                                                "cars", "$P1")))
        lines.append("CAR_SERVICE_URL=http://127.0.0.1:$P1 " + display(Bench.seed_command(
            os.path.join(SEED_VENV, "bin", "uvicorn"), "orders", "$P2")))
        lines.append(display([os.path.join(RELEASE, "bench-floor"), "--listen", "127.0.0.1:0"]))
        if pay.get("command"):
            lines.append(pay["command"])
        if crit.get("command"):
            lines.append(crit["command"])
        lines += ["```", "", MARK_END]
        return "\n".join(lines) + "\n"


def status_line(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def write_section(path, section):
    """Replaces the text between the markers, or inserts it before the first `## ` heading."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n\n"
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        _, tail = rest.split(MARK_END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        match = re.search(r"^## ", text, re.M)
        at = match.start() if match else len(text)
        text = text[:at] + section + "\n" + text[at:]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def names(value, allowed):
    items = [v.strip() for v in value.split(",") if v.strip()]
    for item in items:
        if item not in allowed:
            raise argparse.ArgumentTypeError(f"`{item}` is not one of {', '.join(allowed)}")
    return items


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 s runs, one start of each kind, a short payment run; "
                             "writes target/bench/quick.md unless --output is given")
    parser.add_argument("--only", type=lambda v: names(v, CONTENDERS), default=CONTENDERS,
                        help=f"contenders to measure, comma-separated ({', '.join(CONTENDERS)})")
    parser.add_argument("--skip", type=lambda v: names(v, CONTENDERS + STAGES), default=[],
                        help="contenders or stages to leave out, comma-separated "
                             f"({', '.join(CONTENDERS + STAGES)})")
    parser.add_argument("--duration", type=int, help="seconds per measured wrk run (10)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up before each run (2)")
    parser.add_argument("--ours-log", default="warn",
                        help="RUST_LOG for `detailing up` (default warn: no per-request lines)")
    parser.add_argument("--output", help="where to write the section (BENCHMARKS.md)")
    parser.add_argument("--ours-bin", type=os.path.abspath,
                        help="the detailing binary measured as ours (default target/release/"
                             "detailing), e.g. an earlier commit's build for a before/after A/B")
    parser.add_argument("--spin-bin", type=os.path.abspath,
                        default=os.path.abspath(os.environ["SPIN_BIN"])
                        if os.environ.get("SPIN_BIN") else None,
                        help="a Spin CLI (4.x) to measure as spin (default $SPIN_BIN); the "
                             "bench never builds or downloads one")
    args = parser.parse_args()
    if "ours" in args.skip:
        parser.error("ours is the reference of every ratio and of the correctness gate")
    if "ours" not in args.only:
        args.only = ["ours"] + args.only
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup or (1 if args.quick else 2)
    args.output = os.path.abspath(args.output or os.path.join(
        ROOT, os.path.join("target", "bench", "quick.md") if args.quick else "BENCHMARKS.md"))

    # Also SIGINT: a shell that starts the script in the background has it ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bench = Bench(args)
    try:
        bench.go()
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    except BenchError as error:
        log(f"FAILED: {error}")
        return 1
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
