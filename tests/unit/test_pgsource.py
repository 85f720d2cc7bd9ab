"""The test database source is chosen in order, and no source at all is an error."""

from __future__ import annotations

import pytest
from pgsource import ENV_URL, NoDatabaseError, Source, Starters, choose_source


def fake(name: str) -> Source:
    return Source(name, f"postgresql://postgres@{name}/postgres")


def failing(message: str):  # type: ignore[no-untyped-def]
    def start(*_: object) -> Source:
        raise RuntimeError(message)

    return start


def starters(**overrides: object) -> Starters:
    base = {
        "from_url": lambda url: Source(ENV_URL, url),
        "docker_available": lambda: True,
        "container": lambda: fake("container"),
        "embedded": lambda: fake("embedded"),
    }
    base.update(overrides)
    return Starters(**base)  # type: ignore[arg-type]


def test_the_environment_url_comes_first() -> None:
    source = choose_source({ENV_URL: "postgresql://admin@db/postgres"}, starters())
    assert (source.name, source.admin_url) == (ENV_URL, "postgresql://admin@db/postgres")


def test_a_container_when_docker_answers() -> None:
    assert choose_source({}, starters()).name == "container"


def test_embedded_when_docker_is_absent() -> None:
    assert choose_source({}, starters(docker_available=lambda: False)).name == "embedded"


def test_falls_through_sources_that_fail() -> None:
    chosen = choose_source(
        {ENV_URL: "postgresql://x@down/postgres"},
        starters(from_url=failing("refused"), container=failing("pull failed")),
    )
    assert chosen.name == "embedded"


def test_no_source_at_all_says_why_each_failed() -> None:
    with pytest.raises(NoDatabaseError) as info:
        choose_source(
            {},
            starters(docker_available=lambda: False, embedded=failing("initdb crashed")),
        )
    message = str(info.value)
    assert f"{ENV_URL}: not set" in message
    assert "testcontainers: no Docker engine answers" in message
    assert "pgserver: RuntimeError: initdb crashed" in message
    assert "pip install pgserver" in message  # what to install, for a project that has none
