"""TrainingArguments from a run config: one place, so that a run and a later ``evaluate`` of it use the
same precision and the same evaluation batches, and so get the same figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .config import RunConfig

if TYPE_CHECKING:
    from .templates import TaskTemplate


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
    """Worker processes and pinned, non-blocking copies where there is a GPU to feed. A stream in several
    processes: each process reads it and keeps its own batches (accelerate's default for an iterable data set,
    the main process fetching and splitting every batch, can't concatenate batches padded to other lengths)."""
    cuda = torch.cuda.is_available()
    workers = config.dataloader_num_workers if config.dataloader_num_workers is not None else (2 if cuda else 0)
    accelerator = {"non_blocking": cuda, **({"dispatch_batches": False} if config.streaming else {})}
    return {"dataloader_num_workers": workers, "dataloader_persistent_workers": workers > 0,
            "dataloader_pin_memory": cuda, "accelerator_config": accelerator}


def stock_sampling_strategy(config: RunConfig) -> str:
    """The Trainer's own strategy. Length buckets bring their own training sampler
    (batching.with_length_buckets); with 'group_by_length' the Trainer also evaluates in length-grouped
    batches (seeded), which is what we want for evaluation."""
    return "group_by_length" if config.train_sampling_strategy == "length_buckets" else config.train_sampling_strategy


def training_arguments(config: RunConfig, template: "TaskTemplate", checkpoint_dir: Path, metric: str,
                       kind: Any) -> Any:
    """Everything the Trainer is told for a run: the config's hyper-parameters, then the kind's, then the
    template's own trainer arguments."""
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
        **({"fsdp": True} if config.fsdp else {}),   # transformers' FSDP defaults (FSDP2, full state dict saved)
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


def evaluation_arguments(config: RunConfig, kind: Any, output_dir: str) -> Any:
    """What scoring a trained model needs: the run's evaluation batch size, precision and (length-grouped,
    seeded) evaluation batches."""
    from transformers import TrainingArguments

    extra = dict(kind.training_arguments(config))
    args_class = extra.pop("args_class", TrainingArguments)
    return args_class(output_dir=output_dir, per_device_eval_batch_size=config.per_device_eval_batch_size,
                      report_to="none", disable_tqdm=True, log_level="error", **precision(config, kind),
                      seed=config.seed, data_seed=config.seed,
                      **{"train_sampling_strategy": stock_sampling_strategy(config), **extra})
