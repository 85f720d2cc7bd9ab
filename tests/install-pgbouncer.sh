#!/bin/sh
# PgBouncer for the pooler tests (tests/pgbouncer.py starts its own instance): installed
# from the system's packages when it is missing and this machine allows it (root with
# apt-get). Never fails: without PgBouncer its tests skip, and fail under CI=true.
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "pgbouncer is not installed and cannot be installed here (needs root and apt-get):" \
        "its tests will skip"
    exit 0
fi
echo "installing pgbouncer for the pooler tests"
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null; }
# The package lists may be missing or stale on a fresh machine.
install || { apt-get update -q >/dev/null && install; } ||
    echo "could not install pgbouncer: its tests will skip (and fail under CI=true)"
exit 0
