"""Positions and error reporting for spec validation.

Every problem found in a spec is a `SpecProblem` with the file, line and column it comes from, the
context it belongs to (a transition, a variable, ...) and a message that says what to do. The loader
collects all problems of a file before failing, so one run shows every mistake.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import attrs


@attrs.frozen(order=True)
class Pos:
    """A place in a spec file; line and column are 1-based, as editors show them."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@attrs.frozen
class SpecProblem:
    pos: Pos
    context: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def render(self) -> str:
        where = f"{self.context}: " if self.context else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.pos}: {prefix}{where}{self.message}"


class SpecError(Exception):
    """Raised when a spec has one or more errors; `problems` holds all of them, sorted by position."""

    def __init__(self, problems: Iterable[SpecProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.pos, p.message))
        super().__init__("\n".join(p.render() for p in self.problems))


class Problems:
    """Accumulates problems while a spec is loaded and checked."""

    def __init__(self) -> None:
        self.items: list[SpecProblem] = []

    def error(self, pos: Pos, context: str, message: str) -> None:
        self.items.append(SpecProblem(pos, context, message))

    def warning(self, pos: Pos, context: str, message: str) -> None:
        self.items.append(SpecProblem(pos, context, message, severity="warning"))

    @property
    def errors(self) -> list[SpecProblem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[SpecProblem]:
        return [p for p in self.items if p.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SpecError(self.errors)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' when a close candidate exists, else ''."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
