"""What ``sqlmig dump`` takes out of pg_dump's output: only what is not the schema."""

from __future__ import annotations

from sqlmig.dump import without_noise


def test_a_server_builds_column_stamps_go_and_real_column_options_stay() -> None:
    dump = (
        "-- Dumped from database version 15.19\n"
        "CREATE TABLE public.t (\n    id integer\n);\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN id SET (pg_attver=3277399936);\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN a SET (n_distinct=5, pg_attver=12, x=1);\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN b SET (n_distinct=5);\n"
    )

    assert without_noise(dump) == (
        "CREATE TABLE public.t (\n    id integer\n);\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN a SET (n_distinct=5, x=1);\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN b SET (n_distinct=5);\n"
    )
