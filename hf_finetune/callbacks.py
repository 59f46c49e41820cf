"""The Trainer callbacks every run adds: live progress (a rich display on a terminal, plain step lines
elsewhere) and a graceful stop on SIGTERM. Both read only what the Trainer already logs or decides
(``control``), so they add no per-step device synchronisation.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text
from transformers import TrainerCallback
from transformers.trainer_utils import has_length

from . import estimate
from .errors import FinetuneError
from .progress import step_line


@dataclass
class _PredictionPass:
    """One evaluation or prediction pass over a split, batch by batch."""

    label: str
    total: int | None
    started: float
    batch_size: int = 1       # examples per batch, all processes together
    done: int = 0
    task: Any = None          # its bar on a terminal
    own_live: bool = False    # the pass runs outside training (zero-shot): its bar has a display of its own


class ProgressCallback(TrainerCallback):
    """Live progress: a rich bar and status on a terminal; elsewhere (CI, a Job's log) a plain step line each
    time the loss is logged, which ``progress.parse_step_line`` reads back. Evaluation passes get a bar of their
    own on a terminal; a pass the run names (``predicting``: the zero-shot step, minutes of generation before
    training) also prints its batches elsewhere."""

    def __init__(self, console: Console, metric: str, samples_per_step: int, quiet: bool = False,
                 live: bool | None = None, shape: estimate.RunShape | None = None):
        """``shape``: what the run's time depends on; with it, the time of the whole run is estimated once,
        from its first training steps, and said (with the flags that shorten a long run)."""
        self.console = console
        self.shape = shape
        self.metric = metric
        self.samples_per_step = samples_per_step
        self.quiet = quiet
        self.live_mode = (console.is_terminal if live is None else live) and not quiet
        self.phase = "training"
        self.description = "training"   # the bar's label ("trial 2/8" during a hyper-parameter search)
        self.loss: float | None = None
        self.eval_value: float | None = None
        self.rate: float | None = None
        self._progress: Progress | None = None
        self._task: Any = None
        self._live: Live | None = None
        self._t0 = 0.0
        self._last_print = 0.0
        self._named_pass: str | None = None   # the label ``predicting`` gives the next passes
        self._pass: _PredictionPass | None = None
        self._pass_seconds = 0.0              # spent in prediction passes, all together
        self._eval_seconds_per_example: float | None = None   # of the last prediction pass
        self._start_step = 0                  # the step training started (or resumed) from
        self._timing: tuple[float, float] | None = None   # (clock, pass seconds) when the first step ended

    # -- helpers ----------------------------------------------------------------------------
    def _status(self) -> Text:
        parts = [f"phase: {self.phase}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.eval_value is not None:
            parts.append(f"eval {self.metric} {self.eval_value:.4f}")
        if self.rate is not None:
            parts.append(f"{self.rate:.1f} samples/s")
        return Text("  ".join(parts))

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(Group(self._progress, self._status()))

    def _line(self, state: Any) -> None:
        if self.quiet or self.live_mode:
            return
        done, total = state.global_step, max(state.max_steps, 1)
        eta = ""
        if self.rate and done:
            remaining = (total - done) * self.samples_per_step / self.rate
            eta = f"  eta {remaining:.0f}s"
        print(step_line(done, total, str(self._status()), eta), file=sys.stdout, flush=True)

    def _new_progress(self) -> Progress:
        return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("eta"), TimeRemainingColumn(), console=self.console)

    @contextlib.contextmanager
    def predicting(self, label: str) -> Iterator[None]:
        """Show the prediction passes of the block under ``label``, batch by batch, also where there is no
        terminal (a pass before training, with no training display around it)."""
        self._named_pass = label
        try:
            yield
        finally:
            self._end_pass()
            self._named_pass = None

    def _advance_pass(self, dataloader: Any, args: Any) -> None:
        if self._pass is None:
            total = len(dataloader) if dataloader is not None and has_length(dataloader) else None
            self._pass = _PredictionPass(self._named_pass or "evaluating", total, time.perf_counter(),
                                         batch_size=args.eval_batch_size * args.world_size)
            if self.live_mode:
                if self._progress is None:   # before training: no display yet
                    self._progress, self._pass.own_live = self._new_progress(), True
                    self._live = Live(self._progress, console=self.console, refresh_per_second=4)
                    self._live.start()
                self._pass.task = self._progress.add_task(self._pass.label, total=total)
        current = self._pass
        current.done += 1
        if current.task is not None:
            self._progress.update(current.task, completed=current.done)
        elif self._named_pass and current.total and not self.live_mode and not self.quiet:
            if current.done * 10 // current.total != (current.done - 1) * 10 // current.total or current.done == 1:
                elapsed = time.perf_counter() - current.started
                eta = (current.total - current.done) * elapsed / current.done
                print(f"[hf-finetune] {current.label}: batch {current.done}/{current.total} "
                      f"({100 * current.done / current.total:.0f}%)  eta {eta:.0f}s", file=sys.stdout, flush=True)

    def _end_pass(self) -> None:
        current, self._pass = self._pass, None
        if current is None:
            return
        seconds = time.perf_counter() - current.started
        self._pass_seconds += seconds
        self._eval_seconds_per_example = seconds / (current.done * current.batch_size)
        if current.task is None or self._progress is None:
            return
        if current.own_live:
            self._live.stop()
            self._progress, self._live = None, None
        else:
            self._progress.remove_task(current.task)

    # -- Trainer events ---------------------------------------------------------------------
    def _say_estimate(self, args: Any, state: Any) -> None:
        """The whole run's time from the steps timed so far (evaluation passes among them left out)."""
        now = time.perf_counter()
        clock, passes = self._timing
        per_step = (now - clock - (self._pass_seconds - passes)) / estimate.MEASURED_STEPS
        timed = estimate.estimate(self.shape, per_step, now - self._t0, state, args, self._start_step,
                                  self._eval_seconds_per_example, self.samples_per_step)
        for line in estimate.message(self.shape, timed):
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def on_train_begin(self, args, state, control, **kwargs):
        self._start_step, self._timing = state.global_step, None
        self._t0 = time.perf_counter()
        if not state.is_world_process_zero:
            self.quiet, self.live_mode = True, False
        if self.live_mode:
            self._progress = self._new_progress()
            self._task = self._progress.add_task(self.description, total=state.max_steps)
            self._live = Live(Group(self._progress, self._status()), console=self.console, refresh_per_second=4)
            self._live.start()
        elif not self.quiet:
            print(f"[hf-finetune] training for {state.max_steps} step{'s' if state.max_steps != 1 else ''}",
                  flush=True)

    def on_step_end(self, args, state, control, **kwargs):
        done = state.global_step - self._start_step
        if done == 1:
            self._timing = (time.perf_counter(), self._pass_seconds)
        elif (done == 1 + estimate.MEASURED_STEPS and self.shape is not None and self._timing is not None
              and not self.quiet and state.global_step < state.max_steps):
            self._say_estimate(args, state)
        elapsed = time.perf_counter() - self._t0
        if elapsed > 0:
            self.rate = (state.global_step - self._start_step) * self.samples_per_step / elapsed   # a resume's too
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)
            self._refresh()

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.loss = float(logs["loss"])
            self._line(state)
        self._refresh()

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.phase == "training":
            self.phase = "evaluating"
        self._advance_pass(eval_dataloader, args)
        self._refresh()

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        self._end_pass()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._end_pass()
        metrics = metrics or {}
        key = f"eval_{self.metric}"
        if key in metrics:
            self.eval_value = float(metrics[key])
        final = self.phase == "final evaluation"
        if not self.live_mode and not self.quiet and not final:
            print(f"[hf-finetune] epoch {state.epoch:.2f}: validation {self.metric} = {self.eval_value:.4f}", flush=True)
        if not final:
            self.phase = "training"
        self._refresh()

    def on_train_end(self, args, state, control, **kwargs):
        if self._live is not None:
            self._progress.update(self._task, completed=state.global_step)
            self.phase = "done"
            self._refresh()
            self._live.stop()
            self._live, self._progress = None, None   # a pass after training (the test split) gets its own display


class GracefulStop(TrainerCallback):
    """On SIGTERM (CI time-outs, preemption): save a checkpoint at the end of the current step, stop,
    and exit non-zero; the same command then resumes from that checkpoint.

    Nothing else: CI runners and Jobs kill a few seconds after SIGTERM, while the Trainer, once told to stop,
    would still run the epoch-end validation pass (with generation, minutes), save the same step again and
    load the best checkpoint's weights, none of which a run that is about to resume needs."""

    def __init__(self) -> None:
        self.requested = False
        self.saved = False   # a checkpoint was written since the signal
        self._previous: Any = None

    def install(self) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def uninstall(self) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_evaluate = False   # an evaluation due at this step would run before the save
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        from .outputs import crash_point

        crash_point(f"saved:{state.global_step}")   # the kill tests: a SIGKILL right after a checkpoint
        if self.requested:
            # a checkpoint to resume from is on disk (this step's, or an evaluation's the signal came during)
            self.saved = True
            control.should_training_stop = True
            args.load_best_model_at_end = False   # the run resumes rather than ends: its weights are not kept
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.requested:   # no validation pass, and no second save of the step the step end saved
            control.should_evaluate = False
            control.should_save = not self.saved   # the signal came after the epoch's last step end
            control.should_training_stop = True
        return control

    def error(self, checkpoints: Path) -> FinetuneError:
        err = FinetuneError(f"Stopped by SIGTERM; a checkpoint was saved in {checkpoints}.",
                            "Run the same command (same --output-dir) to resume from it.")
        err.exit_code = 143
        return err


class SearchStopped(BaseException):
    """Raised out of a --hp-search trial on SIGTERM. Not an Exception: optuna would log one as a failed trial,
    with its traceback, and go on to the next trial."""


class SearchStop(GracefulStop):
    """On SIGTERM during --hp-search: end the search at the end of the current step (or evaluation). A trial
    saves no checkpoint to resume from, so nothing is saved; a search already finished is kept by its caller."""

    def _stop_now(self) -> None:
        if self.requested:
            raise SearchStopped()

    def on_step_end(self, args, state, control, **kwargs):
        self._stop_now()
        return control

    def on_evaluate(self, args, state, control, **kwargs):
        self._stop_now()
        return control

    def on_save(self, args, state, control, **kwargs):
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        self._stop_now()
        return control

    def search_error(self, checkpoints: Path, finished: bool) -> FinetuneError:
        if finished:
            message = f"Stopped by SIGTERM after the hyper-parameter search; its choice is kept in {checkpoints}."
            hint = "Run the same command (same --output-dir) to train it without searching again."
        else:
            message = ("Stopped by SIGTERM during the hyper-parameter search; its trials keep no checkpoint, so "
                       "nothing of it was kept.")
            hint = "Run the same command to search again."
        err = FinetuneError(message, hint)
        err.exit_code = 143
        return err
