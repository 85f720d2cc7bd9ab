#!/bin/sh
# Create or refresh the bench's virtual environments when what they are made from changed.
# Usage: sh bench/venv.sh PYTHON
#   bench/.venv               the peers and the profiler (requirements.txt)
#   bench/.venv-typer-0.28    sqlmig (editable) with typer 0.28, the last before pydantic
#   bench/.venv-typer-latest  sqlmig (editable) with the newest typer pip can install
# Case 4 times sqlmig's start-up in both typer environments.
set -eu
python="${1:-python3}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

# make_venv DIR NEWER_THAN... -- PIP_INSTALL_ARGS...: (re)install unless DIR's stamp is
# newer than every file named before "--".
make_venv() {
    venv="$1"
    shift
    fresh=yes
    while [ "$1" != "--" ]; do
        if [ ! -f "$venv/.installed" ] || [ ! "$venv/.installed" -nt "$1" ]; then
            fresh=no
        fi
        shift
    done
    shift
    if [ "$fresh" = yes ]; then
        return 0
    fi
    test -x "$venv/bin/python" || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$@"
    touch "$venv/.installed"
}

make_venv "$here/.venv" "$here/requirements.txt" -- -r "$here/requirements.txt"
make_venv "$here/.venv-typer-0.28" "$root/pyproject.toml" "$here/venv.sh" -- \
    -e "$root" "typer>=0.12,<0.29"
make_venv "$here/.venv-typer-latest" "$root/pyproject.toml" "$here/venv.sh" -- \
    --upgrade -e "$root" typer
