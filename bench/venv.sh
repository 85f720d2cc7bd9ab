#!/bin/sh
# Create or refresh bench/.venv (peers and profiler) when requirements.txt changed.
# Usage: sh bench/venv.sh PYTHON
set -eu
python="${1:-python3}"
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.installed"
if [ -f "$stamp" ] && [ "$stamp" -nt "$here/requirements.txt" ]; then
    exit 0
fi
test -x "$venv/bin/python" || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
touch "$stamp"
