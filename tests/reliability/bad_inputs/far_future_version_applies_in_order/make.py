from typing import Any


def check(outcome: Any) -> None:
    versions = [m["version"] for m in outcome.document["migrations"]]
    assert versions == ["20240101000000", "20240102000000", "99999999999999"]
