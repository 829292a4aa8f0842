#!/usr/bin/env python3
"""Payment -> bonus latency at a steady rate, and the relay's drain throughput.

Against a running `detailing up` (relay inside, default) on a database of its own:

    python3 bench/payment_bonus.py latency --rate 50 --seconds 20
    python3 bench/payment_bonus.py throughput --events 5000   # needs `detailing up --no-relay`

`latency` seeds orders straight into the database (they are not what is measured), pays them
through POST /api/payments at a fixed rate, waits for every accrual, and reports the time from
each payment's commit (payments.created_at) to its accrual's commit (bonuses.ledger.created_at),
both PostgreSQL timestamps, so client scheduling does not enter the number.

`throughput` seeds paid payments with unsent outbox rows straight into the database, then
starts `detailing relay` and times how long it takes until every event is published (sent_at)
and accrued (ledger rows): the relay's end-to-end rate with bonus-service in the loop.

Only the Python standard library; tokens are minted with the app's development secret.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def psql(db_url, sql):
    out = subprocess.run(["psql", db_url, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def psql_stdin(db_url, sql):
    """For statements too long for a command line."""
    subprocess.run(["psql", db_url, "-v", "ON_ERROR_STOP=1", "-Aq", "-f", "-"],
                   input=sql, check=True, capture_output=True, text=True)


def token(user_id, secret):
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=")
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": user_id, "role": "customer", "iat": now,
                             "exp": now + 3600}).encode())
    signing_input = header + b"." + claims
    signature = b64(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def dev_secret(variable="jwt_secret", file="dev-jwt-secret"):
    env = os.environ.get("SPIN_VARIABLE_" + variable.upper())
    if env:
        return env
    with open(os.path.join(ROOT, ".detailing", file)) as f:
        return f.read().strip()


def signed_outbox_rows(user_id, count):
    """VALUES rows (event_id, order_id, body, signature) of payment events signed as
    payment-service signs them, with the key the app runs with."""
    key = dev_secret("event_signing_key", "dev-event-signing-key").encode()
    rows = []
    for _ in range(count):
        event_id, order_id = str(uuid.uuid4()), str(uuid.uuid4())
        body = json.dumps({"order_id": order_id, "user_id": user_id, "amount": 1500.0,
                           "event_id": event_id}, separators=(",", ":"))
        signature = "hmac-sha256=" + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        rows.append(f"('{event_id}', '{order_id}', '{body}', '{signature}')")
    return ",\n".join(rows)


def seed_orders(db_url, user_id, count):
    psql(db_url, f"""
        INSERT INTO orders.orders
            (car_id, user_id, desired_time, ends_at, description, total_kopecks)
        SELECT gen_random_uuid(), '{user_id}', now() + interval '1 day',
               now() + interval '1 day 30 minutes', 'bench', 150000
        FROM generate_series(1, {count})""")
    ids = psql(db_url, f"SELECT id FROM orders.orders WHERE user_id = '{user_id}' ORDER BY id")
    return ids.split()


def pay(base, bearer, order_id, failures):
    body = json.dumps({"order_id": order_id, "payment_method": "card"}).encode()
    request = urllib.request.Request(f"{base}/api/payments", data=body, method="POST", headers={
        "content-type": "application/json", "authorization": f"Bearer {bearer}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 201:
                failures.append(response.status)
    except Exception as error:  # noqa: BLE001 - any failure counts as one
        failures.append(str(error))


def latency(args):
    user_id = str(uuid.uuid4())
    bearer = token(user_id, dev_secret())
    total = args.rate * args.seconds
    orders = seed_orders(args.db, user_id, total)
    failures = []
    threads = []
    started = time.monotonic()
    for i, order_id in enumerate(orders):
        due = started + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=pay, args=(args.base, bearer, order_id, failures))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    drive = time.monotonic() - started
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = int(psql(args.db, f"""SELECT count(*) FROM bonuses.ledger
                                     WHERE kind = 'accrual' AND user_id = '{user_id}'"""))
        if done >= total - len(failures):
            break
        time.sleep(0.2)
    stats = psql(args.db, f"""
        SELECT count(*),
               round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY s)::numeric, 1),
               round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY s)::numeric, 1),
               round(1000 * max(s)::numeric, 1)
        FROM (SELECT extract(epoch FROM l.created_at - p.created_at) AS s
              FROM payments.payments p
              JOIN payments.outbox o ON o.payment_id = p.id
              JOIN bonuses.ledger l ON l.event_id = o.event_id
              WHERE p.user_id = '{user_id}') t""")
    count, p50, p99, worst = stats.split("|")
    print(json.dumps({"scenario": "payment->bonus latency", "rate_per_s": args.rate,
                      "payments": total, "drive_seconds": round(drive, 1),
                      "failed_payments": len(failures), "accrued": int(count),
                      "p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(worst)}))


def throughput(args):
    user_id = str(uuid.uuid4())
    psql_stdin(args.db, f"""
        WITH e (event_id, order_id, body, signature) AS (
          VALUES {signed_outbox_rows(user_id, args.events)}),
        p AS (
          INSERT INTO payments.payments (order_id, user_id, amount_kopecks, method, status)
          SELECT order_id::uuid, '{user_id}', 150000, 'card', 'succeeded' FROM e
          RETURNING id, order_id, user_id, amount_kopecks)
        INSERT INTO payments.outbox
          (event_id, payment_id, order_id, user_id, amount_kopecks, body, signature)
        SELECT e.event_id::uuid, p.id, p.order_id, p.user_id, p.amount_kopecks, e.body, e.signature
        FROM p JOIN e ON e.order_id::uuid = p.order_id;""")
    env = dict(os.environ, SPIN_VARIABLE_POSTGRES_URL=args.db)
    relay = subprocess.Popen(
        [os.path.join(ROOT, "target", "release", "detailing"), "--manifest",
         os.path.join(ROOT, "spin.toml"), "relay", "--bonus-url", f"{args.base}/api/bonuses/events"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    published_at = None
    try:
        deadline = started + 600
        while time.monotonic() < deadline:
            unsent = int(psql(args.db, f"""SELECT count(*) FROM payments.outbox
                                           WHERE user_id = '{user_id}' AND sent_at IS NULL"""))
            if unsent == 0 and published_at is None:
                published_at = time.monotonic() - started
            accrued = int(psql(args.db, f"""SELECT count(*) FROM bonuses.ledger
                                            WHERE user_id = '{user_id}'"""))
            if accrued >= args.events:
                break
            time.sleep(0.1)
        accrued_at = time.monotonic() - started
    finally:
        relay.terminate()
        relay.wait()
    print(json.dumps({"scenario": "relay drain", "events": args.events,
                      "published_seconds": round(published_at or accrued_at, 2),
                      "published_per_s": round(args.events / (published_at or accrued_at)),
                      "accrued_seconds": round(accrued_at, 2),
                      "accrued_per_s": round(args.events / accrued_at)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["latency", "throughput"])
    parser.add_argument("--base", default="http://127.0.0.1:3000")
    parser.add_argument("--db", default=os.environ.get(
        "SPIN_VARIABLE_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/detailing?sslmode=disable"))
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    {"latency": latency, "throughput": throughput}[args.scenario](args)


if __name__ == "__main__":
    sys.exit(main())
