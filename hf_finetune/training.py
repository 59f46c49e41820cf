"""One fine-tuning run: template + resolved config -> a finished output directory.

``run`` reads as its phases: start (check the target and the base model, lock the output dir), load
the inputs (data, processor, model, the task kind, tokenized splits), stage (resume or start afresh),
train and measure, write the run dir, publish it, push it. Each phase is a function over the other
modules (data, modeling, metrics, card, outputs), wired to a ``transformers.Trainer``; what a phase
makes is a small record the next phases read (``_Run``, ``_Inputs``, ``_Training``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pickle
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import PartialState
from rich.console import Console
from rich.markup import escape

from . import (arguments, batching, card, config as config_mod, data as data_mod, embedded, estimate, hpsearch,
               hub_checkpoints, install, kinds, launch, learning_check, metrics as metrics_mod, modeling, outputs)
from .config import RunConfig
from .data import streamed
from .data.tokenized import processor_identity
from .errors import ConfigError
from .kinds.base import TaskKind
from .callbacks import GracefulStop, ProgressCallback, SearchStop, SearchStopped
from .run_info import BaseModel, DataSet, LocalInputs, RunInfo, Split, TemplateRef
from .rundir import CONFIG, CONFUSION, CURVES, EXAMPLE, HISTORY, METRICS, RunDir
from .templates import TaskTemplate

log = logging.getLogger("hf_finetune")


@dataclass
class FinetuneResult:
    """What a run produced; ``metrics`` mirrors ``metrics.json``."""

    output_dir: Path
    metrics: dict[str, Any]
    config: RunConfig
    labels: list[str] = field(default_factory=list)
    tokenization_cached: bool = False
    pushed_to: str | None = None

    @property
    def test_metrics(self) -> dict[str, float]:
        return self.metrics.get("test", {})


def _versions() -> dict[str, str]:
    import accelerate, datasets, evaluate, huggingface_hub, transformers  # noqa: E401

    from . import __version__

    return {"hf-finetune": __version__, "Transformers": transformers.__version__, "PyTorch": torch.__version__,
            "Datasets": datasets.__version__, "Evaluate": evaluate.__version__,
            "huggingface_hub": huggingface_hub.__version__, "Accelerate": accelerate.__version__,
            "Python": platform.python_version()}


def _allow_recompiles(n_widths: int) -> None:
    """torch.compile makes one graph per input shape; with length buckets there are a known few
    (train widths, the pooled remainders, eval batches, the last short batch), so let dynamo keep
    them all instead of falling back to eager after its default limit of 8."""
    import torch._dynamo

    limit = 4 * n_widths + 8
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, limit)
    torch._dynamo.config.accumulated_recompile_limit = max(torch._dynamo.config.accumulated_recompile_limit,
                                                           4 * limit)


def _callbacks(template: TaskTemplate, config: RunConfig) -> list[Any]:
    from transformers import EarlyStoppingCallback

    callbacks = [spec.resolve()(**spec.args) for spec in template.callbacks]
    if config.early_stopping_patience and config.eval_strategy != "no" and not any(
            isinstance(c, EarlyStoppingCallback) for c in callbacks):
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    return callbacks


def _split_metrics(raw: dict[str, float], prefix: str) -> dict[str, float]:
    return {k[len(prefix):]: float(v) for k, v in raw.items()
            if k.startswith(prefix) and not k.endswith("model_preparation_time")}


def _best_eval(history: list[dict], best_step: int | None) -> dict[str, float] | None:
    """The validation metrics of the kept checkpoint, as logged during training (no second pass)."""
    evals = [e for e in history if "eval_loss" in e]
    if not evals:
        return None
    chosen = next((e for e in evals if e.get("step") == best_step), evals[-1])
    return _split_metrics({k: v for k, v in chosen.items() if isinstance(v, (int, float))}, "eval_")


# ---------------------------------------------------------------------------------------------
# what the phases of one run make


@dataclass
class _Run:
    """Who runs, into where, from which template, config and base model: set by _start."""

    template: TaskTemplate
    config: RunConfig
    model_source: modeling.ModelSource
    layout: outputs.Layout
    state: Any                     # accelerate's PartialState: which process this is
    say: Callable[[str], None]
    console: Console
    quiet: bool
    token: str | None
    lock: outputs.TargetLock | None = None   # held by the main process
    target_finished: bool | None = None      # whether the output dir holds a finished run (None: not locked yet)

    @property
    def target(self) -> Path:
        return self.layout.target


@dataclass
class _Inputs:
    """The data, the base model and the task kind, as _load_inputs made them."""

    prepared: data_mod.PreparedData
    processor: Any
    model: Any
    kind: TaskKind
    tokenized: Any
    cached: bool                   # the tokenized splits came from the cache
    metric: str                    # the one that picks the best checkpoint
    metric_specs: list[tuple[str, dict[str, Any]]]
    train_stream: Any = None       # --streaming: the training rows, tokenized as drawn (``tokenized``: its first rows)


@dataclass
class _Training:
    """How the model was trained: what the run dir and the card say of it."""

    config: RunConfig              # as trained: the search's best values, when --hp-search ran
    trainer: Any
    buckets: dict[str, Any] | None   # the length buckets' padding figures
    checkpoint_notes: list[str]      # why the kept checkpoint's validation figures may flatter it
    search: dict[str, Any] | None    # the search's trials, when --hp-search ran


@dataclass
class _Measured:
    """What training measured."""

    train_output: Any
    train_seconds: float
    history: list[dict[str, Any]]
    validation: dict[str, float]
    test: dict[str, float]
    test_output: Any               # the final test predictions (for the card's analysis)
    zero_shot: dict[str, float] | None
    linear_probe: dict[str, Any] | None = None   # how --linear-probe fitted the head before training
    zero_shot_examples: int | None = None   # the test examples the zero-shot figures are of


# ---------------------------------------------------------------------------------------------
# one run, as named phases


def run(template: TaskTemplate, config: RunConfig, *, console: Console | None = None, quiet: bool = False,
        token: str | None = None) -> FinetuneResult:
    """Template + resolved config -> a finished output dir (and a push, when asked)."""
    ctx = _start(template, config, console or Console(stderr=False), quiet, token)
    try:
        inputs = _load_inputs(ctx)
        fingerprint = _fingerprint(ctx, inputs)
        stage = _stage(ctx, fingerprint)
        if stage is None:   # the output dir already holds this very run
            return _already_finished(ctx, inputs)
        result = _train_and_publish(ctx, inputs, stage, fingerprint)
        if config.push_to_hub and ctx.state.is_main_process:
            result.pushed_to = _push(ctx)
        return result
    finally:
        if ctx.lock is not None:
            ctx.lock.release()


def _start(template: TaskTemplate, config: RunConfig, console: Console, quiet: bool, token: str | None) -> _Run:
    """Check the target and the base model before any heavy work; know which process this is; lock the
    output dir when its folder exists already (else at staging, once it is created)."""
    if config.report_to != "none":
        import importlib.util

        if importlib.util.find_spec(config.report_to) is None:   # trackio, tensorboard, wandb: package names too
            raise ConfigError(f"--report-to {config.report_to} needs the {config.report_to} package, which is not "
                              "installed.", f"pip install {config.report_to}, or leave --report-to out.")
    hpsearch.check(config, template.search_space, template.source)
    config, schedule_note = config_mod.streaming_schedule(config)
    model_source = modeling.resolve(template, config, token)
    target = Path(config.output_dir) if config.output_dir else outputs.default_dir(template.name, model_source.name)
    outputs.check_target_path(target, _local_inputs(template, config, model_source))
    state = PartialState(cpu=not torch.cuda.is_available())
    config = _with_processes(config, state.num_processes)

    def say(message: str) -> None:
        if not quiet and state.is_main_process:
            console.print(message, highlight=False)

    ctx = _Run(template, config, model_source, outputs.Layout(target), state, say, console, quiet, token)
    if state.num_processes == 1 and target.parent.is_dir():
        _lock(ctx)   # fail at once when another run holds it (with several processes: at staging, together)
    say(f"[bold]hf-finetune {template.name}[/]: model [cyan]{config.model or model_source.ref}[/]"
        + (f" ({model_source.hub_id})" if model_source.hub_id and model_source.hub_id != config.model else ""))
    if schedule_note:
        say(f"streaming: {schedule_note}")
    return ctx


def _with_processes(config: RunConfig, processes: int) -> RunConfig:
    """The config with the number of processes this run really has (recorded and fingerprinted: it sets the
    global batch): a count asked for must be the one launched (the API runs in one process)."""
    if config.num_processes not in (None, processes):
        raise ConfigError(f"{config_mod.flag('num_processes')} {config.num_processes} asks for "
                          f"{config.num_processes} training processes, and this run has {processes}.",
                          "From the command line, --num-processes starts them; from Python, start the script "
                          f"with `accelerate launch --num_processes {config.num_processes} script.py`.")
    launch.check(config.fsdp, processes, torch.cuda.is_available())
    return replace(config, num_processes=processes)


def _local_inputs(template: TaskTemplate, config: RunConfig, model_source: modeling.ModelSource) -> list[Path]:
    """Local files and folders this run reads: the output dir must not overlap any of them."""
    paths = [Path(model_source.ref)] if model_source.local else []
    if not template.bundled:
        paths.append(Path(template.source))
    dataset = config.dataset or template.default_dataset
    if dataset and not embedded.is_embedded(dataset) and Path(dataset).expanduser().exists():
        paths.append(Path(dataset).expanduser())
    return paths


def _lock(ctx: _Run) -> None:
    """Hold the output dir for this run (main process), finish what a killed run left, then check, in
    every process, what is there."""
    if ctx.target_finished is not None:
        return
    try:
        if ctx.state.is_main_process:
            ctx.target.parent.mkdir(parents=True, exist_ok=True)
            ctx.lock = outputs.TargetLock(ctx.layout.lock).acquire(ctx.target)
            for note in outputs.recover(ctx.layout):
                ctx.say(f"recovered an interrupted run: {note}")
            for note in outputs.clean_abandoned(ctx.layout):
                ctx.say(f"left by a killed run beside this one: {escape(note)}")
        ctx.state.wait_for_everyone()
        ctx.target_finished = outputs.check_target_contents(ctx.target, ctx.config.overwrite_output_dir)
    except BaseException:
        if ctx.lock is not None:
            ctx.lock.release()
            ctx.lock = None
        raise


def _load_inputs(ctx: _Run) -> _Inputs:
    """Data, processor, model, the task kind (made for that model) and the tokenized splits."""
    from transformers import set_seed

    template, config = ctx.template, ctx.config
    kind_class = kinds.get(template.kind)
    prepared = data_mod.prepare(template, config, kind_class)
    if prepared.stream is None:   # a stream's epoch is not counted
        config_mod.check_accumulation(config, len(prepared.splits["train"]), ctx.state.num_processes)
    _say_data(ctx, prepared)
    processor = modeling.load_processor(template, ctx.model_source)
    set_seed(config.seed)  # the new head's initialisation
    model = modeling.load_model(template, ctx.model_source, kind_class.model_labels(prepared.labels))
    kind = kind_class(template, model.config)
    tokenized, cached = kind.preprocess(prepared, processor, config)
    stream = None if prepared.stream is None else kind.tokenize_stream(prepared.stream, processor, config)
    kind.prepare_model(model, config)
    for choice in kind.choices:
        ctx.say(f"[yellow]chosen from the data:[/] {escape(choice)}")
    if kind.tokenizes:
        ctx.say("tokenization: " + ("reused from cache" if cached else "done, cached for the next run"))
    metric_specs = list(template.metrics)
    if config.metrics:
        metric_specs = [(name, next((a for n, a in metric_specs if n == name), {})) for name in config.metrics]
    return _Inputs(prepared, processor, model, kind, tokenized, cached,
                   config.metric_for_best_model or template.metric_for_best_model, metric_specs, stream)


def _say_data(ctx: _Run, prepared: data_mod.PreparedData) -> None:
    labels = prepared.labels
    labels_note = (f", {len(labels)} labels ({', '.join(labels[:8])}" + (", ..." if len(labels) > 8 else "") + ")"
                   if labels else "")
    ctx.say(f"data [cyan]{prepared.source.name}[/]: "
            + ", ".join(f"{k} {'streamed' if k == 'train' and prepared.stream is not None else len(v)}"
                        for k, v in prepared.splits.items()) + " examples" + labels_note)
    if data_mod.PAIR_ROLE in prepared.columns:
        ctx.say(f"  text pair: {escape(prepared.columns['text'])} + {escape(prepared.columns[data_mod.PAIR_ROLE])} "
                "(tokenized together as one input)")
    for split in ("validation", "test"):
        origin = prepared.split_origin.get(split, split)
        if origin != split:   # say where a split came from when it is not the data's own of that name
            ctx.say(f"  {split}: {escape(origin)}")
    for note in prepared.notes:
        ctx.say(f"streaming: {escape(note)}")


# Settings that say where a run goes or who watches it, not what it learns: they may change between a
# run and its resume (a Job re-submitted from another folder, another tracker).
NOT_FINGERPRINTED = ("resume", "overwrite_output_dir", "push_to_hub", "hub_private_repo", "hub_revision",
                     "hub_create_pr", "output_dir", "resume_from_hub", "report_to", "project", "run_name",
                     "trackio_space_id")


def _fingerprint(ctx: _Run, inputs: _Inputs) -> dict[str, Any]:
    """What decides what a run learns: its settings, its data, its tokenizer and, with --hp-search, the
    space searched (the template's, which may change under the same path). Checkpoints are resumed, and a
    finished run counted as this one, only under the same fingerprint."""
    fingerprint = {"settings": {k: v for k, v in ctx.config.to_dict().items() if k not in NOT_FINGERPRINTED},
                   "data": dict(inputs.prepared.fingerprints),
                   "processor": processor_identity(inputs.processor)}
    if ctx.config.hp_search:
        fingerprint["search"] = {"space": ctx.template.search_space}
    return fingerprint


def _digest(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()


def _stage(ctx: _Run, fingerprint: dict[str, Any]) -> outputs.Stage | None:
    """The staging dir, and the checkpoint to resume from (one written under the same fingerprint). None
    when the output dir already holds this very run."""
    config = ctx.config
    _lock(ctx)
    if ctx.target_finished and not config.overwrite_output_dir:
        if RunDir(ctx.target).info.fingerprint == _digest(fingerprint):
            return None
        raise ConfigError(f"The output dir {ctx.target} already holds a finished run of other settings or data.",
                          "Choose another --output-dir, or pass --overwrite-output-dir to replace it.")
    if config.resume_from_hub and config.resume and ctx.state.is_main_process:
        step = hub_checkpoints.pull(config.push_to_hub, ctx.token, ctx.layout.checkpoints, fingerprint)
        ctx.say(f"checkpoint of step {step} found on the Hub ({config.push_to_hub}, branch "
                f"{hub_checkpoints.BRANCH})" if step is not None else "no checkpoint on the Hub yet: starting afresh")
    ctx.state.wait_for_everyone()
    stage = outputs.plan_stage(ctx.layout, fingerprint, config.resume)
    ctx.state.wait_for_everyone()
    if ctx.state.is_main_process:
        outputs.make_stage(ctx.layout, stage, fingerprint)
    ctx.state.wait_for_everyone()
    if stage.resume_from:
        ctx.say(f"resuming from {stage.resume_from}")
    return stage


def _already_finished(ctx: _Run, inputs: _Inputs) -> FinetuneResult:
    ctx.say(f"{ctx.target} already holds this run (same settings, data and tokenizer): nothing to do "
            "(--overwrite-output-dir trains it again)")
    return FinetuneResult(ctx.target, RunDir(ctx.target).metrics, ctx.config, inputs.prepared.labels, inputs.cached)


def _train_and_publish(ctx: _Run, inputs: _Inputs, stage: outputs.Stage, fingerprint: dict[str, Any]
                       ) -> FinetuneResult:
    """(Search,) train, measure, write the staging dir and publish it; on any failure the staging dir goes
    and only checkpoints a resume can use stay."""
    stop = GracefulStop()
    all_metrics: dict[str, Any] = {}
    notes = _checkpoint_choice_notes(ctx.config, inputs.prepared, inputs.metric)
    for note in notes:
        ctx.say(f"[yellow]note:[/] {escape(note)}")
    try:
        config, search, probe = _search(ctx, inputs, stage) if ctx.config.hp_search else (ctx.config, None, None)
        trainer, progress, buckets = _build_trainer(ctx, inputs, config, stage.checkpoints, stop)
        measured = _train_and_measure(ctx, inputs, trainer, progress, stop, stage, probe)
        trainer.save_model(str(stage.staging))   # by every process: FSDP gathers the shards; the main one writes
        if trainer.is_world_process_zero():
            training = _Training(config, trainer, buckets, notes, search)
            all_metrics = _write_run_dir(ctx, inputs, training, measured, RunDir(stage.staging), stage.run_id,
                                         _digest(fingerprint))
            outputs.publish(ctx.layout)
        ctx.state.wait_for_everyone()
    except BaseException:
        stop.uninstall()
        if ctx.state.is_main_process:
            outputs.abandon_stage(ctx.layout)   # checkpoints stay only when a resume can use them
        raise
    return FinetuneResult(ctx.target, all_metrics, config, inputs.prepared.labels, inputs.cached)


def _build_trainer(ctx: _Run, inputs: _Inputs, config: RunConfig, checkpoints: Path, stop: GracefulStop
                   ) -> tuple[Any, ProgressCallback, dict[str, Any] | None]:
    """The template's Trainer with our arguments, collator, length buckets, metrics and callbacks; and the
    length buckets' padding figures, when batches are padded to them."""
    from transformers import PrinterCallback

    template, kind = ctx.template, inputs.kind
    args = arguments.training_arguments(config, template, checkpoints, inputs.metric, kind)
    collator = kind.collator(inputs.processor, inputs.model)
    trainer_class = template.trainer.resolve()
    buckets = None
    if (config.train_sampling_strategy == "length_buckets" and kind.length_buckets and batching.pads_to_width(collator)
            and inputs.train_stream is None):   # a stream's batches come as drawn: padded to their longest
        lengths = [len(ids) for ids in inputs.tokenized["train"]["input_ids"]]
        widths = batching.boundaries(lengths, config.length_buckets)
        buckets = batching.padding_stats(lengths, widths)
        collator = batching.PadToBucket(collator, widths)
        trainer_class = batching.with_length_buckets(trainer_class, lengths, widths, config.seed)
        ctx.say(f"length buckets: {', '.join(map(str, widths))} tokens "
                f"({buckets['real_token_fraction']:.0%} of the padded training tokens are real)")
    if config.torch_compile and buckets:
        _allow_recompiles(len(buckets["buckets"]))
    elif config.torch_compile and kind.tokenizes:
        log.warning("torch.compile with train_sampling_strategy=%s: the inputs take a new shape for almost every "
                    "batch, so the model is recompiled again and again; 'length_buckets' bounds the shapes.",
                    config.train_sampling_strategy)
    progress = ProgressCallback(ctx.console, inputs.metric, args.train_batch_size * args.gradient_accumulation_steps
                                * args.world_size, quiet=ctx.quiet,
                                shape=None if config.hp_search or inputs.train_stream is not None
                                else _run_shape(inputs, config))
    suite = metrics_mod.MetricSuite(inputs.metric_specs, template.trust_remote_code)
    trainer = trainer_class(
        model=inputs.model, args=args,
        train_dataset=inputs.tokenized["train"] if inputs.train_stream is None else inputs.train_stream,
        eval_dataset=inputs.tokenized["validation"], processing_class=inputs.processor, data_collator=collator,
        compute_metrics=kind.compute_metrics(suite, inputs.processor, config),
        callbacks=[*_callbacks(template, config), *_hub_callbacks(ctx), progress, stop],
    )
    trainer.remove_callback(PrinterCallback)
    return trainer, progress, buckets


def _run_shape(inputs: _Inputs, config: RunConfig) -> estimate.RunShape:
    """What the run's time depends on, for the estimate said after its first steps (not for a search's trials)."""
    splits = inputs.tokenized
    return estimate.RunShape(len(splits["train"]), len(splits["validation"]), len(splits["test"]),
                             config.num_train_epochs, config.max_steps,
                             levers=lambda: inputs.kind.time_levers(config, splits["train"], inputs.processor))


def _hub_callbacks(ctx: _Run) -> list[Any]:
    config = ctx.config
    if not config.resume_from_hub:
        return []
    return [hub_checkpoints.HubCheckpoints(config.push_to_hub, ctx.token, ctx.layout.checkpoints / outputs.RESUME_STATE,
                                           private=config.hub_private_repo, say=ctx.say)]


def _search(ctx: _Run, inputs: _Inputs, stage: outputs.Stage
            ) -> tuple[RunConfig, dict[str, Any], dict[str, Any] | None]:
    """--hp-search N: trials on the validation split, each from a freshly loaded base model (with the head
    --linear-probe fitted once, before the trials); returns the config with the best trial's values (which the
    run then trains with), the search's record and the probe's. The choice is kept with the checkpoints, so a
    resumed run trains it again instead of searching anew (and perhaps choosing other values than its
    checkpoints were trained with)."""
    from transformers import set_seed

    from . import linear_probe

    config, kind = ctx.config, inputs.kind
    if stage.search:
        chosen = {k: config_mod.coerce(k, v, "hp-search") for k, v in stage.search["params"].items()}
        ctx.say("hp-search: done before this run was interrupted; training its best values: "
                + ", ".join(f"{k} {config_mod.display_value(v)}" for k, v in chosen.items()))
        best = replace(config, **chosen, hp_search=None)
        kind.prepare_model(inputs.model, best)
        return best, stage.search["record"], None

    def model_init() -> Any:
        set_seed(config.seed)   # the new head: as the run's own
        model = modeling.load_model(ctx.template, ctx.model_source, kind.model_labels(inputs.prepared.labels))
        kind.prepare_model(model, config)
        if probe is not None:
            linear_probe.copy_head(inputs.model, model, model.config.num_labels)
        # The run trains from the state Trainer.__init__ seeds (after its model was loaded); a trial trains
        # from here, so it must start from that same state, or the best trial, trained again, draws other
        # dropout masks and other worker seeds and lands elsewhere (0.988 vs 0.938 on digits).
        set_seed(config.seed)
        return model

    stop = SearchStop()   # SIGTERM ends the search as it ends a run: exit 143, the output dir cleaned up
    trainer, progress, _ = _build_trainer(ctx, inputs, config, stage.checkpoints, stop)
    stop.install()
    try:
        probe = _linear_probe(ctx, inputs, trainer, progress) if config.linear_probe else None
        best, record = hpsearch.run(trainer, model_init, config=config, space=ctx.template.search_space,
                                    metric=inputs.metric, greater_is_better=ctx.template.greater_is_better,
                                    say=ctx.say, progress=progress)
    except SearchStopped:
        raise stop.search_error(stage.checkpoints, finished=False) from None
    finally:
        stop.uninstall()
    kind.prepare_model(inputs.model, best)   # the run starts as each trial did (augmentation seeds)
    if ctx.state.is_main_process:
        outputs.record_search(stage.checkpoints, record["best_params"], record)
    if stop.requested:   # after the last trial's last step: the search is done and kept
        raise stop.search_error(stage.checkpoints, finished=True)
    return best, record, probe


@contextlib.contextmanager
def _random_state_kept():
    """Python's, numpy's and torch's random states as they were before the block."""
    import random

    import numpy as np

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _train_and_measure(ctx: _Run, inputs: _Inputs, trainer: Any, progress: ProgressCallback, stop: GracefulStop,
                       stage: outputs.Stage, probe: dict[str, Any] | None = None) -> _Measured:
    """(Zero-shot test,) train, then the kept checkpoint's validation and test metrics. ``probe``: the linear
    probe a search already fitted to the model's head."""
    zero_shot, zero_shot_examples = None, None
    if inputs.kind.evaluate_before_training and ctx.config.max_zero_shot_samples:
        sample, shown = _zero_shot_sample(inputs.tokenized["test"], ctx.config)
        ctx.say(f"evaluating the base model on {shown} (zero-shot) ...")
        progress.phase = "final evaluation"
        # the random streams training starts from are those a search trial starts from (it has no zero-shot step)
        with _random_state_kept():
            with progress.predicting("zero-shot (base model)"):
                zero_shot = _split_metrics(trainer.predict(sample, metric_key_prefix="test").metrics, "test_")
        zero_shot_examples = len(sample)
        if inputs.metric in zero_shot:
            ctx.say(f"zero-shot {inputs.metric} of the base model: {zero_shot[inputs.metric]:.4f}")
        progress.phase = "training"
    if probe is None and ctx.config.linear_probe and not stage.resume_from:
        probe = _linear_probe(ctx, inputs, trainer, progress)
    started = time.perf_counter()
    stop.install()
    try:
        train_output = _train(trainer, stage)
    except Exception as err:
        failure = None if inputs.train_stream is None else streamed.read_failure(err, trainer.state.global_step)
        if failure is None:
            raise
        raise failure from None
    finally:   # a failed run must not leave our SIGTERM handler behind (the API may be called again)
        stop.uninstall()
    if stop.requested:
        raise stop.error(stage.checkpoints)
    outputs.crash_point("trained")
    train_seconds = time.perf_counter() - started
    history = list(trainer.state.log_history)
    progress.phase = "final evaluation"
    validation = _best_eval(history, trainer.state.best_global_step)
    if validation is None:  # no evaluation during training
        validation = _split_metrics(trainer.evaluate(inputs.tokenized["validation"], metric_key_prefix="eval"),
                                    "eval_")
    # e.g. fix the thresholds the kept checkpoint was tuned at
    inputs.kind.after_validation(inputs.model, validation, lambda: trainer.predict(inputs.tokenized["validation"]))
    test_output = _predict_in_row_order(trainer, inputs.tokenized["test"])
    return _Measured(train_output, train_seconds, history, validation, _split_metrics(test_output.metrics, "test_"),
                     test_output, zero_shot, probe, zero_shot_examples)


def _train(trainer: Any, stage: outputs.Stage) -> Any:
    """``Trainer.train``, resuming from ``stage``'s checkpoint if any. A checkpoint file that torch refuses to
    load (``weights_only``: a pickle that would run code) or can't read (cut short) is said to be one, and how
    to start afresh: the checkpoint stays, and every resume would meet it again."""
    try:
        return trainer.train(resume_from_checkpoint=stage.resume_from)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as err:
        damaged = isinstance(err, EOFError) or "PytorchStreamReader" in str(err)
        if not stage.resume_from or not (damaged or isinstance(err, pickle.UnpicklingError)):
            raise
        what = ("a damaged file" if damaged else "a pickle that is not plain tensor data (loading it could run "
                "code), which was refused and not loaded")
        raise ConfigError(f"The checkpoint {stage.resume_from} this run resumes from holds {what}.",
                          "Run with --no-resume to delete this output dir's checkpoints and start afresh.") from None


def _linear_probe(ctx: _Run, inputs: _Inputs, trainer: Any, progress: ProgressCallback) -> dict[str, Any] | None:
    """--linear-probe: the new head fitted on the frozen model's features before training (linear_probe.py).
    A resumed run skips it: its checkpoint holds the head."""
    from . import linear_probe

    kind = inputs.kind
    layer = linear_probe.head_layer(inputs.model, inputs.model.config.num_labels) if kind.fit_head else None
    if layer is None:
        log.warning("--linear-probe: this model has no linear output layer with one output per label; "
                    "training its head from scratch.")
        return None
    ctx.say("linear probe: fitting the new head on the frozen model's features ...")
    progress.phase = "linear probe"
    with _random_state_kept():   # training starts from the random streams it would have without the probe
        record = linear_probe.fit(trainer, layer, kind.fit_head, inputs.tokenized["train"],
                                  inputs.tokenized["validation"])
    progress.phase = "training"
    ctx.say("linear probe: " + ", ".join(f"{k} {v}" for k, v in record.items()))
    return record


def _zero_shot_sample(test: Any, config: RunConfig) -> tuple[Any, str]:
    """The test examples the base model is scored on before training, and how the output names them: all of
    them, or a seeded sample of --max-zero-shot-samples (generation on a CPU costs seconds per example)."""
    import numpy as np

    cap = config.max_zero_shot_samples
    if len(test) <= cap:
        return test, f"the test split ({len(test)} examples)"
    chosen = np.sort(np.random.default_rng(config.seed).choice(len(test), size=cap, replace=False))
    return (test.select(chosen.tolist()),
            f"a sample of {cap} of the {len(test)} test examples (seed {config.seed}; --max-zero-shot-samples)")


def _predict_in_row_order(trainer: Any, dataset: Any) -> Any:
    """The test predictions with entry i for row i, as the card's analysis reads them: the Trainer predicts in
    its evaluation batches' order (length groups), which the metrics do not mind but a row-wise reading does."""
    output = trainer.predict(dataset, metric_key_prefix="test")
    order = batching.prediction_order(trainer, dataset)
    return output._replace(predictions=batching.in_row_order(output.predictions, order),
                           label_ids=batching.in_row_order(output.label_ids, order))


UNKNOWN_LICENSE = "unknown"   # the Hub's value for "no license stated"


def _card_license(config: RunConfig, template: Any, source: modeling.ModelSource) -> str:
    """--license, else the base model's (its card's), else the template's for its own default model only:
    a model that states no license gets none of ours."""
    if config.license or source.license:
        return config.license or source.license
    if config.model in (None, template.default_model) and template.card.get("license"):
        return template.card["license"]
    return UNKNOWN_LICENSE


def _write_run_dir(ctx: _Run, inputs: _Inputs, training: _Training, measured: _Measured, run: RunDir,
                   run_id: str, fingerprint: str) -> dict[str, Any]:
    """Metrics, curves, config, card and, last, run_info.json into the staging dir, beside the saved model
    (main process)."""
    trainer, kind, test_split = training.trainer, inputs.kind, inputs.prepared.splits["test"]
    run.normalise_permissions()   # safetensors writes 0600; the rest of the run is readable as usual
    (run.path / "training_args.bin").unlink(missing_ok=True)  # a pickle; run_config.yaml replaces it
    outputs.crash_point("model-saved")
    all_metrics = _metrics(inputs, trainer, measured)
    baseline = _baseline(ctx, inputs)
    all_metrics["learning_check"] = _learning_check(ctx, inputs, training.config, measured, baseline)
    run.write_json(METRICS, all_metrics)
    run.write_json(HISTORY, measured.history)
    outputs.plot_training_curves(measured.history, inputs.metric, run.path / CURVES)
    # the resolved commit of a Hub base model pins the repeat run to the same weights
    saved = replace(training.config, output_dir=str(ctx.target), overwrite_output_dir=False,
                    revision=ctx.model_source.revision or training.config.revision)
    run.write_text(CONFIG, saved.to_yaml())
    kind.save_example(test_split, run.path / EXAMPLE)
    analysis = kind.analyse(test_split, measured.test_output.predictions, measured.test_output.label_ids,
                            inputs.prepared.labels)
    if analysis is not None and kind.choices:
        analysis.setdefault("notes", []).extend(f"Chosen from the data: {choice}" for choice in kind.choices)
    if analysis is not None and inputs.prepared.notes:
        analysis.setdefault("notes", []).extend(f"Streaming: {note}." for note in inputs.prepared.notes)
    if analysis is not None and measured.linear_probe:
        probe = measured.linear_probe
        analysis.setdefault("notes", []).append(
            f"Before fine-tuning, the new head was fitted on the base model's frozen features of the "
            f"{probe['examples']} training examples (a {probe['head']}, its strength picked on the validation split; "
            "`--linear-probe`), and training started from it.")
    if analysis and analysis.get("confusion") and len(inputs.prepared.labels) <= 30:
        outputs.plot_confusion(analysis["confusion"], inputs.prepared.labels, run.path / CONFUSION)
    info = _record(ctx, inputs, training, measured.test, analysis, run_id, fingerprint, baseline)
    card.write(run, repo_id=ctx.config.push_to_hub, location=ctx.target, info=info)
    outputs.crash_point("card-written")
    info.save(run.path)   # last: its presence means the run dir is complete
    return all_metrics


def _metrics(inputs: _Inputs, trainer: Any, measured: _Measured) -> dict[str, Any]:
    """metrics.json: training throughput, the kept checkpoint's validation figures, the test figures."""
    train = {k: v for k, v in measured.train_output.metrics.items() if isinstance(v, (int, float))}
    train.update(wall_seconds=round(measured.train_seconds, 2), examples=_trained_rows(inputs, trainer),
                 epochs_completed=trainer.state.epoch, steps=trainer.state.global_step)
    # a stream's tokens are not kept: its first rows' count would misstate the throughput
    real_tokens = inputs.kind.real_tokens(inputs.tokenized["train"]) if inputs.train_stream is None else None
    if real_tokens:
        train["real_tokens"] = real_tokens
    best = trainer.state.best_model_checkpoint
    return {
        "train": train,
        "validation": measured.validation,
        "test": measured.test,
        **({"zero_shot_test": measured.zero_shot, "zero_shot_examples": measured.zero_shot_examples}
           if measured.zero_shot is not None else {}),
        **({"linear_probe": measured.linear_probe} if measured.linear_probe else {}),
        "best_checkpoint_step": int(best.rsplit("-", 1)[-1]) if best else None,
        "metric_for_best_model": inputs.metric,
    }


def _trained_rows(inputs: _Inputs, trainer: Any) -> int:
    """The training examples: the split's rows, or for a stream the rows its steps drew (at most: the last
    batch of a stream that ran out may be short)."""
    if inputs.train_stream is None:
        return len(inputs.tokenized["train"])
    args = trainer.args
    return trainer.state.global_step * args.train_batch_size * args.gradient_accumulation_steps * args.world_size


def _baseline(ctx: _Run, inputs: _Inputs) -> dict[str, Any] | None:
    """The kind's trivial (and cheap classical) predictors on the same test split, said and kept for the card."""
    splits = inputs.prepared.splits
    try:
        baseline = inputs.kind.baseline(splits["train"], splits["test"], inputs.prepared.labels, ctx.config)
    except ValueError as err:   # e.g. TF-IDF finds no word in texts of emoji only: the run stands without it
        log.warning("No baseline for the card: %s", err)
        return None
    for entry in ([baseline, *baseline.get("also", [])] if baseline else []):
        ctx.say(f"baseline on the test split, {escape(entry['name'])}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in entry["metrics"].items()))
    return baseline


def _learning_check(ctx: _Run, inputs: _Inputs, config: RunConfig, measured: _Measured,
                    baseline: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the run learned anything (learning_check.py): the test figure beside the baselines, and the
    kind's reading of the test predictions (one output for every example?)."""
    kind, output = inputs.kind, measured.test_output
    one_output = kind.one_output(output.predictions, output.label_ids, inputs.prepared.labels, inputs.processor)
    return learning_check.check(measured.test, baseline, inputs.metric, ctx.template.greater_is_better, one_output,
                                kind.learned_nothing_cause, config, len(inputs.prepared.splits["train"]))


MIN_VALIDATION = 500   # below this, one standard error of an accuracy exceeds ~0.02


def _checkpoint_choice_notes(config: RunConfig, prepared: data_mod.PreparedData, metric: str) -> list[str]:
    """Why the kept checkpoint's validation figures may flatter it: a small validation split, or one held out
    of train (same source as the training data). Said before training and written into the card."""
    if config.eval_strategy == "no":
        return []
    notes = []
    count = len(prepared.splits["validation"])
    if count < MIN_VALIDATION:
        notes.append(f"The best checkpoint was chosen on {count} validation examples (fewer than {MIN_VALIDATION}): "
                     + _small_validation_noise(metric, count))
    origin = prepared.split_origin.get("validation", "validation")
    if "hold-out" in origin:
        notes.append(f"The validation split is a {origin}: it comes from the same source as the training data, so "
                     "the kept checkpoint's validation figures are likely higher than on an independent dev set; "
                     "quote the test figures.")
    return notes


def _small_validation_noise(metric: str, count: int) -> str:
    """How much chance moves the chosen metric on ``count`` examples: the bound of a proportion's standard error
    for an accuracy; for other metrics (F1, ROUGE, MSE) no such bound holds, so it is said in words."""
    if metric == "accuracy":
        return (f"one standard error of an accuracy there is up to {0.5 / count ** 0.5:.3f}, so checkpoints closer "
                "than that are ranked by chance.")
    return (f"on so few, the validation {metric} of two checkpoints can differ by chance alone, so checkpoints with "
            "close figures are ranked by chance.")


def _data_stats(inputs: _Inputs, config: RunConfig, buckets: dict[str, Any] | None) -> dict[str, Any]:
    import numpy as np

    train = inputs.tokenized["train"]
    stats: dict[str, Any] = {"dropped": {k: v for k, v in inputs.prepared.dropped.items() if v}}
    if "input_ids" in train.column_names:
        lengths = np.array([len(ids) for ids in train["input_ids"]])
        stats.update(mean_input_tokens=float(lengths.mean()), p95_input_tokens=float(np.percentile(lengths, 95)),
                     max_input_tokens=int(lengths.max()), max_length=config.max_length)
    stats.update(inputs.kind.data_stats(train))
    if buckets:
        stats["length_buckets"] = buckets
    return stats


def _record(ctx: _Run, inputs: _Inputs, training: _Training, test_metrics: dict[str, float],
            analysis: dict[str, Any] | None, run_id: str, fingerprint: str, baseline: dict[str, Any] | None
            ) -> RunInfo:
    """The run record (run_info.json). It is pushed with the model, so it holds no local path: local inputs
    are named by their file or folder name."""
    config, template, prepared, source = training.config, ctx.template, inputs.prepared, ctx.model_source
    uses_embedded = embedded.is_embedded(config.model or template.default_model) or embedded.is_embedded(
        config.dataset or template.default_dataset)
    data = prepared.source
    return RunInfo(
        model_name=ctx.target.name,
        task=template.name, kind=template.kind, pipeline_tag=template.pipeline_tag,
        template=TemplateRef(template.name, template.bundled, Path(template.source).name),
        base_model=BaseModel(source.shareable_ref if source.local else (config.model or template.default_model),
                             source.hub_id, source.revision, source.description),
        dataset=DataSet(data.name, data.hub_id, data.config, data.description, data.content, data.split_files,
                        data.label_names_file),
        local_inputs=LocalInputs(source.local, data.local, not template.bundled),
        splits={k: Split(_trained_rows(inputs, training.trainer) if k == "train" else len(v),
                         prepared.split_origin.get(k, k)) for k, v in prepared.splits.items()},
        labels=prepared.labels,
        label_counts=({k: inputs.kind.label_counts(v, prepared.labels) for k, v in prepared.splits.items()}
                      if inputs.kind.classification else {}),
        columns=prepared.columns,
        metric_names=[k for k in test_metrics if k != "loss" and not metrics_mod.is_timing(k)],
        metric_args={n: a for n, a in inputs.metric_specs},
        metric_for_best_model=inputs.metric,
        license=_card_license(config, template, source),
        model_license=source.license, data_license=data.license,
        language=template.card.get("language"),
        tags=template.card.get("tags", []),
        example_input=inputs.kind.example(prepared.splits["test"]),
        prefix=inputs.kind.prefix,
        precision=arguments.precision_name(training.trainer.args),
        stats=_data_stats(inputs, config, training.buckets),
        versions=_versions(),
        install=install.install_spec("embedded" if uses_embedded else ""),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        test_analysis=analysis,
        run_id=run_id,
        fingerprint=fingerprint,
        baseline=baseline,
        checkpoint_notes=training.checkpoint_notes,
        hp_search=training.search,
    )


def _push(ctx: _Run) -> str:
    """The published run to --push-to-hub; the Hub checkpoints are no longer needed then."""
    from .push import push_run

    config = ctx.config
    ctx.say(f"pushing to the Hub: {config.push_to_hub} ...")
    url = push_run(ctx.target, config.push_to_hub, token=ctx.token, private=config.hub_private_repo,
                   create_pr=config.hub_create_pr, revision=config.hub_revision)
    if config.resume_from_hub:
        hub_checkpoints.delete_branch(config.push_to_hub, ctx.token)
    return url
