"""Profile one sqlmig command of the bench's workload with pyinstrument.

    .venv/bin/python bench/profiling.py up 1000        # sqlmig up, 1000 migrations, fresh db
    .venv/bin/python bench/profiling.py noop 1000      # no-op up, 1000 recorded (baseline)
    .venv/bin/python bench/profiling.py status 10000   # status, 10,000 recorded (baseline)
    .venv/bin/python bench/profiling.py validate 100000  # validate, 100,000 files
    .venv/bin/python bench/profiling.py big 50         # up of one 50 MB script
    .venv/bin/python bench/profiling.py help 0         # sqlmig --help

sqlmig runs from the project's .venv as in the bench; pyinstrument comes from
bench/.venv (``sh bench/venv.sh``), appended to the child's path so that it never
shadows the project's SQLAlchemy or psycopg. Writes bench/profiles/WHAT-N.txt (and .html
with PROFILE_HTML=1), and prints the text profile.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import server as pg
import workload

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SQLMIG = str(ROOT / ".venv" / "bin" / "sqlmig")
OUT = ROOT / "bench" / "profiles"

BOOT = """\
import sys
sys.path.append({site!r})
from pyinstrument.__main__ import main
sys.argv = ["pyinstrument", *sys.argv[1:]]
main()
"""


def pyinstrument_site() -> str:
    found = glob.glob(str(ROOT / "bench" / ".venv" / "lib" / "python*" / "site-packages"))
    if not found:
        sys.exit("bench/.venv is missing: run `sh bench/venv.sh python3`")
    return found[0]


def profiled(args: list[str], env: dict[str, str], name: str, interval: float) -> None:
    """Run ``python -m sqlmig ARGS`` under pyinstrument; text (and, with
    PROFILE_HTML=1, html) in bench/profiles/."""
    OUT.mkdir(exist_ok=True)
    boot = BOOT.format(site=pyinstrument_site())
    renderers = [("text", "txt")] + ([("html", "html")] if os.environ.get("PROFILE_HTML") else [])
    for renderer, suffix in renderers:
        out = OUT / f"{name}.{suffix}"
        command = [PYTHON, "-c", boot, "-r", renderer, "-i", str(interval), "-o", str(out)]
        subprocess.run(
            [*command, "-m", "sqlmig", *args],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    print((OUT / f"{name}.txt").read_text())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["up", "noop", "status", "validate", "big", "help"])
    parser.add_argument("n", type=int)
    parser.add_argument("--interval", type=float, default=0.0002)
    a = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    work = Path(tempfile.mkdtemp(prefix="sqlmig-profile-"))
    server = pg.start()
    try:
        name = f"{a.what}-{a.n}"
        if a.what == "help":
            profiled(["--help"], env, name, a.interval)
            return 0
        if a.what == "validate":
            d = workload.sqlmig_dir(work / "m", a.n // 2)
            profiled(["--dir", str(d), "validate"], env, name, a.interval)
            return 0
        with pg.fresh_database(server.admin) as url:
            env["DATABASE_URL"] = pg.libpq(url)
            if a.what == "big":
                d = work / "big"
                workload.big_script_dir(d, a.n * 1_000_000)
            else:
                d = workload.sqlmig_dir(work / "m", a.n)
            if a.what in ("noop", "status"):
                # Recorded as applied without running them: all that status and a no-op
                # up look at, and quick for 10,000.
                last = workload.last_version(a.n)
                baseline = [SQLMIG, "--dir", str(d), "-q", "baseline", last]
                subprocess.run(baseline, env=env, check=True)
            command = "status" if a.what == "status" else "up"
            profiled(["--dir", str(d), command], env, name, a.interval)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
