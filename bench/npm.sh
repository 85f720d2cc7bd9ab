#!/bin/sh
# Install the bench's npm peers (dbmate, pinned by bench/package-lock.json) into
# bench/node_modules when the lock file changed. Usage: sh bench/npm.sh
# `npm install --no-save` rather than `npm ci`: npm writes only this platform's binary
# package into the lock file, and `npm ci` then refuses it as out of sync; install
# takes the locked versions and checksums and adds the binary for another platform
# from dbmate's own exact pins, without touching the lock file.
# Never fails: without npm or the registry the bench runs without dbmate, and its
# cells show the reason, kept in bench/.npm-install.log.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
stamp="$here/node_modules/.installed"
log="$here/.npm-install.log"
if [ -f "$stamp" ] && [ "$stamp" -nt "$here/package-lock.json" ] &&
    [ "$stamp" -nt "$here/package.json" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "npm is not installed" >"$log"
    echo "bench: npm is not installed: the bench runs without dbmate" >&2
    exit 0
fi
if (cd "$here" && npm install --no-save --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    rm -f "$log"
    touch "$stamp"
else
    echo "bench: npm install failed, the bench runs without dbmate (bench/.npm-install.log):" >&2
    tail -n 5 "$log" >&2
fi
exit 0
