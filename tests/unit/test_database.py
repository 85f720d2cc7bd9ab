"""URL parsing and error messages, without touching the network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from sqlmig.database import classify, parse_url, safe_url
from sqlmig.errors import (
    AuthenticationError,
    ConnectTimeoutError,
    DatabaseNotFoundError,
    DatabaseUnavailableError,
    InvalidURLError,
    RefusedConnectionError,
    UnknownHostError,
)

SECRET = "s3cr3t-Sentinel"


def all_text(exc: BaseException) -> str:
    """Everything an exception could show: message, repr, and its whole chain."""
    parts = []
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), *map(str, seen.args)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:pw@db.example:5433/app",
        "postgresql://u:pw@db.example:5433/app",
        "postgresql+psycopg://u:pw@db.example:5433/app",
    ],
)
def test_accepted_schemes_map_to_psycopg3(url: str) -> None:
    parsed = parse_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.host, parsed.port, parsed.database, parsed.username) == (
        "db.example",
        5433,
        "app",
        "u",
    )


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        (f"mysql://root:{SECRET}@localhost/app", "mysql"),
        (f"postgresql+psycopg2://u:{SECRET}@h/app", "postgresql+psycopg2"),
        ("sqlite:///file.db", "sqlite"),
    ],
)
def test_unsupported_schemes_are_refused_with_the_alternative(url: str, scheme: str) -> None:
    with pytest.raises(InvalidURLError) as info:
        parse_url(url)
    message = str(info.value)
    assert f"unsupported database URL scheme {scheme!r}" in message
    assert "use postgresql://" in message
    assert SECRET not in all_text(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        f"postgresql://u:{SECRET}@host:notaport/app",
        "://nothing",
        "",
    ],
)
def test_malformed_urls_are_refused_without_the_password(url: str) -> None:
    with pytest.raises(InvalidURLError) as info:
        parse_url(url)
    assert str(info.value).startswith("malformed database URL")
    assert "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE" in str(info.value)
    assert SECRET not in all_text(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_a_url_without_a_database_is_refused() -> None:
    with pytest.raises(InvalidURLError, match="names no database"):
        parse_url(f"postgresql://u:{SECRET}@host:5432")


def test_safe_url_masks_the_password() -> None:
    assert safe_url(f"postgresql://u:{SECRET}@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert safe_url(f"postgresql://u:{SECRET}@h:bad/db") == "postgresql://u:***@h:bad/db"
    assert SECRET not in safe_url(make_url(f"postgres://u:{SECRET}@h/db"))


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00"), min_size=1))
def test_no_password_survives_any_url_error(tail: str) -> None:
    """Whatever the password holds (even unescaped delimiters), errors never show it."""
    password = "Zq9" + tail
    for template in ("postgresql://u:{}@h:x/db", "mysql://u:{}@h/db", "postgresql://u:{}@h"):
        try:
            parse_url(template.format(password))
        except InvalidURLError as exc:
            assert password not in all_text(exc)


@pytest.mark.parametrize(
    ("driver_message", "kind", "reason"),
    [
        (
            "failed to resolve host 'nohost.invalid': [Errno -2] Name or service not known",
            UnknownHostError,
            "unknown host",
        ),
        (
            'connection failed: connection to server at "10.0.0.1", port 5432 failed: '
            "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
            "connections?",
            RefusedConnectionError,
            "connection refused",
        ),
        (
            'connection failed: connection to server at "h", port 5432 failed: FATAL:  '
            f'password authentication failed for user "u" ({SECRET})',
            AuthenticationError,
            "authentication failed",
        ),
        (
            'connection failed: connection to server at "h", port 5432 failed: FATAL:  '
            'role "nobody" does not exist',
            AuthenticationError,
            "authentication failed",
        ),
        (
            'connection failed: connection to server at "h", port 5432 failed: FATAL:  '
            'database "nodb" does not exist',
            DatabaseNotFoundError,
            "database does not exist",
        ),
        (
            'connection failed: connection to server at "h", port 5432 failed: timeout expired',
            ConnectTimeoutError,
            "timed out connecting",
        ),
        ("something nobody expected", DatabaseUnavailableError, "could not connect"),
    ],
)
def test_driver_failures_are_classified_for_operators(
    driver_message: str, kind: type[DatabaseUnavailableError], reason: str
) -> None:
    url = parse_url(f"postgresql://u:{SECRET}@h:5432/app")
    error = classify(RuntimeError(driver_message), url)
    assert type(error) is kind
    assert str(error).startswith(f"{reason} (server h:5432, database 'app')")
    assert error.exit_code == 4
    assert (error.host, error.port, error.database) == ("h", 5432, "app")
    assert SECRET not in all_text(error)


def test_socket_urls_name_the_socket_directory() -> None:
    url = parse_url("postgresql://postgres:@/postgres?host=/tmp/pgdir")
    error = classify(RuntimeError("No such file or directory"), url)
    assert "server /tmp/pgdir, database 'postgres'" in str(error)


@pytest.mark.parametrize(
    ("url", "port"),
    [
        (f"postgresql://u:{SECRET}@h/app?port=abc", "'abc'"),
        (f"postgresql://u:{SECRET}@h:99999/app", "'99999'"),
        (f"postgresql://u:{SECRET}@h:0/app", "'0'"),
        (f"postgresql://u:{SECRET}@h/app?port=-5", "'-5'"),
        (f"postgresql://u:{SECRET}@/app?host=h1,h2&port=5432,x", "'x'"),
        (f"postgresql://u:{SECRET}@/app?host=h1:5432&host=h2:abc", "'abc'"),
        (f"postgresql://u:{SECRET}@h/app?port=\u00b2", "'\u00b2'"),  # isdigit(), not int()
        (f"postgresql://u:{SECRET}@h/app?port=\u0663", "'\u0663'"),  # an Arabic-Indic 3
    ],
)
def test_a_port_that_is_not_1_to_65535_is_a_url_error(url: str, port: str) -> None:
    """Left to the driver, these were SQLAlchemy's ArgumentError or an 'unknown host'."""
    with pytest.raises(InvalidURLError) as info:
        parse_url(url)
    assert f": port {port} is not a number from 1 to 65535. Ports go in " in str(info.value)
    assert info.value.exit_code == 2
    assert SECRET not in all_text(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_hosts_and_ports_that_do_not_pair_up_are_a_url_error() -> None:
    with pytest.raises(InvalidURLError) as info:
        parse_url(f"postgresql://u:{SECRET}@/app?host=h1,h2,h3&port=5432,5433")
    assert "number of hosts and ports don't match" in str(info.value)
    assert SECRET not in all_text(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h:1/app",
        "postgresql://u@h:65535/app",
        "postgresql://u@h/app?port=5433",
        "postgresql://u@/app?host=h1,h2&port=5432,5433",
        "postgresql://u@/app?host=h1:5432&host=h2:5433",
        "postgresql://u@/app?host=/var/run/postgresql",
    ],
)
def test_valid_ports_in_every_form_are_accepted(url: str) -> None:
    assert parse_url(url).drivername == "postgresql+psycopg"


@given(st.text(max_size=12))
def test_any_port_text_is_accepted_or_refused_as_a_url_error(port: str) -> None:
    """Whatever follows ?port=, parsing either succeeds with a port the driver takes, or
    raises InvalidURLError; never another exception from deeper down."""
    from urllib.parse import quote

    url = f"postgresql://u:{SECRET}@h/app?port={quote(port, safe='')}"
    try:
        parsed = parse_url(url)
    except InvalidURLError as exc:
        assert SECRET not in all_text(exc)
        return
    args = parsed.get_dialect()().create_connect_args(parsed)[1]
    for value in str(args.get("port") or "").split(","):
        assert not value or 1 <= int(value) <= 65535


@pytest.mark.parametrize("names", [{"table": "t" * 64}, {"schema": " padded"}])
def test_a_migrator_refuses_a_bad_table_name_before_it_makes_an_engine(
    names: dict[str, str],
) -> None:
    """Port 1 on loopback refuses connections: reaching it would raise another error."""
    from sqlmig.errors import InvalidIdentifierError
    from sqlmig.migrator import Migrator

    with pytest.raises(InvalidIdentifierError):
        Migrator("postgresql://app@127.0.0.1:1/app", "migrations", **names)
