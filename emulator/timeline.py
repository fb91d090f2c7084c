"""Processing plans: pure functions from (timing profile, fault, media) to timed steps. No I/O.

A plan is what Studio's task runner would report for one upload task: it starts after a
queue delay, reports progress at even intervals, then completes or fails. Processing
faults from a scenario shape the plan, so they surface as Studio's own states: a failed
task and asset with `errorMessage`, a task back in `waiting` with `retries` (Studio
retries a task twice, re-queued after 30 s x n, the final retry after 3 min), or progress
that stops and never completes.
"""

from __future__ import annotations

from typing import NamedTuple

from emulator.models import PlannedStep, StepKind

MAX_RETRIES = 2  # Studio's task scheduler gives up after the second retry
FINAL_RETRY_FACTOR = 6  # ... and waits 3 min (6 x 30 s) before that final retry
DEFAULT_FAULT_ERROR = "Failed to process video"


class TimelineProfile(NamedTuple):
    queue_ms: int = 500  # waiting → processing
    processing_ms: int = 3000  # processing → ready
    progress_steps: int = 4  # progress reports, the first at 0
    # Added to processing_ms for each second of media, as the real service takes longer
    # for longer videos (0: every asset takes the same time).
    per_media_second_ms: int = 0
    retry_delay_ms: int = 30_000  # Studio re-queues retry n after n x 30 s


DEFAULT_PROFILE = TimelineProfile()


class ProcessingFault(NamedTuple):
    """How one asset's processing goes wrong (a scenario's `processing:` effect)."""

    error: str = DEFAULT_FAULT_ERROR
    fail_at_progress: float | None = None  # fails for good at this point, no retries
    fail_times: int = 0  # retriable failures before the task succeeds (>2: fails for good)
    stall_at_progress: float | None = None  # progress stops here; the task never ends


def plan(
    profile: TimelineProfile,
    *,
    error: str | None = None,
    fail_at_progress: float = 0.0,
    fault: ProcessingFault | None = None,
    media_seconds: float = 0.0,
    source_ready: bool = False,
) -> list[PlannedStep]:
    """Steps from "waiting" to "ready", or to "failed" with `error` at `fail_at_progress`.

    `fault` shapes the run; `media_seconds` scales the processing time by the profile's
    per-second cost; `source_ready` (the asset gets playable outputs) makes the source
    playable with the first progress report of the run that ends ready, as Studio's
    partial result makes it playable while the renditions are still being made.
    """
    processing_ms = profile.processing_ms + round(profile.per_media_second_ms * media_seconds)
    run = _Run(profile.queue_ms, processing_ms, max(profile.progress_steps, 1))
    if error is not None:  # the media itself is unusable: not retried
        fail = PlannedStep(0, StepKind.FAIL, error=error)
        return run.attempt(0, until=fail_at_progress, end=fail)
    fault = fault or ProcessingFault()
    steps: list[PlannedStep] = []
    start = 0
    fail_at = fault.fail_at_progress or 0.0
    for n in range(1, min(fault.fail_times, MAX_RETRIES) + 1):
        retry = PlannedStep(0, StepKind.RETRY, error=fault.error)
        steps += run.attempt(start, until=fail_at, end=retry)
        factor = FINAL_RETRY_FACTOR if n == MAX_RETRIES else n
        start = steps[-1].offset_ms + profile.retry_delay_ms * factor
    if fault.fail_times > MAX_RETRIES or (
        fault.fail_at_progress is not None and not fault.fail_times
    ):
        end: PlannedStep | None = PlannedStep(0, StepKind.FAIL, error=fault.error)
    elif fault.stall_at_progress is not None:
        return steps + run.attempt(start, until=fault.stall_at_progress, end=None)
    else:
        end, fail_at = PlannedStep(0, StepKind.READY), 1.0
    last = run.attempt(start, until=fail_at, end=end)
    if source_ready and end is not None and end.kind is StepKind.READY:
        # After the first report past 0 (or the start, with no reports in between).
        at = 2 if len(last) > 2 else 1
        last.insert(at, PlannedStep(last[at - 1].offset_ms, StepKind.SOURCE_READY))
    return steps + last


class _Run(NamedTuple):
    queue_ms: int
    processing_ms: int
    progress_steps: int

    def attempt(self, start: int, *, until: float, end: PlannedStep | None) -> list[PlannedStep]:
        """One run of the task from `start`: queue, progress up to `until`, then `end`.

        With no `end` the run stalls: a last progress report at `until`, then nothing.
        """
        began = start + self.queue_ms
        steps = [PlannedStep(began, StepKind.START, progress=0.0)]
        for i in range(1, self.progress_steps):
            progress = i / self.progress_steps
            if progress > until:
                break
            steps.append(self._step(began, progress, StepKind.PROGRESS))
        if end is None:
            if until > (steps[-1].progress or 0.0):
                steps.append(self._step(began, until, StepKind.PROGRESS))
            return steps
        done = began + round(self.processing_ms * until)
        steps.append(PlannedStep(done, end.kind, progress=end.progress, error=end.error))
        return steps

    def _step(self, began: int, progress: float, kind: StepKind) -> PlannedStep:
        return PlannedStep(began + round(self.processing_ms * progress), kind, progress=progress)
