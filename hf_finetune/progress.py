"""The progress line a run prints where there is no terminal (CI, a Job's log), and its reader: the
writer and the reader of one format, in one place, importing nothing heavy (a Job's log is followed
by a process that never trains)."""

from __future__ import annotations

import re

STEP_LINE = re.compile(r"\[hf-finetune\] step (\d+)/(\d+) \(\d+%\)\s*(.*)")


def step_line(done: int, total: int, status: str, eta: str = "") -> str:
    """``[hf-finetune] step 12/40 (30%)  phase: training  loss 0.6931 ...  eta 42s``"""
    return f"[hf-finetune] step {done}/{total} ({100 * done / total:.0f}%)  {status}{eta}"


def parse_step_line(text: str) -> tuple[int, int, str] | None:
    """(step, steps, status) of a progress line a run printed (a Job's log, read elsewhere)."""
    match = STEP_LINE.search(text)
    return (int(match[1]), int(match[2]), match[3].strip()) if match else None
