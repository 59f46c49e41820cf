"""How long a run will take, from its first measured training steps, said once before most of it runs; and, when
that is long for this machine (over HF_FINETUNE_LONG_RUN_MINUTES, 15 by default), the flags that shorten it,
each with the time it would take. The ETA of the progress bar says when it ends; this says whether to wait.

Evaluation is counted too: its passes (one per epoch, or per --eval-steps; then the test split) cost a forward
pass per example, measured when the run has already predicted (summarization's zero-shot step: generation) and
otherwise taken as a third of a training example's cost (a forward pass without the backward one).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ConfigError

LONG_RUN_ENV = "HF_FINETUNE_LONG_RUN_MINUTES"
LONG_RUN_MINUTES = 15.0
TARGET_SHARE = 2 / 3          # a shorter run's flags aim at this share of the long-run limit (10 of 15 minutes)
MEASURED_STEPS = 5            # training steps timed, after the first (which pays for warm-up)
EVAL_COST = 1 / 3             # an evaluated example's cost against a trained one's, when no prediction was timed
MIN_TRAIN_SAMPLES = 100       # --max-train-samples is not suggested below this


def long_run_seconds() -> float:
    """The time over which a run is long on this machine (HF_FINETUNE_LONG_RUN_MINUTES)."""
    text = os.environ.get(LONG_RUN_ENV, "").strip()
    if not text:
        return LONG_RUN_MINUTES * 60
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not minutes >= 0:
        raise ConfigError(f"{LONG_RUN_ENV} must be a number of minutes, got {text!r}.",
                          f"Unset it for the default ({LONG_RUN_MINUTES:g}).")
    return minutes * 60


def duration(seconds: float) -> str:
    """'about 40 s', 'about 12 min', 'about 1 h 20 min', 'under 1 s'."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"about {minutes} min" if minutes < 60 else f"about {minutes // 60} h {minutes % 60} min"


@dataclass
class RunShape:
    """What a run's time depends on, known before it trains: its splits' sizes, its settings, and the kind's
    flags that make it cheaper (``levers``: called only for a long run, mildest first, each with the share of
    the time a training and an evaluation step would take with it)."""

    train_examples: int
    eval_examples: int
    test_examples: int
    num_train_epochs: float
    max_steps: int
    levers: Callable[[], list[tuple[str, float]]] = field(default=lambda: [])
    limit: float = field(default_factory=long_run_seconds)   # read once, before training: a bad value fails then


@dataclass
class Estimate:
    """The run's time in its parts, in seconds."""

    train: float
    evaluation: float                # the evaluation passes during training
    final: float                     # after training: the test split (and validation, when none ran during it)
    steps: int
    seconds_per_step: float

    @property
    def total(self) -> float:
        return self.train + self.evaluation + self.final


def estimate(shape: RunShape, seconds_per_step: float, elapsed: float, state: Any, args: Any, start_step: int,
             eval_seconds_per_example: float | None, samples_per_step: int) -> Estimate:
    """The whole run's time: ``elapsed`` so far, the steps left at ``seconds_per_step``, the evaluation passes."""
    per_example = eval_seconds_per_example or seconds_per_step / max(samples_per_step, 1) * EVAL_COST
    steps = state.max_steps - start_step
    train = elapsed + (state.max_steps - state.global_step) * seconds_per_step
    strategy = str(getattr(args.eval_strategy, "value", args.eval_strategy))
    if strategy == "epoch":
        passes = math.ceil(state.num_train_epochs)
    elif strategy == "steps" and args.eval_steps:
        passes = int(state.max_steps // args.eval_steps)
    else:
        passes = 0
    final = (shape.test_examples + (0 if passes else shape.eval_examples)) * per_example
    return Estimate(train, passes * shape.eval_examples * per_example, final, steps, seconds_per_step)


def _round_down(value: float) -> int:
    """Two significant digits, rounded down: 2340 -> 2300."""
    scale = 10 ** max(int(math.log10(value)) - 1, 0)
    return int(value // scale * scale)


def shorter(shape: RunShape, time: Estimate, target: float) -> list[str]:
    """The flags that bring the run to about ``target`` seconds (or as near as they go), each with its time."""
    options = []
    during = time.train + time.evaluation        # what epochs and steps scale
    if during > 0 and shape.max_steps > 0:
        share = max(target - time.final, 0) / during
        steps = max(int(time.steps * share), 1)
        if steps < time.steps:
            options.append((f"--max-steps {steps}", time.final + during * steps / time.steps))
    elif during > 0 and shape.num_train_epochs > 1:
        share = max(target - time.final, 0) / during
        epochs = max(math.floor(shape.num_train_epochs * share), 1)
        if epochs < shape.num_train_epochs:
            options.append((f"--num-train-epochs {epochs}", time.final + during * epochs / shape.num_train_epochs))
    if time.train > 0 and shape.train_examples > MIN_TRAIN_SAMPLES:
        share = max(target - time.evaluation - time.final, 0) / time.train
        samples = max(_round_down(max(shape.train_examples * share, 1)), MIN_TRAIN_SAMPLES)
        if samples < shape.train_examples:
            options.append((f"--max-train-samples {samples}",
                            time.evaluation + time.final + time.train * samples / shape.train_examples))
    levers = [(flag, time.total * factor) for flag, factor in shape.levers() if factor < 0.95]
    if levers:
        options.append(next(((flag, t) for flag, t in levers if t <= target), levers[-1]))
    return [f"{flag} ({duration(t)})" for flag, t in options]


def message(shape: RunShape, time: Estimate) -> list[str]:
    """The estimate in words; for a long run, the flags that shorten it."""
    limit = shape.limit
    lines = [f"estimated time: {duration(time.total)} (training {duration(time.train)}: {time.steps} steps at "
             f"{time.seconds_per_step:.2f} s; evaluation {duration(time.evaluation + time.final)}), from the first "
             f"{MEASURED_STEPS} steps"]
    if time.total > limit:
        options = shorter(shape, time, limit * TARGET_SHARE)
        lines.append(f"that is over {limit / 60:g} min on this machine ({LONG_RUN_ENV})"
                     + ("; to shorten it: " + ", ".join(options) if options else ""))
    return lines
