"""How fast sqlmig splits a script into statements, against libpg_query's scanner.

    .venv/bin/python bench/lexer.py                    # 20 MB corpora, best of 5
    .venv/bin/python bench/lexer.py --mb 2 --repeat 3  # a quick look
    .venv/bin/python bench/lexer.py --baseline HEAD~3  # "before" is another revision

Four corpora are generated from fixed seeds, so every run lexes the same text:
DDL migrations with comments; the multi-row INSERT script of bench/workload.py
(case 6 of the bench); PL/pgSQL functions with dollar-quoted bodies; and SQL-standard
``BEGIN ATOMIC`` function bodies. On each, the script is timed with
``split_statements`` as it is now, as it is at the baseline revision (default
``main``, loaded from ``git show`` into a temporary module), and with
``pglast.parser.scan``, which runs PostgreSQL's own scanner in C but builds a Python
object per token. Every figure is the best of N runs in this process, the three
interleaved, with the garbage collector paused during each; MB are 10^6 bytes of
UTF-8. Before timing, the statements found now are checked against the baseline's
and, on the first statements, against ``pglast.split`` (PostgreSQL's parser).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pglast
import pglast.parser
from sqlmig import sqlscript

ROOT = Path(__file__).resolve().parent.parent


# --- corpora ----------------------------------------------------------------------

TYPES = ["bigint", "integer", "text", "varchar(200)", "numeric(12, 2)", "boolean", "jsonb"]
DEFAULTS = ["", "", " NOT NULL", " DEFAULT 0", " NOT NULL DEFAULT ''", " DEFAULT now()"]
WORDS = ["order", "customer", "invoice", "payment", "shipment", "account", "audit", "note"]


def ddl(size: int, rng: random.Random) -> str:
    """Migrations as people write them: comments, tables, indexes, constraints, data fixes."""
    parts: list[str] = []
    written = 0
    i = 0
    while written < size:
        i += 1
        word = rng.choice(WORDS)
        table = f"{word}s_{i}"
        columns = [
            f"    {rng.choice(WORDS)}_{k} {rng.choice(TYPES)}{rng.choice(DEFAULTS)}"
            for k in range(rng.randint(3, 9))
        ]
        block = (
            f"-- Migration {i:05d}: add the {word} table.\n"
            f"-- Ticket APP-{rng.randint(100, 9999)}; reviewed by {rng.choice(WORDS)}.\n"
            f"CREATE TABLE IF NOT EXISTS {table} (\n"
            "    id bigserial PRIMARY KEY,\n"
            f"    owner_id bigint NOT NULL REFERENCES owners (id) ON DELETE CASCADE,\n"
            + ",\n".join(columns)
            + ",\n    status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'done')),\n"
            "    created_at timestamptz NOT NULL DEFAULT now()\n"
            ");\n"
            f"/* Lookups by owner, newest first; see APP-{rng.randint(100, 9999)}. */\n"
            f"CREATE INDEX {table}_owner_idx ON {table} (owner_id, created_at DESC);\n"
            f"ALTER TABLE {table} ADD COLUMN archived_at timestamptz;\n"
            f"COMMENT ON TABLE {table} IS 'One row per {word}; it''s kept for audits.';\n"
            f"UPDATE {table} SET status = 'done' WHERE archived_at IS NOT NULL;  -- backfill\n"
            f"INSERT INTO settings (key, value) VALUES ('{table}.enabled', 'true')\n"
            "    ON CONFLICT (key) DO NOTHING;\n"
            f'GRANT SELECT, INSERT, UPDATE ON {table} TO "app-user";\n\n'
        )
        parts.append(block)
        written += len(block)
    return "".join(parts)


def inserts(size: int) -> str:
    """bench/workload.py's big script (case 6): multi-row INSERTs of md5 strings."""
    sys.path.insert(0, str(ROOT / "bench"))
    import workload

    with tempfile.TemporaryDirectory() as tmp:
        return workload.big_script_dir(Path(tmp), size).read_text(encoding="utf-8")


def plpgsql(size: int, rng: random.Random) -> str:
    """Trigger functions and DO blocks whose bodies are dollar-quoted PL/pgSQL."""
    parts: list[str] = []
    written = 0
    i = 0
    while written < size:
        i += 1
        word = rng.choice(WORDS)
        checks = "".join(
            f"    IF NEW.{rng.choice(WORDS)}_{k} IS NULL THEN\n"
            f"        RAISE EXCEPTION '{word} %: field {k} is required; got %', NEW.id, NEW;\n"
            "    END IF;\n"
            for k in range(rng.randint(1, 5))
        )
        block = (
            f"CREATE OR REPLACE FUNCTION {word}_touch_{i}() RETURNS trigger\n"
            "LANGUAGE plpgsql AS $body$\n"
            "DECLARE\n"
            "    n integer := 0;  -- rows seen\n"
            "BEGIN\n"
            f"{checks}"
            "    NEW.updated_at := now();\n"
            f"    SELECT count(*) INTO n FROM {word}s WHERE owner_id = NEW.owner_id;\n"
            "    PERFORM pg_notify('changes', format('%s;%s', TG_TABLE_NAME, NEW.id));\n"
            "    RETURN NEW;\n"
            "END;\n"
            "$body$;\n"
            f"CREATE TRIGGER {word}_touch_{i} BEFORE UPDATE ON {word}s\n"
            f"    FOR EACH ROW EXECUTE FUNCTION {word}_touch_{i}();\n"
            "DO $$\n"
            "BEGIN\n"
            f"    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'r{i}') THEN\n"
            f"        CREATE ROLE r{i};\n"
            "    END IF;\n"
            "END\n"
            "$$;\n\n"
        )
        parts.append(block)
        written += len(block)
    return "".join(parts)


def atomic(size: int, rng: random.Random) -> str:
    """SQL-standard function bodies (BEGIN ATOMIC ... END) with CASE, parentheses, strings."""
    parts: list[str] = []
    written = 0
    i = 0
    while written < size:
        i += 1
        word = rng.choice(WORDS)
        block = (
            f"CREATE OR REPLACE FUNCTION {word}_grade_{i}(a integer, b text DEFAULT 'x;y')\n"
            "RETURNS text LANGUAGE sql IMMUTABLE\n"
            "BEGIN ATOMIC\n"
            "    -- grade the value; ties go up\n"
            f"    INSERT INTO {word}_log (v, note) VALUES (a, 'graded; ' || b);\n"
            "    SELECT CASE WHEN a > 90 THEN 'A' WHEN a > 75 THEN 'B'\n"
            "                ELSE (CASE WHEN b = 'end' THEN 'E' ELSE 'C' END) END\n"
            f"    FROM {word}s AS t WHERE (t.id, t.kind) = (a, 'case;');\n"
            "END;\n"
            f"CREATE PROCEDURE {word}_reset_{i}() LANGUAGE sql\n"
            f"BEGIN ATOMIC DELETE FROM {word}_log WHERE v < {rng.randint(0, 99)}; END;\n"
            f"SELECT {word}_grade_{i}({rng.randint(0, 100)});\n\n"
        )
        parts.append(block)
        written += len(block)
    return "".join(parts)


def corpora(mb: float) -> dict[str, str]:
    size = int(mb * 1_000_000)
    return {
        "ddl": ddl(size, random.Random(1)),
        "inserts": inserts(size),
        "plpgsql": plpgsql(size, random.Random(2)),
        "atomic": atomic(size, random.Random(3)),
    }


# --- timing -----------------------------------------------------------------------


def baseline_module(revision: str) -> ModuleType:
    """sqlscript.py as of ``revision``, imported from a temporary file."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/sqlmig/sqlscript.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "sqlscript_baseline.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("sqlscript_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks its module up there
    spec.loader.exec_module(module)
    return module


def best_of(
    functions: dict[str, Callable[[str], object]], text: str, repeat: int
) -> dict[str, float]:
    """Best wall time of each function on text, the functions interleaved.

    The garbage collector is paused during each call: otherwise its passes over the
    objects a call creates (pglast's million tokens) are most of what is timed.
    """
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeat):
        for name, function in functions.items():
            gc.collect()
            gc.disable()
            started = time.perf_counter()
            result = function(text)
            elapsed = time.perf_counter() - started
            gc.enable()
            del result
            best[name] = min(best[name], elapsed)
    return best


def check(name: str, text: str, old: ModuleType | None, prefix_statements: int) -> int:
    """Compare the statements found now with the baseline's and pglast's; return the count."""
    new = sqlscript.split_statements(text)
    if old is not None and [(s.sql, s.start) for s in old.split_statements(text)] != [
        (s.sql, s.start) for s in new
    ]:
        sys.exit(f"{name}: the statements differ from the baseline's")
    head = text[: new[min(prefix_statements, len(new)) - 1].end]
    slices = pglast.split(head, only_slices=True)
    if [s.start for s in slices] != [s.start for s in new[: len(slices)]]:
        sys.exit(f"{name}: the statements differ from pglast.split's")
    return len(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=20, help="size of each corpus (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (the best counts)")
    parser.add_argument("--baseline", default="main", help="git revision for 'before' ('' = none)")
    args = parser.parse_args()

    old = baseline_module(args.baseline) if args.baseline else None
    print(f"Python {sys.version.split()[0]}, pglast {pglast.__version__}, best of {args.repeat}")
    header = f"{'corpus':<8} {'MB':>6} {'stmts':>7}"
    if old is not None:
        header += f" {'before':>10}"
    header += f" {'after':>10} {'pglast':>10} {'after/pglast':>12}"
    print(header)
    for name, text in corpora(args.mb).items():
        size = len(text.encode("utf-8")) / 1e6
        statements = check(name, text, old, 2000)
        functions: dict[str, Callable[[str], object]] = {}
        if old is not None:
            functions["before"] = old.split_statements
        functions["after"] = sqlscript.split_statements
        functions["pglast"] = pglast.parser.scan
        best = best_of(functions, text, args.repeat)
        rate = {k: size / v for k, v in best.items()}
        line = f"{name:<8} {size:>6.1f} {statements:>7}"
        if old is not None:
            line += f" {rate['before']:>6.1f} MB/s"
        line += f" {rate['after']:>6.1f} MB/s {rate['pglast']:>6.1f} MB/s"
        line += f" {rate['after'] / rate['pglast']:>11.2f}x"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
