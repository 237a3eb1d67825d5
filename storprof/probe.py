"""What the union probes (copy-up, deep stacks) share: how they report to the sweep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class ProbeHooks:
    """emit(placement, job, repeat, seconds, params) stores one timed row; progress(line) says what
    is happening; done(placement, what, repeat, summary) follows each sample; skip(placement, job,
    repeat) is true for a sample a resumed sweep already has."""

    spec: str
    emit: Callable[..., None]
    progress: Callable[[str], None] = lambda line: None
    done: Callable[[str, str, int, str], None] | None = None
    skip: Callable[[str, str, int], bool] = field(default=lambda placement, job, repeat: False)

    def __post_init__(self):
        if self.done is None:
            self.done = lambda placement, what, repeat, summary: self.progress(
                f"[{self.spec}] {what} {placement} r{repeat + 1}: {summary}")
