"""The shape of an Alembic history: one line, or one base and one head joined by merges.

sqlmig's migrations form one ordered line. A history that is a line imports as it
is. One with merge revisions but a single base and a single head imports with
``--linearize``: the revisions go in the order ``alembic upgrade head`` applies
them to an empty database, which puts every revision after its down revisions and
dependencies, so every database at head has applied all of them.
Several heads or bases are refused either way: no one order describes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alembic_compat.errors import NonLinearHistoryError


@dataclass(frozen=True)
class Revision:
    """One revision as :mod:`alembic_compat.project` recorded it."""

    revision: str
    down_revisions: tuple[str, ...]
    doc: str
    path: str
    import_error: dict[str, Any] | None
    upgrade: dict[str, Any] | None
    downgrade: dict[str, Any] | None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Revision:
        return cls(
            revision=record["revision"],
            down_revisions=tuple(record["down_revisions"]),
            doc=record["doc"],
            path=record["path"],
            import_error=record["import_error"],
            upgrade=record.get("upgrade"),
            downgrade=record.get("downgrade"),
        )

    @property
    def down_revision(self) -> str | None:
        """As the file header writes it: the down revisions joined by commas."""
        return ",".join(self.down_revisions) or None

    @property
    def is_merge(self) -> bool:
        return len(self.down_revisions) > 1

    def describe(self) -> str:
        return f"{self.revision} ({self.doc or 'no message'})"


def import_order(revisions: Sequence[Revision], *, linearize: bool) -> list[Revision]:
    """The revisions in the order to import them, given in Alembic's upgrade order.

    Raises NonLinearHistoryError for several heads or bases, and for merge
    revisions unless ``linearize``.
    """
    parents = {r.revision: r.down_revisions for r in revisions}
    children: dict[str, list[str]] = {r.revision: [] for r in revisions}
    for r in revisions:
        for down in r.down_revisions:
            children.setdefault(down, []).append(r.revision)
    heads = [r for r in revisions if not children[r.revision]]
    bases = [r for r in revisions if not r.down_revisions]
    merges = [r for r in revisions if r.is_merge]
    problems: list[str] = []
    if len(heads) > 1:
        problems += [
            f"head {h.describe()}, on the branch {_branch(h, parents, children)}" for h in heads
        ]
    if len(bases) > 1:
        problems += [f"base {b.describe()}" for b in bases]
    if merges and not linearize:
        problems += [
            f"merge revision {m.describe()} joins {', '.join(m.down_revisions)}" for m in merges
        ]
    if problems:
        parts = [
            f"{len(heads)} heads" if len(heads) > 1 else "",
            f"{len(bases)} bases" if len(bases) > 1 else "",
            "merge revisions" if merges and not linearize else "",
        ]
        raise NonLinearHistoryError(
            ", ".join(p for p in parts if p),
            problems,
            linearizable=len(heads) == 1 and len(bases) == 1,
        )
    return list(revisions)


def _branch(
    head: Revision, parents: dict[str, tuple[str, ...]], children: dict[str, list[str]]
) -> str:
    """The revisions of a head's own branch, newest first, down to where it forks."""
    chain = [head.revision]
    current = head.revision
    while len(parents.get(current, ())) == 1:
        down = parents[current][0]
        if len(children.get(down, [])) > 1:
            chain.append(f"forks from {down}")
            break
        chain.append(down)
        current = down
    return " <- ".join(chain)
