"""One fine-tuning run: template + resolved config -> a finished output directory.

``run`` reads as its phases (start, load inputs, stage, build the trainer, train and measure, write
the run dir, publish, push); each is a plain function over the other modules (data, modeling,
metrics, card, outputs), wired to a ``transformers.Trainer``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import PartialState
from rich.console import Console
from rich.markup import escape
from transformers import TrainerCallback

from . import (batching, card, data as data_mod, embedded, hpsearch, hub, hub_checkpoints, install, kinds,
               metrics as metrics_mod, modeling, outputs, templates)
from .config import RunConfig
from .errors import ConfigError, FinetuneError
from .progress import ProgressCallback
from .rundir import CONFIG, CONFUSION, CURVES, EXAMPLE, HISTORY, INFO, METRICS, RunDir
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


def native_bf16() -> bool:
    """Whether bfloat16 runs on native instructions here: a GPU that has them, or a CPU with AVX512-BF16
    or AMX (there bf16 autocast trains ~1.5x and evaluates ~2x faster than fp32); elsewhere it is
    emulated and slower than fp32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:   # another torch build: stay in fp32
        return False


def precision(config: RunConfig, kind: Any) -> dict[str, bool]:
    """TrainingArguments' precision flags; evaluation uses the same ones, so that its figures match the
    ones measured at the end of training."""
    auto = native_bf16() and not config.fp16 and (torch.cuda.is_available() or kind.bf16_on_cpu)
    bf16 = config.bf16 if config.bf16 is not None else auto
    return {"bf16": bool(bf16), "fp16": bool(config.fp16), "use_cpu": not torch.cuda.is_available()}


def precision_name(args: Any) -> str:
    return "bf16 mixed precision" if args.bf16 else "fp16 mixed precision" if args.fp16 else "fp32"


def _dataloader(config: RunConfig) -> dict[str, Any]:
    """Worker processes and pinned, non-blocking copies where there is a GPU to feed."""
    cuda = torch.cuda.is_available()
    workers = config.dataloader_num_workers if config.dataloader_num_workers is not None else (2 if cuda else 0)
    return {"dataloader_num_workers": workers, "dataloader_persistent_workers": workers > 0,
            "dataloader_pin_memory": cuda, "accelerator_config": {"non_blocking": cuda}}


def stock_sampling_strategy(config: RunConfig) -> str:
    """The Trainer's own strategy. Length buckets bring their own training sampler
    (batching.with_length_buckets); with 'group_by_length' the Trainer also evaluates in length-grouped
    batches (seeded), which is what we want for evaluation."""
    return "group_by_length" if config.train_sampling_strategy == "length_buckets" else config.train_sampling_strategy


def training_arguments(config: RunConfig, template: TaskTemplate, checkpoint_dir: Path, metric: str,
                       kind: Any):
    from transformers import TrainingArguments

    evaluating = config.eval_strategy != "no"
    kind_args = dict(kind.training_arguments(config))
    args_class = kind_args.pop("args_class", TrainingArguments)
    values = dict(
        output_dir=str(checkpoint_dir),
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type=config.lr_scheduler_type,
        seed=config.seed,
        data_seed=config.seed,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        eval_strategy=config.eval_strategy,
        eval_steps=config.eval_steps,
        save_strategy=config.eval_strategy if evaluating else "no",
        save_steps=config.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=evaluating,
        metric_for_best_model=metric,
        greater_is_better=template.greater_is_better,
        train_sampling_strategy=stock_sampling_strategy(config),
        **_dataloader(config),
        torch_compile=config.torch_compile,
        **tracking_arguments(config, checkpoint_dir),
        disable_tqdm=True,
        log_level="error",
        log_level_replica="error",
        **precision(config, kind),   # use_cpu there also makes several CPU processes use DDP over gloo
    )
    values.update(kind_args)
    values.update(template.trainer.args)
    return args_class(**values)


def tracking_arguments(config: RunConfig, checkpoint_dir: Path) -> dict[str, Any]:
    """The TrainingArguments of `--report-to` (_start has checked that the tracker is installed)."""
    if config.report_to == "none":
        return {"report_to": "none"}
    target_name = checkpoint_dir.name[1:].rsplit(".", 1)[0]   # outputs.Layout: .<target>.checkpoints
    values: dict[str, Any] = {"report_to": config.report_to, "project": config.project or "hf-finetune",
                              "run_name": config.run_name or target_name}
    if config.report_to == "tensorboard":
        values["logging_dir"] = str(checkpoint_dir / "runs")
    if config.trackio_space_id:
        values["trackio_space_id"] = config.trackio_space_id
    return values


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


def _data_stats(train: Any, prepared: Any, config: RunConfig, kind: Any) -> dict[str, Any]:
    import numpy as np

    stats: dict[str, Any] = {"dropped": {k: v for k, v in prepared.dropped.items() if v}}
    if "input_ids" in train.column_names:
        lengths = np.array([len(ids) for ids in train["input_ids"]])
        stats.update(mean_input_tokens=float(lengths.mean()), p95_input_tokens=float(np.percentile(lengths, 95)),
                     max_input_tokens=int(lengths.max()), max_length=config.max_length)
    if getattr(kind, "max_target_length", None) and "labels" in train.column_names:
        stats.update(mean_target_tokens=float(np.mean([len(ids) for ids in train["labels"]])),
                     max_target_length=kind.max_target_length)
    return stats


def _split_metrics(raw: dict[str, float], prefix: str) -> dict[str, float]:
    return {k[len(prefix):]: float(v) for k, v in raw.items()
            if k.startswith(prefix) and not k.endswith("model_preparation_time")}


class GracefulStop(TrainerCallback):
    """On SIGTERM (CI time-outs, preemption): save a checkpoint at the end of the current step, stop,
    and exit non-zero; the same command then resumes from that checkpoint."""

    def __init__(self) -> None:
        self.requested = False
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
            control.should_training_stop = True
        return control

    def error(self, checkpoints: Path) -> FinetuneError:
        err = FinetuneError(f"Stopped by SIGTERM; a checkpoint was saved in {checkpoints}.",
                            "Run the same command (same --output-dir) to resume from it.")
        err.exit_code = 143
        return err


def _best_eval(history: list[dict], best_step: int | None) -> dict[str, float] | None:
    """The validation metrics of the kept checkpoint, as logged during training (no second pass)."""
    evals = [e for e in history if "eval_loss" in e]
    if not evals:
        return None
    chosen = next((e for e in evals if e.get("step") == best_step), evals[-1])
    return _split_metrics({k: v for k, v in chosen.items() if isinstance(v, (int, float))}, "eval_")


# ---------------------------------------------------------------------------------------------
# one run, as named phases


@dataclass
class _Run:
    """What the phases of one run share."""

    template: TaskTemplate
    config: RunConfig
    kind: Any
    model_source: modeling.ModelSource
    layout: outputs.Layout
    state: Any                     # accelerate's PartialState: which process this is
    say: Callable[[str], None]
    quiet: bool
    console: Console
    token: str | None
    lock: outputs.TargetLock | None = None   # held by the main process
    locked: bool = False           # the output dir is held (and recovered, and checked)
    target_finished: bool = False  # the output dir already holds a finished run
    prepared: Any = None
    processor: Any = None
    model: Any = None
    tokenized: Any = None
    metric: str = ""
    metric_specs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    buckets: dict[str, Any] | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    checkpoint_notes: list[str] = field(default_factory=list)
    search: dict[str, Any] | None = None   # the hyper-parameter search's trials, when --hp-search ran

    @property
    def target(self) -> Path:
        return self.layout.target


def run(template: TaskTemplate, config: RunConfig, *, console: Console | None = None, quiet: bool = False,
        token: str | None = None) -> FinetuneResult:
    """Template + resolved config -> a finished output dir (and a push, when asked)."""
    job = _start(template, config, console or Console(stderr=False), quiet, token)
    try:
        cached = _load_inputs(job)
        stage = _stage(job)
        if stage is None:   # the output dir already holds this very run
            return _already_finished(job, cached)
        result = _train_and_publish(job, stage, cached)
        if config.push_to_hub and job.state.is_main_process:
            job.say(f"pushing to the Hub: {config.push_to_hub} ...")
            result.pushed_to = hub.push_run(job.target, config.push_to_hub, token=token,
                                            private=config.hub_private_repo, create_pr=config.hub_create_pr,
                                            revision=config.hub_revision)
            if config.resume_from_hub:
                hub_checkpoints.delete_branch(config.push_to_hub, token)
        return result
    finally:
        if job.lock is not None:
            job.lock.release()


def _train_and_publish(job: _Run, stage: outputs.Stage, cached: bool) -> FinetuneResult:
    stop = GracefulStop()
    all_metrics: dict[str, Any] = {}
    job.checkpoint_notes = _checkpoint_choice_notes(job)
    for note in job.checkpoint_notes:
        job.say(f"[yellow]note:[/] {escape(note)}")
    try:
        if job.config.hp_search:
            _search(job, stage.checkpoints)
        trainer, progress = _build_trainer(job, stage.checkpoints, stop)
        outcome = _train_and_measure(job, trainer, progress, stop, stage)
        if trainer.is_world_process_zero():
            all_metrics = _write_run_dir(job, trainer, outcome, RunDir(stage.staging), stage.run_id)
            outputs.publish(job.layout)
        job.state.wait_for_everyone()
    except BaseException:
        stop.uninstall()
        if job.state.is_main_process:
            outputs.abandon_stage(job.layout)   # checkpoints stay only when a resume can use them
        raise
    return FinetuneResult(job.target, all_metrics, job.config, job.prepared.labels, cached)


def _inputs(template: TaskTemplate, config: RunConfig, model_source: modeling.ModelSource) -> list[Path]:
    """Local files and folders this run reads: the output dir must not overlap any of them."""
    paths = [Path(model_source.ref)] if model_source.local else []
    if not template.bundled:
        paths.append(Path(template.source))
    dataset = config.dataset or template.default_dataset
    if dataset and not embedded.is_embedded(dataset) and Path(dataset).expanduser().exists():
        paths.append(Path(dataset).expanduser())
    return paths


def _start(template: TaskTemplate, config: RunConfig, console: Console, quiet: bool, token: str | None) -> _Run:
    """Check the target and the base model before any heavy work; know which process this is; lock the
    output dir when its folder exists already (else at staging, once it is created)."""
    if config.report_to != "none":
        import importlib.util

        if importlib.util.find_spec(config.report_to) is None:   # trackio, tensorboard, wandb: package names too
            raise ConfigError(f"--report-to {config.report_to} needs the {config.report_to} package, which is not "
                              "installed.", f"pip install {config.report_to}, or leave --report-to out.")
    hpsearch.check(config, template.search_space, template.source)
    model_source = modeling.resolve(template, config, token)
    target = Path(config.output_dir) if config.output_dir else outputs.default_dir(template.name, model_source.name)
    outputs.check_target_path(target, _inputs(template, config, model_source))
    state = PartialState(cpu=not torch.cuda.is_available())

    def say(message: str) -> None:
        if not quiet and state.is_main_process:
            console.print(message, highlight=False)

    job = _Run(template, config, kinds.get(template.kind), model_source, outputs.Layout(target), state, say, quiet,
               console, token)
    if state.num_processes == 1 and target.parent.is_dir():
        _lock(job)   # fail at once when another run holds it (with several processes: at staging, together)
    say(f"[bold]hf-finetune {template.name}[/]: model [cyan]{config.model or model_source.ref}[/]"
        + (f" ({model_source.hub_id})" if model_source.hub_id and model_source.hub_id != config.model else ""))
    return job


def _lock(job: _Run) -> None:
    """Hold the output dir for this run (main process), finish what a killed run left, then check, in
    every process, what is there."""
    if job.locked:
        return
    try:
        if job.state.is_main_process:
            job.layout.target.parent.mkdir(parents=True, exist_ok=True)
            job.lock = outputs.TargetLock(job.layout.lock).acquire(job.target)
            for note in outputs.recover(job.layout):
                job.say(f"recovered an interrupted run: {note}")
        job.state.wait_for_everyone()
        job.target_finished = outputs.check_target_contents(job.target, job.config.overwrite_output_dir)
    except BaseException:
        if job.lock is not None:
            job.lock.release()
            job.lock = None
        raise
    job.locked = True


def _load_inputs(job: _Run) -> bool:
    """Data, processor, model and the tokenized splits; returns whether tokenization came from the cache."""
    from transformers import set_seed

    template, config, kind = job.template, job.config, job.kind
    job.prepared = prepared = data_mod.prepare(template, config, kind.roles)
    labels_note = ""
    if prepared.labels:
        labels_note = (f", {len(prepared.labels)} labels ({', '.join(prepared.labels[:8])}"
                       + (", ..." if len(prepared.labels) > 8 else "") + ")")
    job.say(f"data [cyan]{prepared.source.name}[/]: "
            + ", ".join(f"{k} {len(v)}" for k, v in prepared.splits.items()) + " examples" + labels_note)
    for split in ("validation", "test"):
        origin = prepared.split_origin.get(split, split)
        if origin != split:   # say where a split came from when it is not the data's own of that name
            job.say(f"  {split}: {escape(origin)}")
    job.processor = modeling.load_processor(template, job.model_source)
    set_seed(config.seed)  # the new head's initialisation
    job.model = modeling.load_model(template, job.model_source, prepared.labels if kind.classification else None)
    kind.prefix = templates.input_prefix(template, getattr(job.model.config, "model_type", None))
    kind.model_config = job.model.config
    job.tokenized, cached = kind.preprocess(prepared, job.processor, config, template)
    kind.prepare_model(job.model, config)
    if kind.tokenizes:
        job.say("tokenization: " + ("reused from cache" if cached else "done, cached for the next run"))
    job.metric = config.metric_for_best_model or template.metric_for_best_model
    job.metric_specs = list(template.metrics)
    if config.metrics:
        job.metric_specs = [(name, next((a for n, a in job.metric_specs if n == name), {})) for name in config.metrics]
    return cached


# Settings that say where a run goes or who watches it, not what it learns: they may change between a
# run and its resume (a Job re-submitted from another folder, another tracker).
NOT_FINGERPRINTED = ("resume", "overwrite_output_dir", "push_to_hub", "hub_private_repo", "hub_revision",
                     "hub_create_pr", "output_dir", "resume_from_hub", "report_to", "project", "run_name",
                     "trackio_space_id")


def _stage(job: _Run) -> outputs.Stage | None:
    """The staging dir, and the checkpoint to resume from (one written under the same fingerprint:
    settings, data and tokenizer). None when the output dir already holds this very run."""
    config = job.config
    job.fingerprint = {
        "settings": {k: v for k, v in config.to_dict().items() if k not in NOT_FINGERPRINTED},
        "data": dict(job.prepared.fingerprints),
        "processor": data_mod.processor_identity(job.processor),
    }
    _lock(job)
    if job.target_finished and not config.overwrite_output_dir:
        if RunDir(job.target).info.get("fingerprint") == _digest(job.fingerprint):
            return None
        raise ConfigError(f"The output dir {job.target} already holds a finished run of other settings or data.",
                          "Choose another --output-dir, or pass --overwrite-output-dir to replace it.")
    if config.resume_from_hub and config.resume and job.state.is_main_process:
        step = hub_checkpoints.pull(config.push_to_hub, job.token, job.layout.checkpoints, outputs.RESUME_STATE)
        job.say(f"checkpoint of step {step} found on the Hub ({config.push_to_hub}, branch "
                f"{hub_checkpoints.BRANCH})" if step is not None else "no checkpoint on the Hub yet: starting afresh")
    job.state.wait_for_everyone()
    stage = outputs.plan_stage(job.layout, job.fingerprint, config.resume)
    job.state.wait_for_everyone()
    if job.state.is_main_process:
        outputs.make_stage(job.layout, stage, job.fingerprint)
    job.state.wait_for_everyone()
    if stage.resume_from:
        job.say(f"resuming from {stage.resume_from}")
    return stage


def _digest(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()


def _already_finished(job: _Run, cached: bool) -> FinetuneResult:
    run = RunDir(job.target)
    job.say(f"{job.target} already holds this run (same settings, data and tokenizer): nothing to do "
            "(--overwrite-output-dir trains it again)")
    return FinetuneResult(job.target, run.metrics, job.config, job.prepared.labels, cached)


def _build_trainer(job: _Run, checkpoints: Path, stop: "GracefulStop") -> tuple[Any, ProgressCallback]:
    """The template's Trainer with our arguments, collator, length buckets, metrics and callbacks."""
    from transformers import PrinterCallback

    config, kind, template = job.config, job.kind, job.template
    args = training_arguments(config, template, checkpoints, job.metric, kind)
    collator = kind.collator(template, job.processor, job.model)
    trainer_class = template.trainer.resolve()
    if config.train_sampling_strategy == "length_buckets" and kind.length_buckets and batching.pads_to_width(collator):
        lengths = [len(ids) for ids in job.tokenized["train"]["input_ids"]]
        widths = batching.boundaries(lengths, config.length_buckets)
        job.buckets = batching.padding_stats(lengths, widths)
        collator = batching.PadToBucket(collator, widths)
        trainer_class = batching.with_length_buckets(trainer_class, lengths, widths, config.seed)
        job.say(f"length buckets: {', '.join(map(str, widths))} tokens "
                f"({job.buckets['real_token_fraction']:.0%} of the padded training tokens are real)")
    if config.torch_compile and job.buckets:
        _allow_recompiles(len(job.buckets["buckets"]))
    elif config.torch_compile and kind.tokenizes:
        log.warning("torch.compile with train_sampling_strategy=%s: the inputs take a new shape for almost every "
                    "batch, so the model is recompiled again and again; 'length_buckets' bounds the shapes.",
                    config.train_sampling_strategy)
    progress = ProgressCallback(job.console, job.metric, args.train_batch_size * args.gradient_accumulation_steps
                                * args.world_size, quiet=job.quiet)
    suite = metrics_mod.MetricSuite(job.metric_specs, template.trust_remote_code)
    trainer = trainer_class(
        model=job.model, args=args, train_dataset=job.tokenized["train"], eval_dataset=job.tokenized["validation"],
        processing_class=job.processor, data_collator=collator,
        compute_metrics=kind.compute_metrics(suite, job.processor, config),
        callbacks=[*_callbacks(template, config), *_hub_callbacks(job), progress, stop],
    )
    trainer.remove_callback(PrinterCallback)
    return trainer, progress


def _hub_callbacks(job: _Run) -> list[Any]:
    config = job.config
    if not config.resume_from_hub:
        return []
    return [hub_checkpoints.HubCheckpoints(config.push_to_hub, job.token, job.layout.checkpoints / outputs.RESUME_STATE,
                                           private=config.hub_private_repo)]


def _search(job: _Run, checkpoints: Path) -> None:
    """--hp-search N: trials on the validation split, each from a freshly loaded base model; the run then goes
    on with the best trial's values (job.config)."""
    from transformers import set_seed

    def model_init() -> Any:
        set_seed(job.config.seed)   # the new head: as the run's own
        model = modeling.load_model(job.template, job.model_source,
                                    job.prepared.labels if job.kind.classification else None)
        job.kind.prepare_model(model, job.config)
        # The run trains from the state Trainer.__init__ seeds (after its model was loaded); a trial trains
        # from here, so it must start from that same state, or the best trial, trained again, draws other
        # dropout masks and other worker seeds and lands elsewhere (0.988 vs 0.938 on digits).
        set_seed(job.config.seed)
        return model

    trainer, progress = _build_trainer(job, checkpoints, GracefulStop())
    job.config, job.search = hpsearch.run(trainer, model_init, config=job.config, space=job.template.search_space,
                                          metric=job.metric, greater_is_better=job.template.greater_is_better,
                                          say=job.say, progress=progress)
    job.kind.prepare_model(job.model, job.config)   # the run starts as each trial did (augmentation seeds)


@dataclass
class _Outcome:
    train_output: Any
    train_seconds: float
    history: list[dict[str, Any]]
    validation: dict[str, float]
    test: dict[str, float]
    zero_shot: dict[str, float] | None
    test_output: Any = None        # the final test predictions (for the card's analysis)


@contextlib.contextmanager
def _random_state_kept():
    """Python's, numpy's and torch's random states as they were before the block."""
    import random

    import numpy as np
    import torch

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


def _train_and_measure(job: _Run, trainer: Any, progress: ProgressCallback, stop: "GracefulStop",
                       stage: outputs.Stage) -> _Outcome:
    """(Zero-shot test,) train, then the kept checkpoint's validation and test metrics."""
    zero_shot = None
    if job.kind.evaluate_before_training:
        job.say("evaluating the base model on the test split (zero-shot) ...")
        progress.phase = "final evaluation"
        # the random streams training starts from are those a search trial starts from (it has no zero-shot step)
        with _random_state_kept():
            zero_shot = _split_metrics(trainer.predict(job.tokenized["test"], metric_key_prefix="test").metrics,
                                       "test_")
        progress.phase = "training"
    started = time.perf_counter()
    stop.install()
    train_output = trainer.train(resume_from_checkpoint=stage.resume_from)
    stop.uninstall()
    if stop.requested:
        raise stop.error(stage.checkpoints)
    outputs.crash_point("trained")
    train_seconds = time.perf_counter() - started
    history = list(trainer.state.log_history)
    progress.phase = "final evaluation"
    validation = _best_eval(history, trainer.state.best_global_step)
    if validation is None:  # no evaluation during training
        validation = _split_metrics(trainer.evaluate(job.tokenized["validation"], metric_key_prefix="eval"), "eval_")
    job.kind.after_validation(job.model, validation)   # e.g. fix the threshold the kept checkpoint was tuned at
    test_output = trainer.predict(job.tokenized["test"], metric_key_prefix="test")
    test = _split_metrics(test_output.metrics, "test_")
    return _Outcome(train_output, train_seconds, history, validation, test, zero_shot, test_output)


def _write_run_dir(job: _Run, trainer: Any, outcome: _Outcome, run: RunDir, run_id: str) -> dict[str, Any]:
    """Model, metrics, curves, config, card and, last, run_info.json into the staging dir (main process)."""
    config, kind = job.config, job.kind
    trainer.save_model(str(run.path))
    run.normalise_permissions()   # safetensors writes 0600; the rest of the run is readable as usual
    (run.path / "training_args.bin").unlink(missing_ok=True)  # a pickle; run_config.yaml replaces it
    outputs.crash_point("model-saved")
    best = trainer.state.best_model_checkpoint
    train_metrics = {k: v for k, v in outcome.train_output.metrics.items() if isinstance(v, (int, float))}
    train_metrics.update(wall_seconds=round(outcome.train_seconds, 2), examples=len(job.tokenized["train"]),
                         epochs_completed=trainer.state.epoch, steps=trainer.state.global_step)
    real_tokens = kind.real_tokens(job.tokenized["train"])
    if real_tokens:
        train_metrics["real_tokens"] = real_tokens
    all_metrics = {
        "train": train_metrics,
        "validation": outcome.validation,
        "test": outcome.test,
        **({"zero_shot_test": outcome.zero_shot} if outcome.zero_shot is not None else {}),
        "best_checkpoint_step": int(best.rsplit("-", 1)[-1]) if best else None,
        "metric_for_best_model": job.metric,
    }
    run.write_json(METRICS, all_metrics)
    run.write_json(HISTORY, outcome.history)
    outputs.plot_training_curves(outcome.history, job.metric, run.path / CURVES)
    # the resolved commit of a Hub base model pins the repeat run to the same weights
    saved = RunConfig(**{**config.to_dict(), "output_dir": str(job.target), "overwrite_output_dir": False,
                         "revision": job.model_source.revision or config.revision})
    run.write_text(CONFIG, saved.to_yaml())
    kind.save_example(job.prepared.splits["test"], run.path / EXAMPLE)
    analysis = kind.analyse(job.prepared.splits["test"], outcome.test_output.predictions,
                            outcome.test_output.label_ids, job.prepared.labels)
    if analysis and analysis.get("confusion") and len(job.prepared.labels) <= 30:
        outputs.plot_confusion(analysis["confusion"], job.prepared.labels, run.path / CONFUSION)
    info = {**_run_info(job, trainer, outcome.test), "test_analysis": analysis, "run_id": run_id,
            "fingerprint": _digest(job.fingerprint), "baseline": _baseline(job),
            "checkpoint_notes": job.checkpoint_notes, "hp_search": job.search}
    card.write(run, repo_id=config.push_to_hub, location=job.target, info=info)
    outputs.crash_point("card-written")
    run.write_json(INFO, info)   # last: its presence means the run dir is complete
    return all_metrics


def _baseline(job: _Run) -> dict[str, Any] | None:
    """The kind's trivial (and cheap classical) predictors on the same test split, said and kept for the card."""
    splits = job.prepared.splits
    try:
        baseline = job.kind.baseline(splits["train"], splits["test"], job.prepared.labels, job.config)
    except ValueError as err:   # e.g. TF-IDF finds no word in texts of emoji only: the run stands without it
        log.warning("No baseline for the card: %s", err)
        return None
    for entry in ([baseline, *baseline.get("also", [])] if baseline else []):
        job.say(f"baseline on the test split, {escape(entry['name'])}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in entry["metrics"].items()))
    return baseline


MIN_VALIDATION = 500   # below this, one standard error of an accuracy exceeds ~0.02


def _checkpoint_choice_notes(job: _Run) -> list[str]:
    """Why the kept checkpoint's validation figures may flatter it: a small validation split, or one held out
    of train (same source as the training data). Said before training and written into the card."""
    if job.config.eval_strategy == "no":
        return []
    notes = []
    count = len(job.prepared.splits["validation"])
    if count < MIN_VALIDATION:
        notes.append(f"The best checkpoint was chosen on {count} validation examples (fewer than {MIN_VALIDATION}): "
                     f"one standard error of an accuracy there is up to {0.5 / count ** 0.5:.3f}, so checkpoints "
                     "closer than that are ranked by chance.")
    origin = job.prepared.split_origin.get("validation", "validation")
    if "hold-out" in origin:
        notes.append(f"The validation split is a {origin}: it comes from the same source as the training data, so "
                     "the kept checkpoint's validation figures are likely higher than on an independent dev set; "
                     "quote the test figures.")
    return notes


def _run_info(job: _Run, trainer: Any, test_metrics: dict[str, float]) -> dict[str, Any]:
    """What the card and later commands need to know about the run. It is pushed with the model, so it
    holds no local path: local inputs are named by their file or folder name."""
    config, kind, template, prepared, source = job.config, job.kind, job.template, job.prepared, job.model_source
    uses_embedded = embedded.is_embedded(config.model or template.default_model) or embedded.is_embedded(
        config.dataset or template.default_dataset)
    return {
        "model_name": job.target.name,
        "task": template.name, "kind": template.kind, "pipeline_tag": template.pipeline_tag,
        "template": {"name": template.name, "bundled": template.bundled, "file": Path(template.source).name},
        "base_model": {"ref": source.shareable_ref if source.local else (config.model or template.default_model),
                       "hub_id": source.hub_id, "revision": source.revision, "description": source.description},
        "dataset": {"name": prepared.source.name, "hub_id": prepared.source.hub_id,
                    "config": prepared.source.config, "description": prepared.source.description,
                    "content": prepared.source.content, "files": prepared.source.split_files,
                    "label_names_file": prepared.source.label_names_file},
        "local_inputs": {"model": source.local, "dataset": prepared.source.local, "template": not template.bundled},
        "splits": {k: {"count": len(v), "origin": prepared.split_origin.get(k, k)}
                   for k, v in prepared.splits.items()},
        "labels": prepared.labels,
        "label_counts": ({k: prepared.label_counts(k) for k in prepared.splits} if kind.classification else {}),
        "columns": prepared.columns,
        "metric_names": [k for k in test_metrics if k != "loss" and not metrics_mod.is_timing(k)],
        "metric_args": {n: a for n, a in job.metric_specs},
        "metric_for_best_model": job.metric,
        "license": config.license or source.license or template.card.get("license"),
        "model_license": source.license, "data_license": prepared.source.license,
        "language": template.card.get("language"),
        "tags": template.card.get("tags", []),
        "example_input": kind.example(prepared.splits["test"]),
        "prefix": kind.prefix,
        "precision": precision_name(trainer.args),
        "stats": {**_data_stats(job.tokenized["train"], prepared, config, kind),
                  **({"length_buckets": job.buckets} if job.buckets else {})},
        "versions": _versions(),
        "install": install.install_spec("embedded" if uses_embedded else ""),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
