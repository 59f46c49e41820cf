"""Hyper-parameter search the ecosystem's way: ``Trainer.hyperparameter_search`` with the optuna backend.

The template's ``search_space`` says what may vary (learning rate, epochs, warm-up, weight decay, batch
size, schedule) and within which bounds; ``--hp-search N`` runs N trials on the validation split (each
from the same freshly loaded base model), then the run trains once more with the best trial's values.
Those values replace the searched ones in ``run_config.yaml`` (with ``hp_search`` off), so a repeat
needs no search; every trial goes into ``run_info.json`` and the card's trials table.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from transformers import TrainerCallback

from . import config as config_mod
from .errors import ConfigError
from .templates import SEARCHABLE

def hp_space(space: dict[str, dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    """The optuna ``hp_space`` function ``Trainer.hyperparameter_search`` calls once per trial."""

    def suggest(trial: Any) -> dict[str, Any]:
        values = {}
        for name, spec in space.items():
            if "choices" in spec:
                values[name] = trial.suggest_categorical(name, spec["choices"])
            elif SEARCHABLE[name] is int:
                values[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec["log"])
            else:
                values[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec["log"])
        return values

    return suggest


class BestOfTrial:
    """The objective of a trial: its best validation value, not its last (the final run keeps its best
    checkpoint too, and early stopping ends a trial some evaluations after its best)."""

    def __init__(self, metric: str, greater_is_better: bool):
        self.key, self.sign = f"eval_{metric}", 1 if greater_is_better else -1
        self.best: float | None = None
        self.best_loss: float | None = None   # the validation loss there: what shows a trial was trained again

    def reset(self) -> None:
        self.best = self.best_loss = None

    def __call__(self, metrics: dict[str, float]) -> float:
        value = float(metrics[self.key])
        if self.best is None or self.sign * value > self.sign * self.best:
            self.best, self.best_loss = value, metrics.get("eval_loss")
        return self.best


class TrialProgress(TrainerCallback):
    """Says each trial's values when it starts and its result when it ends; labels the progress bar."""

    def __init__(self, say: Callable[[str], None], n_trials: int, names: list[str], objective: BestOfTrial,
                 progress: Any = None):
        self.say, self.n_trials, self.names, self.objective, self.progress = say, n_trials, names, objective, progress
        self.number, self.best, self._t0 = 0, None, 0.0
        self.batch_sizes: list[int | None] = []   # what each trial's training data loader really used
        self.losses: list[float | None] = []       # each trial's validation loss at its best evaluation

    def on_train_begin(self, args, state, control, **kwargs):
        self.number += 1
        self.batch_sizes.append(None)
        self.objective.reset()
        self._t0 = time.perf_counter()
        if self.progress is not None:
            self.progress.description = f"trial {self.number}/{self.n_trials}"
        self.say(f"hp-search trial {self.number}/{self.n_trials}: "
                 + ", ".join(f"{name} {config_mod.display_value(getattr(args, name))}" for name in self.names))

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        if self.batch_sizes and self.batch_sizes[-1] is None:
            sampler = getattr(train_dataloader, "batch_sampler", None)   # accelerate batches through a sampler
            self.batch_sizes[-1] = getattr(train_dataloader, "batch_size", None) or getattr(sampler, "batch_size", None)

    def on_train_end(self, args, state, control, **kwargs):
        value = self.objective.best
        self.losses.append(self.objective.best_loss)
        if value is not None and (self.best is None or self.objective.sign * value > self.objective.sign * self.best):
            self.best = value
        self.say(f"hp-search trial {self.number}/{self.n_trials}: validation {self.objective.key[5:]} "
                 + (f"{value:.4f} (best so far {self.best:.4f})" if value is not None else "not measured")
                 + f", {time.perf_counter() - self._t0:.0f} s")


def check(config: config_mod.RunConfig, space: dict[str, Any], template_source: str) -> None:
    """Refuse a search that can't run, before any work."""
    if not config.hp_search:
        return
    if not space:
        raise ConfigError(f"--hp-search needs a 'search_space' in the task template ({template_source}).",
                          "Add one (see task_templates/sentiment.yaml), or leave out --hp-search.")
    if config.eval_strategy == "no":
        raise ConfigError("--hp-search compares trials on the validation split, so it needs eval_strategy "
                          "'epoch' or 'steps', not 'no'.")
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError("--hp-search uses optuna, which is not installed.",
                          'Install it with: pip install "hf-finetune[hpsearch]"') from None


def run(trainer: Any, model_init: Callable[[], Any], *, config: config_mod.RunConfig, space: dict[str, Any],
        metric: str, greater_is_better: bool, say: Callable[[str], None], progress: Any = None
        ) -> tuple[config_mod.RunConfig, dict[str, Any]]:
    """N trials with ``trainer`` (built for this run; it saves no checkpoint during the search); returns the
    config with the best trial's values and the search's record for run_info.json and the card."""
    import optuna
    from transformers.trainer_utils import IntervalStrategy, SaveStrategy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trainer.model_init = model_init
    trainer.args.save_strategy = SaveStrategy.NO         # a trial's checkpoints are never used
    trainer.args.load_best_model_at_end = False
    assert trainer.args.eval_strategy != IntervalStrategy.NO
    objective = BestOfTrial(metric, greater_is_better)
    trials_progress = TrialProgress(say, config.hp_search, list(space), objective, progress)
    trainer.add_callback(trials_progress)
    storage, name = optuna.storages.InMemoryStorage(), "hf-finetune"
    direction = "maximize" if greater_is_better else "minimize"
    say(f"hyper-parameter search: {config.hp_search} trials over {', '.join(space)}, by validation {metric} "
        "(optuna, TPE sampler)")
    best = trainer.hyperparameter_search(
        hp_space=hp_space(space), compute_objective=objective, n_trials=config.hp_search, direction=direction,
        backend="optuna", storage=storage, study_name=name, sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=optuna.pruners.NopPruner())
    study = optuna.load_study(study_name=name, storage=storage)
    used, losses = trials_progress.batch_sizes, trials_progress.losses
    trials = [{"number": t.number, "params": t.params, "value": t.value, "state": t.state.name,
               "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
               "train_batch_size": used[t.number] if t.number < len(used) else None,
               "validation_loss": losses[t.number] if t.number < len(losses) else None} for t in study.trials]
    chosen = {k: config_mod.coerce(k, v, "hp-search") for k, v in best.hyperparameters.items()}
    say(f"hp-search best: trial {int(best.run_id) + 1}, validation {metric} {best.objective:.4f}: "
        + ", ".join(f"{k} {config_mod.display_value(v)}" for k, v in chosen.items()) + "; training it")
    record = {"n_trials": config.hp_search, "metric": metric, "direction": direction, "backend": "optuna",
              "sampler": f"TPESampler(seed={config.seed})", "space": space, "trials": trials,
              "best_trial": int(best.run_id), "best_value": best.objective, "best_params": chosen}
    return dataclasses.replace(config, **chosen, hp_search=None), record
