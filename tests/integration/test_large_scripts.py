"""A script longer than runner.GROUP_CHARS goes to the server in pieces of whole
statements: the run must be the same as for one query string (one transaction, every
row, nothing on failure) and a failure must still be located in the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tables, write
from sqlalchemy import Engine, text

from sqlmig.errors import MigrationError
from sqlmig.migrator import Migrator
from sqlmig.sink import GROUP_CHARS

pytestmark = pytest.mark.integration

# One INSERT of a literal this long; four of them make a script of several pieces.
FILLER = 300_000


def big_script(inserts: int, *, failing: str | None = None, at: int = 0) -> str:
    """CREATE TABLE, then ``inserts`` INSERTs of a long literal; ``failing`` (a line of
    SQL) is put after the INSERT number ``at`` (0: before the first)."""
    lines = ["CREATE TABLE big (id int PRIMARY KEY, v text);"]
    for i in range(1, inserts + 1):
        if failing is not None and i - 1 == at:
            lines.append(failing)
        lines.append(f"INSERT INTO big VALUES ({i}, '{'x' * FILLER}');  -- row {i}")
    if failing is not None and at == inserts:
        lines.append(failing)
    return "\n".join(lines) + "\n"


def rows(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM big ORDER BY id")).scalars())


def test_a_script_sent_in_pieces_runs_every_statement(engine: Engine, tmp_path: Path) -> None:
    script = big_script(8)
    assert len(script) > 2 * GROUP_CHARS  # three pieces at least
    folder = write(tmp_path / "migrations", {"0001_big.up.sql": script})

    result = Migrator(engine, folder).up()

    assert [r.version for r in result.migrations] == ["0001"]
    assert rows(engine) == list(range(1, 9))
    with engine.connect() as conn:
        lengths = conn.execute(text("SELECT DISTINCT length(v) FROM big")).scalars().all()
    assert lengths == [FILLER]


@pytest.mark.parametrize("at", [0, 4, 8], ids=["first-piece", "middle-piece", "last-piece"])
def test_a_failure_in_any_piece_rolls_back_all_and_is_located_in_the_file(
    engine: Engine, tmp_path: Path, at: int
) -> None:
    failing = "  SELECT id FROM no_such_table;"
    script = big_script(8, failing=failing, at=at)
    folder = write(tmp_path / "migrations", {"0001_big.up.sql": script})
    path = folder / "0001_big.up.sql"

    with pytest.raises(MigrationError) as caught:
        Migrator(engine, folder).up()

    error = caught.value
    line = script.splitlines().index(failing) + 1
    assert (error.path, error.line, error.column, error.sqlstate) == (str(path), line, 18, "42P01")
    assert f"{path}:{line}:18:" in str(error)
    assert f"  {line} |   SELECT id FROM no_such_table;\n" in str(error)
    assert "big" not in tables(engine)  # the pieces sent before it were rolled back too


def test_a_failure_without_a_position_in_a_later_piece_names_its_statement(
    engine: Engine, tmp_path: Path
) -> None:
    # A duplicate key has no position: the statement that failed is named by its line.
    script = big_script(6) + "INSERT INTO big VALUES (1, 'again');\n"
    folder = write(tmp_path / "migrations", {"0001_big.up.sql": script})

    with pytest.raises(MigrationError) as caught:
        Migrator(engine, folder).up()

    last_line = script.count("\n")
    assert (caught.value.sqlstate, caught.value.line, caught.value.column) == (
        "23505",
        last_line,
        1,
    )
    assert "big" not in tables(engine)
