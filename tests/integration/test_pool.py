"""Engines from new_engine on a real PostgreSQL: pool bound, application_name, connect errors."""

from __future__ import annotations

import threading
import time
import traceback

import pytest
from helpers import connect, sessions
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from sqlmig.database import new_engine
from sqlmig.errors import AuthenticationError, DatabaseNotFoundError

pytestmark = pytest.mark.integration

PASSWORD = "s3cr3t-Sentinel"


def every_text_of(err: BaseException) -> str:
    """Everything an operator or a log could see of an error: message, repr, chain."""
    parts = ["".join(traceback.format_exception(err))]
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def test_parallel_use_never_opens_more_than_five_connections(
    engine: Engine, database_url: str, pg_admin_url: str
) -> None:
    database = make_url(database_url).database
    assert database is not None
    start = threading.Barrier(20)
    failures: list[BaseException] = []

    def sleep_on_a_connection() -> None:
        try:
            start.wait(5)
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_sleep(0.2)"))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=sleep_on_a_connection) for _ in range(20)]
    seen: list[int] = []
    with connect(pg_admin_url) as observer:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            seen.append(sessions(observer, "sqlmig", database))
            time.sleep(0.02)
        for thread in threads:
            thread.join(5)
        seen.append(sessions(observer, "sqlmig", database))
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert len(seen) >= 5
    assert max(seen) <= 5
    assert max(seen) >= 2  # the threads did run side by side
    assert engine.pool.checkedout() == 0


def test_application_name_is_sqlmig_by_default(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SHOW application_name")).scalar_one() == "sqlmig"
        activity = conn.execute(
            text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        )
        assert activity.scalar_one() == "sqlmig"


def test_application_name_in_the_url_wins(database_url: str) -> None:
    url = make_url(database_url).update_query_dict({"application_name": "deploy-job"})
    eng = new_engine(url)
    try:
        with eng.connect() as conn:
            assert conn.execute(text("SHOW application_name")).scalar_one() == "deploy-job"
    finally:
        eng.dispose()


def test_missing_database_is_named_and_the_password_never_shows(database_url: str) -> None:
    url = make_url(database_url).set(password=PASSWORD, database="no_such_database_here")
    with pytest.raises(DatabaseNotFoundError) as raised:
        new_engine(url.render_as_string(hide_password=False))
    err = raised.value
    assert err.exit_code == 4
    assert err.database == "no_such_database_here"
    assert "'no_such_database_here'" in str(err)
    assert "does not exist" in str(err)
    assert err.__cause__ is None
    assert err.__context__ is None
    assert PASSWORD not in every_text_of(err)


def test_unknown_role_is_an_authentication_error_without_the_password(
    database_url: str,
) -> None:
    url = make_url(database_url).set(username="nobody_here", password=PASSWORD)
    with pytest.raises(AuthenticationError) as raised:
        new_engine(url)
    err = raised.value
    assert err.exit_code == 4
    assert 'role "nobody_here" does not exist' in str(err)
    assert err.__cause__ is None
    assert err.__context__ is None
    assert PASSWORD not in every_text_of(err)
