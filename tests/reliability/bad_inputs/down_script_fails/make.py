from typing import Any


def check(outcome: Any) -> None:
    error = outcome.document["error"]
    assert (error["version"], error["line"], error["column"]) == ("2", 3, 19)
    assert outcome.query("SELECT version, status FROM schema_migrations ORDER BY 1") == [
        ("1", "applied"),
        ("2", "applied"),
    ]
    assert outcome.query("SELECT to_regclass('b') IS NOT NULL") == [(True,)]
