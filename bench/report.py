"""Rendering the results as markdown: one table per case, with targets marked."""

from __future__ import annotations

from dataclasses import dataclass, field

from measure import Series


@dataclass(frozen=True)
class Target:
    """A bound on a figure; ``passed`` is None when there is nothing to judge."""

    text: str
    passed: bool | None

    @classmethod
    def at_most(cls, value: float | None, bound: float, unit: str = "x") -> Target:
        return cls(f"≤ {_bound(bound, unit)}", None if value is None else value <= bound)

    @classmethod
    def at_least(cls, value: float | None, bound: float, unit: str = "x") -> Target:
        return cls(f"≥ {_bound(bound, unit)}", None if value is None else value >= bound)

    @classmethod
    def below(cls, value: float | None, bound: float, unit: str) -> Target:
        return cls(f"< {_bound(bound, unit)}", None if value is None else value < bound)

    def render(self) -> str:
        if self.passed is None:
            return self.text
        return f"{self.text} **{'pass' if self.passed else 'MISS'}**"


def _bound(bound: float, unit: str) -> str:
    """``1.2x``, ``1.2x the script``, ``1 s``: a ratio's x sticks to the number."""
    return f"{bound:g}{unit}" if unit.startswith("x") else f"{bound:g} {unit}"


@dataclass
class Row:
    what: str
    series: Series | None
    ratio: float | None = None
    ratio_to: str = ""
    target: Target | None = None
    note: str = ""
    rss_ratio: float | None = None  # peak RSS over something (the script size, the floor)


@dataclass
class Table:
    title: str
    intro: str = ""
    rows: list[Row] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # markdown lines after the table
    error: str | None = None

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


def seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def megabytes(value: int) -> str:
    return f"{value / 1e6:.0f}"


def render_table(table: Table) -> list[str]:
    lines = [f"## {table.title}", ""]
    if table.intro:
        lines += [table.intro, ""]
    if table.error:
        lines += [f"**ERROR**: {table.error}", ""]
    if table.rows:
        lines += [
            "| what | median s | min s | max s | n | peak RSS MB | ratio | target | note |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for row in table.rows:
            s = row.series
            if s:
                figures = [
                    seconds(s.median),
                    seconds(s.low),
                    seconds(s.high),
                    str(len(s.samples)),
                    megabytes(s.rss_median),
                ]
            else:
                figures = ["—"] * 5
            ratio = f"{row.ratio:.2f}x {row.ratio_to}".strip() if row.ratio is not None else ""
            target = row.target.render() if row.target else ""
            lines.append(
                f"| {row.what} | {' | '.join(figures)} | {ratio} | {target} | {row.note} |"
            )
        lines.append("")
    if table.extra:
        lines += [*table.extra, ""]
    return lines


def render(header: list[str], tables: list[Table], footer: list[str]) -> str:
    lines = list(header)
    for table in tables:
        lines += render_table(table)
    lines += footer
    return "\n".join(lines).rstrip() + "\n"
