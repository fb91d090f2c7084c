"""Processing plans: pure functions from (timing profile, outcome) to timed steps. No I/O.

A plan is what Studio's task runner would report for one upload task: it starts after a
queue delay, reports progress at even intervals, then completes or fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.models import PlannedStep, StepKind


@dataclass(frozen=True)
class TimelineProfile:
    queue_ms: int = 500  # waiting → processing
    processing_ms: int = 3000  # processing → ready
    progress_steps: int = 4  # progress reports, the first at 0


DEFAULT_PROFILE = TimelineProfile()


def plan(
    profile: TimelineProfile, *, error: str | None = None, fail_at_progress: float = 0.0
) -> list[PlannedStep]:
    """Steps from "waiting" to "ready", or to "failed" with `error` at `fail_at_progress`."""
    steps = [PlannedStep(profile.queue_ms, StepKind.START, progress=0.0)]
    count = max(profile.progress_steps, 1)
    for i in range(1, count):
        progress = i / count
        if error is not None and progress > fail_at_progress:
            break
        steps.append(PlannedStep(_at(profile, progress), StepKind.PROGRESS, progress=progress))
    if error is None:
        steps.append(PlannedStep(_at(profile, 1.0), StepKind.READY))
    else:
        steps.append(PlannedStep(_at(profile, fail_at_progress), StepKind.FAIL, error=error))
    return steps


def _at(profile: TimelineProfile, progress: float) -> int:
    return profile.queue_ms + round(profile.processing_ms * progress)
