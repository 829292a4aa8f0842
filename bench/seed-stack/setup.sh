#!/bin/sh
# Makes or refreshes the FastAPI reference stack's venv at target/bench/seed-venv (run from anywhere).
# Idempotent: re-installs only when requirements.txt changed since the last install.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/target/bench/seed-venv"
requirements="$root/bench/seed-stack/requirements.txt"
stamp="$venv/.requirements.sha256"
python=${PYTHON:-python3}

want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x "$venv/bin/uvicorn" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "seed venv up to date: $venv"
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi
rm -f "$stamp"
"$venv/bin/pip" install --disable-pip-version-check --quiet -r "$requirements"
echo "$want" > "$stamp"
echo "seed venv ready: $venv"
