#!/usr/bin/env bash
# Schemathesis against the running app: every operation of /openapi.json, all checks, the
# stateful phase included, with a valid bearer token. Exits non-zero on any failure.
#
#   tests/schemathesis/run.sh                      # the bounded run CI makes (fixed seed)
#   tests/schemathesis/run.sh --max-examples 200   # a longer run; any schemathesis option
#                                                  # given here is added to (and wins over)
#                                                  # the bounded defaults
#
# It builds `detailing` and the components, makes a database of its own on the local
# PostgreSQL (dropped at the end), serves the app on a free port, registers and logs in a
# user, and runs the schemathesis pinned in requirements.txt from a virtualenv under target/
# (made again whenever requirements.txt changes). See docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
here=tests/schemathesis

# The bounded run: a fixed seed and a few examples per operation keep it to a few minutes.
SEED=${SCHEMATHESIS_SEED:-20261207}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-10}

venv=target/schemathesis-venv
stamp="$venv/requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing schemathesis into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

# The binary as the test command builds it: `cargo build -p detailing` alone resolves features
# for that package only and would rebuild most dependencies after a workspace test run.
cargo test --release --workspace --no-run
target/release/detailing build

work=$(mktemp -d)
db="detailing_schemathesis_$(date +%s)_$$"
admin_url=postgres://postgres@127.0.0.1:5432/postgres
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    psql "$admin_url" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql "$admin_url" -qAtc "CREATE DATABASE $db" >/dev/null
touch "$work/stdout" "$work/stderr"

# Secrets of this run only; bcrypt at its cheapest allowed cost keeps register/login fast.
SPIN_VARIABLE_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable" \
SPIN_VARIABLE_JWT_SECRET="schemathesis-$(head -c 24 /dev/urandom | base64)" \
SPIN_VARIABLE_RELAY_TOKEN="schemathesis-relay-$(head -c 24 /dev/urandom | base64)" \
SPIN_VARIABLE_EVENT_SIGNING_KEY="schemathesis-events-$(head -c 24 /dev/urandom | base64)" \
SPIN_VARIABLE_BCRYPT_COST=10 \
    target/release/detailing up --listen 127.0.0.1:0 \
        --cache-dir target/test-compile-cache \
        >"$work/stdout" 2>"$work/stderr" &
server=$!

base=""
for _ in $(seq 1 240); do
    base=$(sed -n 's/^Serving \(http[^ ]*\).*/\1/p' "$work/stdout" | head -n1)
    [ -n "$base" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$work/stderr" >&2
        echo "detailing up exited before serving" >&2
        exit 1
    fi
    sleep 0.5
done
if [ -z "$base" ]; then
    tail -n 50 "$work/stderr" >&2
    echo "detailing up did not start serving in 120 s" >&2
    exit 1
fi
base=${base%/}
echo "app at $base"

email="schemathesis-$$@example.com"
password="schemathesis-password"
curl -fsS -X POST "$base/api/users/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\",\"full_name\":\"Schemathesis\",\"phone_number\":\"+79991234567\"}" \
    >/dev/null
token=$(curl -fsS -X POST "$base/api/users/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

# One worker: Hypothesis describes strategies by parsing their source with `ast`, and
# CPython 3.11's parser is not safe to call from two threads at once ("AST constructor
# recursion depth mismatch", reported as a runtime error of the operation being generated).
status=0
"$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
    --url "$base" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --header "Authorization: Bearer $token" \
    --seed "$SEED" \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --report junit --report-dir target/schemathesis-report \
    "$@" || status=$?

if [ "$status" -ne 0 ]; then
    echo "--- the app's log (last 40 lines) ---" >&2
    tail -n 40 "$work/stderr" >&2
fi
exit "$status"
