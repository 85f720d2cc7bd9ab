"""Reading a schema object by object, and naming every object two readings disagree on."""

from __future__ import annotations

import pgsource
import pytest
from sqlalchemy import Engine

from sqlmig.catalog import SchemaDifference, compare_schemas, read_schema
from sqlmig.database import new_engine

pytestmark = pytest.mark.integration

# One object of every kind read; roles are the cluster's, so privileges go to PUBLIC.
OBJECTS = """
CREATE SCHEMA app;
CREATE TYPE status AS ENUM ('todo', 'done');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);
CREATE TYPE span AS RANGE (subtype = float8);
CREATE SEQUENCE counter START 5;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO PUBLIC;
"""
# A table and what hangs on it.
TASKS = """
CREATE TABLE tasks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL DEFAULT 'untitled',
    state status,
    weight positive,
    UNIQUE (title)
);
CREATE INDEX tasks_state_idx ON tasks (state);
CREATE VIEW open_tasks AS SELECT id, title FROM tasks WHERE state = 'todo';
CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION touch();
CREATE POLICY readable ON tasks FOR SELECT USING (state = 'done');
COMMENT ON TABLE tasks IS 'work to do';
GRANT SELECT ON tasks TO PUBLIC;
"""
SCHEMA = OBJECTS + TASKS

CHANGES = {
    "a table": ("CREATE TABLE extra (id int)", "table public.extra: not there before"),
    "a column's type": (
        "ALTER TABLE tasks ALTER weight TYPE integer",
        "column public.tasks.weight: positive NULL before, integer NULL after",
    ),
    "a column's nullability": (
        "ALTER TABLE tasks ALTER state SET NOT NULL",
        "column public.tasks.state: status NULL before, status NOT NULL after",
    ),
    "a column's default": (
        "ALTER TABLE tasks ALTER title DROP DEFAULT",
        "column public.tasks.title: text NOT NULL DEFAULT 'untitled'::text before, "
        "text NOT NULL after",
    ),
    "a constraint": (
        "ALTER TABLE tasks DROP CONSTRAINT tasks_title_key",
        "constraint tasks_title_key on public.tasks: there before, gone after (UNIQUE (title))",
    ),
    "an index": (
        "DROP INDEX tasks_state_idx",
        "index public.tasks_state_idx: there before, gone after "
        "(CREATE INDEX tasks_state_idx ON public.tasks USING btree (state))",
    ),
    "a sequence": (
        "ALTER SEQUENCE counter INCREMENT 2",
        "sequence public.counter: bigint start 5 increment 1",
    ),
    "a view": (
        "CREATE OR REPLACE VIEW open_tasks AS SELECT id, title FROM tasks WHERE state = 'done'",
        "view public.open_tasks differs:",
    ),
    "a function": (
        "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.title = 'x'; RETURN NEW; END $$",
        "function public.touch() differs:",
    ),
    "a trigger": ("DROP TRIGGER tasks_touch ON tasks", "trigger tasks_touch on public.tasks:"),
    "an enum value": (
        "ALTER TYPE status ADD VALUE 'archived'",
        "type public.status: enum ('todo', 'done') before, enum ('todo', 'done', 'archived') after",
    ),
    "a domain": (
        "ALTER DOMAIN positive SET DEFAULT 1",
        "type public.positive: domain over integer CONSTRAINT positive_check CHECK ((VALUE > 0)) "
        "before, domain over integer DEFAULT 1",
    ),
    "a composite type": (
        "ALTER TYPE pair ADD ATTRIBUTE c date",
        "type public.pair: composite (a integer, b text) before, "
        "composite (a integer, b text, c date) after",
    ),
    "a comment": (
        "COMMENT ON TABLE tasks IS 'chores'",
        "comment on table public.tasks: work to do before, chores after",
    ),
    "privileges": ("REVOKE SELECT ON tasks FROM PUBLIC", "privileges on table public.tasks:"),
    "default privileges": (
        "ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE SELECT ON TABLES FROM PUBLIC",
        "default privileges on tables of role",
    ),
    "a policy": ("DROP POLICY readable ON tasks", "policy readable on public.tasks:"),
    "a schema": ("DROP SCHEMA app", "schema app: there before, gone after"),
    "row level security": (
        "ALTER TABLE tasks ENABLE ROW LEVEL SECURITY",
        "table public.tasks: (nothing) before, row level security after",
    ),
}


def execute(engine: Engine, script: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(script)


def read(engine: Engine, **exclude: object) -> dict[str, str]:
    with engine.connect() as conn:
        return read_schema(conn, **exclude)  # type: ignore[arg-type]


@pytest.fixture
def schema_engine(engine: Engine) -> Engine:
    execute(engine, SCHEMA)
    return engine


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_each_kind_of_change_is_named_by_its_object(schema_engine: Engine, change: str) -> None:
    script, expected = CHANGES[change]
    before = read(schema_engine)
    execute(schema_engine, script)
    differences = [str(d) for d in compare_schemas(before, read(schema_engine))]
    assert any(text.startswith(expected) for text in differences), differences


def test_two_databases_made_the_same_way_read_the_same(pg_admin_url: str) -> None:
    readings = []
    for _ in range(2):
        with pgsource.fresh_database(pg_admin_url) as url:
            engine = new_engine(url)
            try:
                execute(engine, "CREATE TABLE padding (id int); DROP TABLE padding")  # other OIDs
                execute(engine, SCHEMA)
                readings.append(read(engine))
            finally:
                engine.dispose()
    assert readings[0] == readings[1]
    assert compare_schemas(*readings) == []


def test_a_table_dropped_and_created_again_reads_the_same(schema_engine: Engine) -> None:
    before = read(schema_engine)
    execute(schema_engine, "DROP TABLE tasks CASCADE")
    execute(schema_engine, TASKS)
    assert compare_schemas(before, read(schema_engine)) == []


def test_an_excluded_table_is_left_out_with_everything_on_it(engine: Engine) -> None:
    execute(
        engine,
        "CREATE SCHEMA track; CREATE TABLE track.log (v text PRIMARY KEY CHECK (v <> ''));"
        "CREATE INDEX log_v ON track.log (lower(v)); COMMENT ON TABLE track.log IS 'x'",
    )
    reading = read(engine, exclude_tables=[("track", "log")], exclude_schemas=["track"])
    assert reading and not any("track" in subject for subject in reading)


def test_the_current_schema_stands_for_an_unqualified_excluded_table(engine: Engine) -> None:
    execute(engine, "CREATE TABLE schema_migrations (version text PRIMARY KEY)")
    reading = read(engine, exclude_tables=[(None, "schema_migrations")])
    assert not any("schema_migrations" in subject for subject in reading)


def test_what_an_extension_brings_is_the_extension_alone(engine: Engine) -> None:
    with engine.connect() as conn:
        # The embedded server ships vector, Debian's contrib pgcrypto and the like.
        name = conn.exec_driver_sql(
            "SELECT name FROM pg_available_extensions WHERE installed_version IS NULL "
            "AND name IN ('pgcrypto', 'vector', 'hstore', 'citext') ORDER BY name LIMIT 1"
        ).scalar()
    if name is None:
        pytest.skip("no extension with functions and types to install on this server")
    before = read(engine)
    execute(engine, f'CREATE EXTENSION "{name}"')
    subjects = [d.subject for d in compare_schemas(before, read(engine))]
    assert f"extension {name}" in subjects
    assert set(subjects) <= {f"extension {name}", f"comment on extension {name}"}


def test_a_long_difference_is_shown_as_a_diff() -> None:
    difference = SchemaDifference("function f()", "a\nb\nc", "a\nB\nc")
    assert str(difference) == (
        "function f() differs:\n    --- before\n    +++ after\n    @@ -1,3 +1,3 @@\n"
        "     a\n    -b\n    +B\n     c"
    )
