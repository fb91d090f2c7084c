"""What is wrong with a scenario: each problem at its `SOURCE:LINE`, and the one error
that carries them all, so a user sees every mistake at once rather than the first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from emulator.errors import ConfigError


class Problem(NamedTuple):
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


class ScenarioError(ConfigError):
    """A scenario that cannot be used, with every problem found in it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)  # stable: same line keeps order
        lines = self.messages
        if len(lines) > 1:
            lines.insert(0, f"{len(lines)} problems in the scenario:")
        super().__init__("\n".join(lines))

    @property
    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]
