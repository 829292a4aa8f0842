#!/usr/bin/env python3
"""Soak: minutes of mixed traffic at a fixed rate against a `detailing up` of its own.

    python3 bench/soak.py --minutes 10 --rate 20 --users 20 --seed 1

What it does, in order:

1. Creates a PostgreSQL database (`detailing_soak_<pid>`) and a RabbitMQ vhost of the same
   name, and starts `target/release/detailing up` on a free port against them, with the relay
   inside (so payment events reach bonus-service through the broker, as in production).
2. Registers and logs in each user once, gives each a car and the `WELCOME500` promocode.
3. Sends requests at `--rate` per second for `--minutes`, an open model: each request is
   scheduled at its time whatever the latency of the others (a pool of workers, each with one
   kept-alive connection), and its latency is counted from its scheduled time, so a stall shows
   as latency instead of as fewer requests. The mix: browse (catalog, orders, cars, one order,
   payments), book (an order of 1-3 catalog items), pay (with an `Idempotency-Key`), retry a
   payment with its key (must answer the same payment), check bonuses (balance, history),
   spend a rouble of bonuses, open a support ticket, write in one, list tickets.
4. Every `--interval` seconds (default 60) prints a row: requests, errors (any status the
   operation does not expect, or no answer), p50/p99/max latency, the host process's CPU, and
   its RSS, open file descriptors and the database's PostgreSQL connections, with those the
   host's pool holds (read from its /metrics), each the median of the samples taken every
   2 s (the JSON also has the peaks and the descriptors by kind); events paid but not yet
   accrued; and the machine's load average.
5. Waits (bounded) for the outbox to drain, then checks the books in the database: every
   succeeded order payment has exactly one outbox event and that event exactly one accrual of
   1 % (half up, to the kopeck) for the same user and order; no accrual lacks its event; each
   balance equals the sum of its user's ledger; the payments the client saw are the ones
   stored; and each user's balance from the API equals both the ledger and what the client
   expects (promocode + accruals - spends).
6. Stops the host (SIGTERM), drops the database and the vhost.

Exit status: 0 when there were no errors, no resource (RSS, fds, PostgreSQL connections) grew
by 10 % or more from the warm-up (`--warmup` seconds, default the first interval) to the last
interval, and the books balance; 1 otherwise; 2 when the set-up failed. Growth compares
medians, so a burst that comes and goes is not growth. The host's PostgreSQL pool keeps every
connection it opened at its busiest moment: connections that grew only because the pool did
(those outside it did not) are reported and do not fail the run, and descriptors are counted
without the pool's connections.

The 60-second version in .ci/run:

    python3 bench/soak.py --minutes 1 --interval 10 --warmup 20 --users 10 \
        --cache-dir target/test-compile-cache

Only the Python standard library. Needs `psql` and `rabbitmqctl` on PATH, PostgreSQL at
127.0.0.1:5432 (user postgres, trust), RabbitMQ at 127.0.0.1:5672 (guest), and the components
built (`--build` builds them through `detailing up --build`).
"""

import argparse
import collections
import http.client
import json
import os
import queue
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
PROMO_CODE, PROMO_KOPECKS = "WELCOME500", 50000
SPEND_KOPECKS = 100
# Idle connections are re-opened before the host's idle timeout (60 s) can close them under a
# request.
RECONNECT_IDLE_S = 30.0
ROW_DELAY_S = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class SetupError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Outside tools


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise SetupError(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return out.stdout


def psql(url, sql):
    return run(["psql", url, "-v", "ON_ERROR_STOP=1", "-XAtq", "-F", "\t", "-c", sql]).strip()


def rows(url, sql):
    text = psql(url, sql)
    return [line.split("\t") for line in text.splitlines()] if text else []


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def kopecks(value):
    return int(round(float(value) * 100))


def accrual(amount_kopecks):
    """1 % of an amount, rounded half up to the kopeck (bonus-service's rule)."""
    return (amount_kopecks + 50) // 100


def loadavg():
    with open("/proc/loadavg") as f:
        return tuple(float(x) for x in f.read().split()[:3])


# ---------------------------------------------------------------------------------------------
# The app under test


class Stack:
    """A database, a vhost and a `detailing up` process made for one soak, and their removal."""

    def __init__(self, args):
        self.args = args
        self.name = f"detailing_soak_{os.getpid()}"
        self.db_url = f"postgres://postgres@127.0.0.1:5432/{self.name}?sslmode=disable"
        self.vhost = None
        self.db_created = False
        self.proc = None
        self.metrics_url = None
        self.base = None
        self.host = None
        self.port = None
        self.workdir = tempfile.mkdtemp(prefix="detailing-soak-")
        self.log_path = os.path.join(self.workdir, "detailing.log")
        self.jwt_secret = secrets.token_hex(32)

    def start(self):
        psql(PG_ADMIN, f"CREATE DATABASE {self.name}")
        self.db_created = True
        amqp_url = self.args.amqp_url
        if amqp_url is None:
            run(["rabbitmqctl", "-q", "add_vhost", self.name])
            self.vhost = self.name
            run(["rabbitmqctl", "-q", "set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"])
            amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{self.name}"
        expire = min(2592000, max(3600, int(self.args.minutes * 60) + 1800))
        env = dict(os.environ)
        env.update({
            "SPIN_VARIABLE_POSTGRES_URL": self.db_url,
            "SPIN_VARIABLE_JWT_SECRET": self.jwt_secret,
            "SPIN_VARIABLE_JWT_ACCESS_TOKEN_EXPIRE_SECONDS": str(expire),
            "SPIN_VARIABLE_RELAY_TOKEN": secrets.token_hex(24),
            "SPIN_VARIABLE_EVENT_SIGNING_KEY": secrets.token_hex(32),
            "RUST_LOG": env.get("RUST_LOG", "info"),
        })
        cmd = [self.args.bin, "--manifest", os.path.join(ROOT, "spin.toml"), "up",
               "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
               "--amqp-url", amqp_url]
        if self.args.cache_dir:
            cmd += ["--cache-dir", self.args.cache_dir]
        if self.args.build:
            cmd.append("--build")
        cmd += self.args.up_arg
        self.log = open(self.log_path, "w")
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        ready = queue.Queue()

        def read_stdout():
            for line in self.proc.stdout:
                self.log.write(line)
                self.log.flush()
                if line.startswith("Metrics "):
                    self.metrics_url = line.split()[1]
                if line.startswith("Serving "):
                    ready.put(line.split()[1])
            ready.put(None)

        threading.Thread(target=read_stdout, daemon=True).start()
        try:
            url = ready.get(timeout=self.args.start_timeout)
        except queue.Empty:
            url = None
        if url is None:
            raise SetupError(f"detailing up did not start; its log: {self.log_path}\n"
                             + self.tail())
        self.started_s = time.monotonic() - started
        self.base = url.rstrip("/")
        hostport = self.base.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)

    def compiled(self):
        """How many components the host compiled at start and how many came from its cache
        (a compile leaves its memory in the host's RSS)."""
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        return text.count("ready (compiled"), text.count("ready (from cache")

    def tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove(self, keep_log):
        if self.db_created and not self.args.keep:
            try:
                psql(PG_ADMIN, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            except SetupError as e:
                print(f"soak: {e}", file=sys.stderr)
        if self.vhost and not self.args.keep:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)
        if hasattr(self, "log"):
            self.log.close()
        if not keep_log and not self.args.keep:
            try:
                os.remove(self.log_path)
                os.rmdir(self.workdir)
            except OSError:
                pass

    # What the process holds, from /proc, and what the database sees.
    def sample(self):
        pid = self.proc.pid
        rss_kib = threads = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kib = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds, fd_kinds = self.descriptors(pid)
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu_ticks = int(fields[11]) + int(fields[12])
        pg, unaccrued = rows(self.db_url, """
            SELECT (SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()),
                   (SELECT count(*) FROM payments.outbox o
                     WHERE NOT EXISTS (SELECT 1 FROM bonuses.ledger l
                                        WHERE l.event_id = o.event_id))""")[0]
        pool = self.pool_conns()
        return {"t": time.monotonic(), "rss_kib": rss_kib, "threads": threads, "fds": fds,
                "fd_kinds": fd_kinds, "cpu_ticks": cpu_ticks, "pg_conns": int(pg),
                "pool_conns": pool, "pg_outside_pool": int(pg) - (pool or 0),
                "fds_outside_pool": fds - (pool or 0), "unaccrued": int(unaccrued),
                "load1": loadavg()[0]}

    def descriptors(self, pid):
        """The process's open descriptors, and how many are of each kind: TCP connections by
        peer (postgres, rabbitmq, redis; `self` for the relay's deliveries to the host's own
        listener, both ends; `http_in` for the clients'), listeners, other sockets, the rest
        (files, pipes, eventfds...)."""
        inodes = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue  # closed meanwhile
            inodes.append(target[8:-1] if target.startswith("socket:[") else None)
        tcp = {}
        for table in ("tcp", "tcp6"):
            try:
                with open(f"/proc/{pid}/net/{table}") as f:
                    next(f)
                    for line in f:
                        cols = line.split()
                        tcp[cols[9]] = (int(cols[1].rsplit(":", 1)[1], 16),
                                        int(cols[2].rsplit(":", 1)[1], 16), cols[3])
            except OSError:
                pass
        own_ports = {tcp[i][0] for i in inodes if i in tcp}
        kinds = collections.Counter()
        peers = {5432: "postgres", 5672: "rabbitmq", 6379: "redis"}
        for inode in inodes:
            if inode is None:
                kinds["other"] += 1
            elif inode not in tcp:
                kinds["other_sockets"] += 1
            else:
                local, remote, state = tcp[inode]
                if state == "0A":
                    kinds["listen"] += 1
                elif remote in peers:
                    kinds[peers[remote]] += 1
                elif remote == self.port or (local == self.port and remote in own_ports):
                    kinds["self"] += 1
                elif local == self.port:
                    kinds["http_in"] += 1
                else:
                    kinds["tcp_other"] += 1
        return len(inodes), dict(kinds)

    def pool_conns(self):
        """The connections the host's Postgres pool holds (in use and idle), from its metrics:
        the pool opens them as concurrency needs, up to --pg-pool-size, and keeps them."""
        if not self.metrics_url:
            return None
        hostport, path = self.metrics_url.split("://", 1)[1].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", "/" + path)
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        total = 0
        for line in text.splitlines():
            if line.startswith("detailing_postgres_pool_connections{") and (
                    'state="in_use"' in line or 'state="idle"' in line):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total


# ---------------------------------------------------------------------------------------------
# HTTP


class Client:
    """One kept-alive connection. Any failure to get an answer closes it; the next request
    opens a new one (and the failed request counts as an error)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.conn = None
        self.last_used = 0.0

    def open(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.conn.connect()
        self.last_used = time.monotonic()

    def request(self, method, path, body=None, token=None, headers=None):
        if self.conn is None or time.monotonic() - self.last_used > RECONNECT_IDLE_S:
            if self.conn is not None:
                self.conn.close()
            self.open()
        hdrs = {"accept": "application/json"}
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["content-type"] = "application/json"
        if headers:
            hdrs.update(headers)
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        self.last_used = time.monotonic()
        if response.getheader("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw[:200].decode(errors="replace")
        return response.status, payload


class Unexpected(Exception):
    def __init__(self, status, payload, why=""):
        super().__init__(f"{status} {why} {json.dumps(payload)[:300] if payload else ''}")
        self.status = status


def expect(answer, *statuses, why=""):
    status, payload = answer
    if status not in statuses:
        raise Unexpected(status, payload, why)
    return status, payload


# ---------------------------------------------------------------------------------------------
# Users and the operations


class User:
    def __init__(self, index, run_tag):
        self.index = index
        self.email = f"soak-{run_tag}-{index}@example.com"
        self.password = f"soak-password-{index}"
        self.id = None
        self.token = None
        self.car_id = None
        self.lock = threading.Lock()
        self.unpaid = collections.deque()   # (order_id, total_kopecks)
        self.orders = []                    # every order id booked
        self.payments = []                  # (payment_id, order_id, key, amount_kopecks)
        self.tickets = []
        self.accrued_kopecks = 0            # 1 % of each payment, as bonus-service must accrue
        self.spent_kopecks = 0
        self.promo_kopecks = 0

    def expected_balance(self):
        return self.promo_kopecks + self.accrued_kopecks - self.spent_kopecks


def setup_user(client, user, rng):
    phone = f"+7999{rng.randrange(10**7):07d}"
    _, me = expect(client.request("POST", "/api/users/register", {
        "email": user.email, "password": user.password, "full_name": f"Soak User {user.index}",
        "phone_number": phone}), 201, why="register")
    user.id = me["id"]
    _, tok = expect(client.request("POST", "/api/users/login", {
        "email": user.email, "password": user.password}), 200, why="login")
    user.token = tok["access_token"]
    vin_chars = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    vin = "".join(rng.choice(vin_chars) for _ in range(17))
    _, car = expect(client.request("POST", "/api/cars", {
        "license_plate": f"S{user.index:03d}OK77", "vin": vin, "make": "Lada", "model": "Vesta",
        "year": 2021}, token=user.token), 201, why="car")
    user.car_id = car["id"]
    _, promo = expect(client.request("POST", "/api/bonuses/promocodes/apply", {"code": PROMO_CODE},
                                     token=user.token), 200, why="promocode")
    user.promo_kopecks = kopecks(promo["credited"])


class Workload:
    """The mix. Each operation is one request (a `pay` with nothing to pay books instead)."""

    MIX = [  # (name, weight)
        ("catalog", 8), ("list_orders", 8), ("get_order", 6), ("list_cars", 4),
        ("list_payments", 3), ("book", 16), ("pay", 16), ("pay_retry", 3), ("balance", 10),
        ("history", 5), ("spend", 3), ("ticket", 4), ("ticket_message", 3), ("list_tickets", 3),
    ]

    def __init__(self, users, catalog, durations, seed):
        self.users = users
        self.catalog = catalog  # {id: price_kopecks}
        self.durations = durations  # {id: minutes a bay is busy; 0 for goods}
        self.catalog_ids = sorted(catalog)
        self.names = [name for name, _ in self.MIX]
        self.weights = [weight for _, weight in self.MIX]
        self.seed = seed

    def pick(self, rng):
        return rng.choices(self.names, self.weights)[0], rng.choice(self.users), rng.getrandbits(64)

    def run(self, client, name, user, r):
        """Runs one operation and returns the name it ran as; raises on an unexpected answer."""
        rng = random.Random(r)
        t = user.token
        if name == "catalog":
            expect(client.request("GET", "/api/cart/catalog", token=t), 200)
        elif name == "list_orders":
            expect(client.request("GET", "/api/orders?limit=20", token=t), 200)
        elif name == "get_order":
            with user.lock:
                order = rng.choice(user.orders) if user.orders else None
            if order is None:
                return self.run(client, "book", user, r)
            _, o = expect(client.request("GET", f"/api/orders/{order}", token=t), 200)
            if o["id"] != order:
                raise Unexpected(200, o, "another order")
        elif name == "list_cars":
            _, cars = expect(client.request("GET", "/api/cars", token=t), 200)
            if [c["id"] for c in cars["items"]] != [user.car_id]:
                raise Unexpected(200, cars, "cars list")
        elif name == "list_payments":
            expect(client.request("GET", "/api/payments?limit=20", token=t), 200)
        elif name == "book":
            return self.book(client, user, rng)
        elif name == "pay":
            with user.lock:
                order = user.unpaid.popleft() if user.unpaid else None
            if order is None:
                return self.book(client, user, rng)
            self.pay(client, user, *order)
        elif name == "pay_retry":
            with user.lock:
                paid = rng.choice(user.payments) if user.payments else None
            if paid is None:
                return self.run(client, "pay", user, r)
            payment_id, order_id, key, _ = paid
            _, p = expect(client.request("POST", "/api/payments",
                                         {"order_id": order_id, "payment_method": "card"},
                                         token=t, headers={"idempotency-key": key}), 201)
            if p["id"] != payment_id:
                raise Unexpected(201, p, f"a retry answered another payment than {payment_id}")
        elif name == "balance":
            expect(client.request("GET", "/api/bonuses/balance", token=t), 200)
        elif name == "history":
            expect(client.request("GET", "/api/bonuses/history?limit=20", token=t), 200)
        elif name == "spend":
            status, body = expect(client.request("POST", "/api/bonuses/spend",
                                                 {"amount": SPEND_KOPECKS / 100}, token=t),
                                  200, 409)
            if status == 200:
                with user.lock:
                    user.spent_kopecks += kopecks(body["spent"])
            elif body["error"]["code"] != "insufficient_bonuses":
                raise Unexpected(status, body)
        elif name == "ticket":
            with user.lock:
                order = rng.choice(user.orders) if user.orders and rng.random() < 0.5 else None
            body = {"subject": "Soak question", "message": "Is my booking confirmed?"}
            if order:
                body["order_id"] = order
            _, ticket = expect(client.request("POST", "/api/support/tickets", body, token=t), 201)
            with user.lock:
                user.tickets.append(ticket["id"])
        elif name == "ticket_message":
            with user.lock:
                ticket = rng.choice(user.tickets) if user.tickets else None
            if ticket is None:
                return self.run(client, "ticket", user, r)
            expect(client.request("POST", f"/api/support/tickets/{ticket}/messages",
                                  {"message": "Any news?"}, token=t), 201)
        elif name == "list_tickets":
            expect(client.request("GET", "/api/support/tickets?limit=20", token=t), 200)
        else:
            raise AssertionError(name)
        return name

    def book(self, client, user, rng):
        # Work that fits the default opening hours (09:00-21:00 Moscow, 06:00-18:00 UTC),
        # started on a half hour inside them, on a random day of the next three years. With
        # three bays a time can be full: 409 slot_taken is a shop's answer, not a failure.
        while True:
            items = rng.sample(self.catalog_ids, rng.randint(1, 3))
            lines = [{"catalog_id": c, "quantity": rng.randint(1, 2)} for c in items]
            minutes = sum(self.durations[line["catalog_id"]] * line["quantity"] for line in lines)
            slots = max(1, -(-minutes // 30))
            if slots <= 24:
                break
        total = sum(self.catalog[line["catalog_id"]] * line["quantity"] for line in lines)
        day = rng.randrange(1, 365 * 3)
        start = 6 * 60 + 30 * rng.randrange(24 - slots + 1)
        desired = time.strftime("%Y-%m-%dT", time.gmtime(time.time() + day * 86400)) \
            + f"{start // 60:02d}:{start % 60:02d}:00Z"
        status, order = expect(client.request("POST", "/api/orders", {
            "car_id": user.car_id, "desired_time": desired, "description": "soak",
            "items": lines}, token=user.token), 201, 409)
        if status == 409:
            if order["error"]["code"] != "slot_taken":
                raise Unexpected(status, order, "booking")
            return "book_taken"
        if kopecks(order["total"]) != total:
            raise Unexpected(201, order, f"total, expected {total} kopecks")
        with user.lock:
            user.orders.append(order["id"])
            user.unpaid.append((order["id"], total))
        return "book"

    def pay(self, client, user, order_id, total):
        key = f"soak-{uuid.uuid4()}"
        _, p = expect(client.request("POST", "/api/payments",
                                     {"order_id": order_id, "payment_method": "card"},
                                     token=user.token, headers={"idempotency-key": key}), 201)
        if p["status"] != "succeeded" or kopecks(p["amount"]) != total:
            raise Unexpected(201, p, f"payment, expected {total} kopecks succeeded")
        with user.lock:
            user.payments.append((p["id"], order_id, key, total))
            user.accrued_kopecks += accrual(total)


# ---------------------------------------------------------------------------------------------
# The run


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.results = []   # (due, started, finished, op, error or None)
        self.samples = []
        self.error_examples = []
        self.rows = []

    def record(self, due, started, finished, op, error):
        with self.lock:
            self.results.append((due, started, finished, op, error))
            if error and len(self.error_examples) < 20:
                self.error_examples.append(f"{op}: {error}")


def drive(stack, workload, args, recorder):
    """Schedules requests at the fixed rate and lets the workers send them; samples the host
    every 2 s. Returns the start time."""
    jobs = queue.Queue()
    clients = [Client(stack.host, stack.port) for _ in range(args.workers)]
    for c in clients:
        c.open()

    def worker(client):
        while True:
            job = jobs.get()
            if job is None:
                return
            due, name, user, r = job
            started = time.monotonic()
            error = None
            try:
                name = workload.run(client, name, user, r)
            except Unexpected as e:
                error = str(e)
            except (OSError, http.client.HTTPException) as e:
                error = f"no answer: {e!r}"
            except Exception as e:  # noqa: BLE001 - a bad answer body, say
                error = f"{type(e).__name__}: {e}"
            recorder.record(due, started, time.monotonic(), name, error)

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for th in threads:
        th.start()

    rng = random.Random(args.seed)
    duration = args.minutes * 60
    t0 = time.monotonic()
    stop_sampling = threading.Event()

    def sampler():
        while not stop_sampling.is_set():
            try:
                s = stack.sample()
                s["t"] -= t0
                recorder.samples.append(s)
            except (OSError, SetupError, ValueError, http.client.HTTPException) as e:
                print(f"soak: sampling failed: {e}", file=sys.stderr)
            stop_sampling.wait(args.sample_every)

    sampling = threading.Thread(target=sampler, daemon=True)
    sampling.start()
    next_row = args.interval
    i = 0
    while True:
        due = t0 + i / args.rate
        if due - t0 >= duration:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        name, user, r = workload.pick(rng)
        jobs.put((due, name, user, r))
        i += 1
        # A row is printed a few seconds after its interval, once its requests are answered.
        if due - t0 >= next_row + ROW_DELAY_S:
            print_row(recorder, t0, next_row - args.interval, next_row, args)
            next_row += args.interval
    for _ in threads:
        jobs.put(None)
    for th in threads:
        th.join(timeout=90)
    stop_sampling.set()
    sampling.join()
    # The last row(s), once every request is answered and the last sample is in.
    s = stack.sample()
    s["t"] = time.monotonic() - t0
    recorder.samples.append(s)
    while next_row - args.interval < duration - 1e-9:
        print_row(recorder, t0, next_row - args.interval, min(next_row, duration), args)
        next_row += args.interval
    # The rows again from every answer: a request slower than ROW_DELAY_S changes its row.
    live, recorder.rows = recorder.rows, []
    for row in live:
        recorder.rows.append(interval_stats(recorder, t0, row["from_s"], row["to_s"]))
    if recorder.rows != live:
        print("the same rows with every answer in:")
        for row in recorder.rows:
            print(format_row(row, args))
    return t0


HEADER = (f"{'minute':>8} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'cpu %':>5} {'RSS MiB':>8} {'fds':>5} {'pg conn':>7} {'pool':>4} {'unaccr':>6} "
          f"{'load1':>5}")


def interval_stats(recorder, t0, start, end):
    with recorder.lock:
        results = [r for r in recorder.results if start <= r[0] - t0 < end]
    lat = sorted((fin - due) * 1000 for due, _, fin, _, _ in results)
    samples = [s for s in recorder.samples if start <= s["t"] < end + 1.0] or recorder.samples[-1:]
    row = {
        "from_s": round(start, 1), "to_s": round(end, 1), "requests": len(results),
        "errors": sum(1 for r in results if r[4]),
        "p50_ms": round(percentile(lat, 50), 1), "p99_ms": round(percentile(lat, 99), 1),
        "max_ms": round(lat[-1], 1) if lat else float("nan"),
        "late_ms": round(max(((st - due) * 1000 for due, st, _, _, _ in results), default=0), 1),
    }
    if len(samples) >= 2 and samples[-1]["t"] > samples[0]["t"]:
        ticks = samples[-1]["cpu_ticks"] - samples[0]["cpu_ticks"]
        row["cpu_pct"] = round(100.0 * ticks / CLK_TCK / (samples[-1]["t"] - samples[0]["t"]))
    if samples:
        row.update({
            "rss_mib": round(level(samples, "rss_kib") / 1024, 1),
            "fds": level(samples, "fds"),
            "pg_conns": level(samples, "pg_conns"),
            "pool_conns": level(samples, "pool_conns"),
            "peak_rss_mib": round(max(s["rss_kib"] for s in samples) / 1024, 1),
            "peak_fds": max(s["fds"] for s in samples),
            "peak_pg_conns": max(s["pg_conns"] for s in samples),
            "threads": level(samples, "threads"),
            "fd_kinds": {k: level([s["fd_kinds"] for s in samples], k)
                         for k in sorted({k for s in samples for k in s["fd_kinds"]})},
            "unaccrued": samples[-1]["unaccrued"],
            "load1": samples[-1]["load1"],
        })
    return row


def level(samples, key):
    """A resource's level in a stretch of time: the median of its samples there (every 2 s),
    so a burst that comes and goes does not count and growth that stays does."""
    values = sorted((s.get(key) or 0) for s in samples)
    return values[len(values) // 2] if values else 0


def format_row(row, args):
    start, end = row["from_s"], row["to_s"]
    label = f"{end / 60:g}" if args.interval % 60 == 0 else f"{start:g}-{end:g}s"
    return (f"{label:>8} {row['requests']:>8} {row['errors']:>6} {row['p50_ms']:>7} "
            f"{row['p99_ms']:>7} {row['max_ms']:>7} {row.get('cpu_pct', '-'):>5} "
            f"{row.get('rss_mib', '-'):>8} "
            f"{row.get('fds', '-'):>5} {row.get('pg_conns', '-'):>7} {row.get('pool_conns', '-'):>4} "
            f"{row.get('unaccrued', '-'):>6} {row.get('load1', '-'):>5}")


def print_row(recorder, t0, start, end, args):
    row = interval_stats(recorder, t0, start, end)
    if not recorder.rows:
        print(HEADER)
    recorder.rows.append(row)
    print(format_row(row, args), flush=True)


def growth(recorder, args, duration):
    """Each resource's level (median) during the warm-up against its level in the last
    interval. The host's PostgreSQL pool keeps every connection it opened at its busiest
    moment (up to --pg-pool-size), so a new peak of concurrency adds one for good without
    leaking anything: PostgreSQL connections may grow inside the pool only (those outside
    it, like the relay's, must not), and descriptors are counted without the pool's."""
    warm = [s for s in recorder.samples if s["t"] <= args.warmup]
    last = [s for s in recorder.samples if s["t"] >= duration - args.interval]
    out = {}
    if not warm or not last:
        return out
    for key in ("rss_kib", "fds_outside_pool", "pg_conns", "pg_outside_pool", "pool_conns"):
        base, end = level(warm, key), level(last, key)
        out[key] = {"warm": base, "last": end,
                    "growth_pct": round(100.0 * (end - base) / base, 1) if base else 0.0}
    return out


def growth_failures(grown, max_growth):
    failed = []
    for key in ("rss_kib", "fds_outside_pool", "pg_conns"):
        g = grown.get(key)
        if g is None or g["growth_pct"] < max_growth:
            continue
        if key == "pg_conns" and grown["pg_outside_pool"]["last"] <= \
                grown["pg_outside_pool"]["warm"]:
            continue  # the pool's own high-water mark, nothing else
        failed.append(key)
    return failed


def check_books(stack, users, args):
    """Waits for every event to be accrued, then compares the database with itself, with the
    client's own account and with the API. Returns (problems, figures)."""
    db = stack.db_url
    deadline = time.monotonic() + args.drain_timeout
    waited = time.monotonic()
    while True:
        unsent, unaccrued = rows(db, """
            SELECT (SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL),
                   (SELECT count(*) FROM payments.outbox o WHERE NOT EXISTS
                      (SELECT 1 FROM bonuses.ledger l WHERE l.event_id = o.event_id))""")[0]
        if unsent == "0" and unaccrued == "0":
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    drain_s = round(time.monotonic() - waited, 1)
    problems = []

    def count(label, sql):
        n = int(psql(db, sql))
        if n:
            problems.append(f"{label}: {n}")
        return n

    count("outbox events not published", "SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL")
    count("payments neither succeeded nor expected (pending or declined)",
          "SELECT count(*) FROM payments.payments WHERE status <> 'succeeded'")
    count("succeeded order payments without exactly one outbox event", """
        SELECT count(*) FROM payments.payments p
         WHERE p.status = 'succeeded' AND p.order_id IS NOT NULL
           AND (SELECT count(*) FROM payments.outbox o
                 WHERE o.payment_id = p.id AND o.order_id = p.order_id
                   AND o.user_id = p.user_id AND o.amount_kopecks = p.amount_kopecks) <> 1""")
    count("order payments whose amount is not the order's total", """
        SELECT count(*) FROM payments.payments p JOIN orders.orders o ON o.id = p.order_id
         WHERE p.amount_kopecks <> o.total_kopecks OR p.user_id <> o.user_id""")
    count("outbox events without exactly one 1 % accrual", """
        SELECT count(*) FROM payments.outbox o
         WHERE (SELECT count(*) FROM bonuses.ledger l
                 WHERE l.event_id = o.event_id AND l.kind = 'accrual'
                   AND l.user_id = o.user_id AND l.order_id = o.order_id
                   AND l.amount_kopecks = (o.amount_kopecks + 50) / 100) <> 1""")
    count("accruals without an outbox event", """
        SELECT count(*) FROM bonuses.ledger l
         WHERE l.kind = 'accrual'
           AND NOT EXISTS (SELECT 1 FROM payments.outbox o WHERE o.event_id = l.event_id)""")
    count("balances that differ from their ledger", """
        SELECT count(*) FROM bonuses.accounts a
          FULL JOIN (SELECT user_id, sum(amount_kopecks) AS total FROM bonuses.ledger
                      GROUP BY user_id) l USING (user_id)
         WHERE coalesce(a.balance_kopecks, 0) <> coalesce(l.total, 0)""")

    stored = {r[0] for r in rows(db, "SELECT id FROM payments.payments WHERE status = 'succeeded' "
                                     "AND order_id IS NOT NULL")}
    seen = {p[0] for u in users for p in u.payments}
    if stored != seen:
        problems.append(f"payments stored but not seen by the client: {len(stored - seen)}, "
                        f"seen but not stored: {len(seen - stored)}")
    ledger = {r[0]: int(r[1]) for r in rows(db, "SELECT user_id, sum(amount_kopecks) "
                                                "FROM bonuses.ledger GROUP BY user_id")}
    client = Client(stack.host, stack.port)
    mismatched = []
    for u in users:
        status, body = client.request("GET", "/api/bonuses/balance", token=u.token)
        api = kopecks(body["balance"]) if status == 200 else None
        if not (api == ledger.get(u.id, 0) == u.expected_balance()):
            mismatched.append(f"{u.email}: api {api}, ledger {ledger.get(u.id)}, "
                              f"client {u.expected_balance()} (kopecks)")
    if mismatched:
        problems.append(f"balances: API, ledger and client disagree for {len(mismatched)} users: "
                        + "; ".join(mismatched[:5]))
    figures = {
        "drain_wait_s": drain_s,
        "payments": len(stored),
        "accruals": int(psql(db, "SELECT count(*) FROM bonuses.ledger WHERE kind = 'accrual'")),
        "spends": int(psql(db, "SELECT count(*) FROM bonuses.ledger WHERE kind = 'spend'")),
        "balances_checked": len(users),
    }
    return problems, figures


def summarize(recorder, t0, duration):
    by_op = collections.defaultdict(list)
    errors = collections.Counter()
    for due, _, fin, op, error in recorder.results:
        by_op[op].append((fin - due) * 1000)
        if error:
            errors[op] += 1
    ops = {}
    for op, lat in sorted(by_op.items()):
        lat.sort()
        ops[op] = {"count": len(lat), "errors": errors[op], "p50_ms": round(percentile(lat, 50), 1),
                   "p99_ms": round(percentile(lat, 99), 1), "max_ms": round(lat[-1], 1)}
    all_lat = sorted((fin - due) * 1000 for due, _, fin, _, _ in recorder.results)
    return {
        "requests": len(recorder.results), "errors": sum(errors.values()),
        "achieved_rate": round(len(recorder.results) / duration, 2),
        "p50_ms": round(percentile(all_lat, 50), 1), "p99_ms": round(percentile(all_lat, 99), 1),
        "max_ms": round(all_lat[-1], 1) if all_lat else None, "operations": ops,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the traffic (default 10)")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second (default 20)")
    p.add_argument("--users", type=int, default=20, help="users registered (default 20)")
    p.add_argument("--seed", type=int, default=1, help="seed of the mix (default 1)")
    p.add_argument("--interval", type=float, default=60.0,
                   help="seconds per reported row (default 60)")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds of warm-up that growth is measured from (default one interval)")
    p.add_argument("--workers", type=int, default=16,
                   help="concurrent connections sending the scheduled requests (default 16)")
    p.add_argument("--sample-every", type=float, default=2.0, help="seconds between samples")
    p.add_argument("--drain-timeout", type=float, default=120.0,
                   help="seconds to wait for the last accruals before checking (default 120)")
    p.add_argument("--max-growth", type=float, default=10.0,
                   help="largest growth of RSS, fds or PostgreSQL connections allowed, in %% "
                        "(default 10)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON here")
    p.add_argument("--bin", default=os.path.join(ROOT, "target/release/detailing"),
                   help="the detailing binary (default target/release/detailing)")
    p.add_argument("--build", action="store_true", help="build the components first (up --build)")
    p.add_argument("--cache-dir", help="compiled-component cache (default detailing's own)")
    p.add_argument("--amqp-url", help="broker URL (default: a vhost of its own on 127.0.0.1:5672)")
    p.add_argument("--up-arg", action="append", default=[],
                   help="one more argument for `detailing up` (repeatable)")
    p.add_argument("--start-timeout", type=float, default=600.0,
                   help="seconds to wait for `Serving` (default 600, room for --build)")
    p.add_argument("--keep", action="store_true", help="keep the database, vhost and log")
    args = p.parse_args()
    if args.warmup is None:
        args.warmup = args.interval
    duration = args.minutes * 60
    if args.warmup + args.interval > duration + 1e-9:
        p.error("the run must be at least one interval longer than the warm-up")

    # SIGTERM (CI cancelling) cleans up like Ctrl-C.
    def interrupt(*_):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, interrupt)
    stack = Stack(args)
    failed = True
    wall0 = time.time()
    load_start = loadavg()
    try:
        try:
            stack.start()
            compiled, cached = stack.compiled()
            print(f"soak: {stack.base} (pid {stack.proc.pid}) serving after "
                  f"{stack.started_s:.1f} s ({compiled} components compiled, {cached} from "
                  f"the cache), database {stack.name}, log {stack.log_path}", flush=True)
            client = Client(stack.host, stack.port)
            rng = random.Random(args.seed)
            run_tag = f"{os.getpid()}"
            users = [User(i, run_tag) for i in range(args.users)]
            setup_started = time.monotonic()
            for u in users:
                setup_user(client, u, rng)
            _, catalog = expect(client.request("GET", "/api/cart/catalog", token=users[0].token),
                                200)
            prices = {c["id"]: kopecks(c["price"]) for c in catalog["items"]}
            durations = {c["id"]: c.get("duration_minutes", 0) for c in catalog["items"]}
            setup_s = time.monotonic() - setup_started
        except (SetupError, Unexpected, OSError, http.client.HTTPException) as e:
            print(f"soak: set-up failed: {e}", file=sys.stderr)
            print(stack.tail(), file=sys.stderr)
            return 2
        print(f"soak: {args.users} users registered, logged in, with a car and {PROMO_CODE} "
              f"in {setup_s:.1f} s; {args.rate:g} req/s for {args.minutes:g} min, seed "
              f"{args.seed}, load average {load_start[0]:.2f} {load_start[1]:.2f} "
              f"{load_start[2]:.2f}", flush=True)
        workload = Workload(users, prices, durations, args.seed)
        recorder = Recorder()
        t0 = drive(stack, workload, args, recorder)
        load_end = loadavg()
        if stack.proc.poll() is not None:
            print(f"soak: detailing exited ({stack.proc.returncode}) during the run",
                  file=sys.stderr)
        summary = summarize(recorder, t0, duration)
        grown = growth(recorder, args, duration)
        problems, books = check_books(stack, users, args)

        print(f"\nsummary: {summary['requests']} requests ({summary['achieved_rate']}/s), "
              f"{summary['errors']} errors, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} "
              f"ms, max {summary['max_ms']} ms")
        print(f"{'operation':>15} {'count':>6} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'max ms':>7}")
        for op, s in summary["operations"].items():
            print(f"{op:>15} {s['count']:>6} {s['errors']:>6} {s['p50_ms']:>7} {s['p99_ms']:>7} "
                  f"{s['max_ms']:>7}")
        if recorder.error_examples:
            print("first errors:")
            for e in recorder.error_examples:
                print(f"  {e}")
        steady = [r for r in recorder.rows if r["from_s"] >= args.warmup - 1e-9 and r["requests"]]
        if len(steady) >= 2:
            print(f"drift after warm-up: p50 {steady[0]['p50_ms']} -> {steady[-1]['p50_ms']} ms, "
                  f"p99 {steady[0]['p99_ms']} -> {steady[-1]['p99_ms']} ms (first -> last row)")
        growth_failed = growth_failures(grown, args.max_growth)
        labels = {"rss_kib": "RSS (KiB)", "fds_outside_pool": "fds without the pool's",
                  "pg_conns": "Postgres connections", "pg_outside_pool": "  outside the pool",
                  "pool_conns": "  in the host's pool"}
        print("growth, warm-up -> last interval (medians of the samples):")
        for key, g in grown.items():
            bad = "  <-- FAILED" if key in growth_failed else ""
            print(f"  {labels[key]:<24} {g['warm']:>7} -> {g['last']:>7} "
                  f"{g['growth_pct']:+6.1f} %{bad}")
        if recorder.rows:
            first, final = recorder.rows[0]["fd_kinds"], recorder.rows[-1]["fd_kinds"]
            print("  fds by kind, first -> last row: " + ", ".join(
                f"{k} {first.get(k, 0)} -> {final.get(k, 0)}"
                for k in sorted(set(first) | set(final))))
        print(f"books: {books['payments']} payments, {books['accruals']} accruals, "
              f"{books['spends']} spends, {books['balances_checked']} balances checked "
              f"(API = ledger = client), drained in {books['drain_wait_s']} s: "
              + ("OK" if not problems else "FAILED"))
        for problem in problems:
            print(f"  {problem}")
        print(f"load average at start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
              f"at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; "
              f"wall {time.time() - wall0:.0f} s")
        failed = bool(summary["errors"] or growth_failed or problems)
        print("soak: " + ("FAILED" if failed else "passed"))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({
                    "command": " ".join(sys.argv), "started": time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall0)),
                    "minutes": args.minutes, "rate": args.rate, "users": args.users,
                    "seed": args.seed, "start_s": round(stack.started_s, 1),
                    "components_compiled": compiled, "components_cached": cached,
                    "setup_s": round(setup_s, 1),
                    "load_start": load_start, "load_end": load_end,
                    "intervals": recorder.rows, "summary": summary, "growth": grown,
                    "books": books, "problems": problems,
                    "error_examples": recorder.error_examples, "passed": not failed,
                }, f, indent=2)
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    finally:
        stack.stop()
        stack.remove(keep_log=failed)
        if failed and os.path.exists(stack.log_path):
            print(f"soak: the host's log is kept at {stack.log_path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
