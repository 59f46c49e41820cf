"""One run-configuration schema for YAML files, CLI flags and the Python API.

Hyper-parameters carry their ``transformers.TrainingArguments`` names. Precedence, lowest first:
schema default < task template ``defaults`` < ``--config`` file < CLI flags / API keywords.
The resolved config is written to ``run_config.yaml`` so a run can be repeated with ``--config``;
secrets (the Hub token) are not part of the schema and so can never be written there.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, did_you_mean
from .repo_id import check_repo_id


def _opt(default: Any, help: str, group: str, **extra: Any) -> Any:
    """A field with its help text and flag group; ``per_kind``: an option only the task kinds that list it in
    ``TaskKind.options`` read (``--summary-column``), so only their tasks offer it."""
    return field(default=default, metadata={"help": help, "group": group, **extra})


@dataclass
class RunConfig:
    """Everything that decides what a run does. Field names are the YAML keys and the flags."""

    # -- task ---------------------------------------------------------------------------------
    task: str | None = _opt(None, "Task template name (see `hf-finetune tasks`).", "task", cli=False)
    template: str | None = _opt(None, "Path to a task template YAML file of your own.", "task")
    output_dir: str | None = _opt(
        None, "Where the fine-tuned model goes (default: outputs/<task>-<model>-<timestamp>).", "task"
    )
    overwrite_output_dir: bool = _opt(False, "Replace an existing output dir.", "task")
    resume: bool = _opt(True, "Resume from the last checkpoint of an interrupted run into the same --output-dir.",
                        "task")
    resume_from_hub: bool = _opt(
        False, "Save each checkpoint to the `hf-finetune-checkpoints` branch of the --push-to-hub repo and start from "
               "the last one found there, so a run cut short on one machine (a Job's time-out, a CI time limit) "
               "continues on the next.", "task")

    # -- model --------------------------------------------------------------------------------
    model: str | None = _opt(
        None, "Base checkpoint: a Hub model id or a local folder (default: the template's embedded model).", "model"
    )
    revision: str | None = _opt(None, "Hub revision (branch, tag or commit) of the base model.", "model")

    # -- data ---------------------------------------------------------------------------------
    dataset: str | None = _opt(
        None,
        "Hub dataset id, or a local CSV / TSV / JSON Lines / JSON / Parquet file, or a folder of them "
        "(train.*, dev.* or validation.*, test.*), or an image folder (default: the template's embedded data set).",
        "data",
    )
    dataset_config: str | None = _opt(None, "Hub dataset configuration name.", "data")
    train_split: str = _opt("train", "Split to train on.", "data")
    validation_split: str | None = _opt(
        None, "Split to evaluate on each epoch (default: 'validation' if present, else a stratified split).", "data"
    )
    test_split: str | None = _opt(
        None, "Split for the final test metrics (default: 'test' if present, else a stratified split).", "data"
    )
    text_column: str | None = _opt(
        None, "Input text column (default: auto-detected); two columns, e.g. sentence1,sentence2, are a text pair "
              "read as one input (classification and regression: NLI, paraphrase, STS; common pair names such as "
              "sentence1/sentence2 or premise/hypothesis are found without it).", "data", per_kind=True, pair=True)
    label_column: str | None = _opt(None, "Label column (default: auto-detected); for multi-label a column of "
                                          "label lists or of separated labels, for regression the number to predict.",
                                    "data", per_kind=True)
    label_columns: list[str] | None = _opt(
        None, "Multi-label: several 0/1 columns, one per label, e.g. toxic,obscene,insult (instead of "
              "--label-column).", "data", per_kind=True)
    label_separator: str = _opt(",", "Multi-label: the separator of a label column of text, e.g. 'joy,surprise'.",
                                "data", per_kind=True)
    target_unit: str | None = _opt(None, "Regression: what the target measures, for the card (e.g. 'stars, 1-5').",
                                   "data", per_kind=True)
    summary_column: str | None = _opt(None, "Target summary column, for summarization (default: auto-detected).", "data",
                                      per_kind=True)
    image_column: str | None = _opt(None, "Image column, for image classification (default: auto-detected).", "data",
                                    per_kind=True)
    label_names: list[str] | None = _opt(
        None, "Names of integer labels 0, 1, ... in order, e.g. negative,positive (default: the data's own: a "
              "ClassLabel feature, or a label_names.txt or labels.txt beside the data, one name per line).", "data",
        per_kind=True)
    validation_size: float = _opt(0.1, "Fraction of train held out for validation when there is no such split.", "data")
    test_size: float = _opt(0.1, "Fraction of train held out for test when there is no such split.", "data")
    max_train_samples: int | None = _opt(None, "Use at most this many training examples.", "data")
    max_eval_samples: int | None = _opt(
        None, "Use at most this many validation examples (with --streaming: the validation rows read from the "
              "stream, default 1000).", "data")
    max_test_samples: int | None = _opt(
        None, "Use at most this many test examples (with --streaming: the test rows read from the stream, default "
              "1000).", "data")
    streaming: bool = _opt(
        False, "Read the data set as training goes (datasets' streaming: no full download or copy, tokenized on the "
               "fly); needs --max-steps. Validation and test are the data's own splits or the stream's first rows "
               "(--max-eval-samples, --max-test-samples), read once.", "data")
    max_zero_shot_samples: int = _opt(
        100, "Summarization: score the base model before training (zero-shot, a row of the card) on a seeded sample "
             "of at most this many test examples; generation is slow on a CPU (0: skip that step).", "data",
        per_kind=True)
    max_length: int = _opt(128, "Truncate inputs to this many tokens.", "data")
    image_size: int | None = _opt(None, "Image classification: resize images to this many pixels square "
                                        "(default: the model processor's size).", "data",
                                  per_kind=True)
    image_augmentation: str = _opt(
        "crop+flip", "Image classification: training augmentation, 'crop+flip', 'crop', 'shift' (small random "
                     "translation and rotation, nothing cut away: for digits, glyphs, icons) or 'none'.", "data",
        choices=["crop+flip", "crop", "shift", "none"], per_kind=True)
    max_target_length: int | None = _opt(
        None, "Summarization: truncate/generate targets to this many tokens "
              "(default: the 95th percentile of the training summaries).", "data", per_kind=True)
    generation_num_beams: int = _opt(1, "Summarization: beams for generate() in evaluation and in the saved model.",
                                     "training", per_kind=True)

    # -- training (TrainingArguments names) ----------------------------------------------------
    learning_rate: float = _opt(5e-5, "Peak learning rate of AdamW.", "training")
    num_train_epochs: float = _opt(3.0, "Number of passes over the training data.", "training")
    max_steps: int = _opt(-1, "Stop after this many optimizer steps (overrides epochs when > 0).", "training")
    per_device_train_batch_size: int = _opt(32, "Training batch size per device.", "training")
    per_device_eval_batch_size: int = _opt(64, "Evaluation batch size per device.", "training")
    gradient_accumulation_steps: int = _opt(1, "Batches to accumulate before each optimizer step.", "training")
    weight_decay: float = _opt(0.01, "AdamW weight decay.", "training")
    warmup_steps: float = _opt(0.1, "Warm-up: steps (>= 1) or a fraction of all steps (< 1).", "training")
    lr_scheduler_type: str = _opt("linear", "Learning-rate schedule.", "training")
    seed: int = _opt(42, "Random seed (data splits, shuffling, head initialisation).", "training")
    logging_steps: int = _opt(10, "Log the training loss every N steps.", "training")
    eval_strategy: str = _opt("epoch", "When to evaluate: 'epoch', 'steps' or 'no'.", "training", choices=["epoch", "steps", "no"])
    eval_steps: int | None = _opt(None, "Evaluate every N steps when eval_strategy is 'steps'.", "training")
    early_stopping_patience: int | None = _opt(
        None, "Stop after N evaluations without improvement (default: the template's).", "training"
    )
    metric_for_best_model: str | None = _opt(None, "Metric that picks the best checkpoint (default: the template's).", "training")
    bf16: bool | None = _opt(None, "bfloat16 mixed precision (default: on where the hardware has bf16 instructions: "
                                "recent GPUs, CPUs with AVX512-BF16 or AMX).", "training")
    fp16: bool = _opt(False, "float16 mixed precision (GPUs without bf16).", "training")
    train_sampling_strategy: str = _opt(
        "length_buckets",
        "Batch sampler: 'length_buckets' (batches padded to a few fixed lengths), 'group_by_length' "
        "(similar lengths together, padded to the longest), 'random' or 'sequential'.", "training",
        choices=["length_buckets", "group_by_length", "random", "sequential"],
    )
    length_buckets: int = _opt(8, "How many padded lengths 'length_buckets' may use.", "training",
                               per_kind=True)
    torch_compile: bool = _opt(False, "Compile the model with torch.compile (pays off on long GPU runs).", "training")
    dataloader_num_workers: int | None = _opt(None, "Data-loading worker processes (default: 2 on a GPU, 0 on CPU).",
                                              "training")
    num_processes: int | None = _opt(
        None, "Train with this many processes, one per GPU (DDP through `accelerate launch`; on CPU, gloo) (default: "
              "1; on a Job, one per GPU of its --jobs-flavor).", "training")
    fsdp: bool = _opt(False, "Shard the model, its gradients and optimizer state across the processes (PyTorch FSDP, "
                             "TrainingArguments' fsdp=True) for a model that does not fit one GPU; needs GPUs and "
                             "--num-processes 2 or more.", "training")
    report_to: str = _opt("none", "Where to log the training metrics: 'trackio' (local dashboard: `trackio show`), "
                                  "'tensorboard', 'wandb' or 'none'.", "training",
                          choices=["trackio", "tensorboard", "wandb", "none"])
    project: str | None = _opt(None, "Tracking project name (default: hf-finetune).", "training")
    run_name: str | None = _opt(None, "Tracking run name (default: the output dir's name).", "training")
    trackio_space_id: str | None = _opt(None, "trackio: log to this Hugging Face Space (e.g. me/trackio) instead of "
                                              "locally.", "training")
    linear_probe: bool = _opt(
        False, "Fit the new head first on the frozen base model's features (a logistic or ridge regression, one pass "
               "over the training data, its strength picked on the validation split), then fine-tune everything "
               "from it (LP-FT); on a small CPU budget it keeps a new head from leaving the model at the majority "
               "class.", "training", per_kind=True)
    hp_search: int | None = _opt(
        None, "Search hyper-parameters first: N trials (optuna, through Trainer.hyperparameter_search) over the "
              "template's search_space, compared on the validation split; then train the best and write its values "
              "to run_config.yaml.", "training")

    # -- metrics ------------------------------------------------------------------------------
    metrics: list[str] | None = _opt(
        None, "Metrics: names of the built-in modules, Hub metric ids or local module paths (default: the template's).",
        "metrics",
    )

    # -- hub ----------------------------------------------------------------------------------
    license: str | None = _opt(None, "License of the fine-tuned model, for its card (default: the base model's "
                                     "card's; 'unknown' when it states none).", "hub")
    push_to_hub: str | None = _opt(None, "Push the fine-tuned model to this Hub repo id (e.g. me/bert-imdb).", "hub")
    hub_private_repo: bool = _opt(False, "Create the Hub repo as private.", "hub")
    hub_revision: str | None = _opt(None, "Push to this branch of the Hub repo (created if needed).", "hub")
    hub_create_pr: bool = _opt(False, "Open a pull request on the Hub repo instead of committing to the branch.", "hub")

    # ------------------------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return ("# hf-finetune run configuration: repeat this run with `hf-finetune --config run_config.yaml`\n"
                + dump_yaml(self.to_dict()))


_HINTS = typing.get_type_hints(RunConfig)


def display_value(value: Any) -> str:
    """An option's value as people read it (1e-05, not 1.0000000000000001e-05; 3, not 3.0)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def field_type(name: str) -> tuple[type, bool]:
    """The base type of a field (int, float, str, bool, list) and whether it may be None."""
    hint = _HINTS[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is list:
        return list, optional
    return hint, optional


def coerce(name: str, value: Any, source: str) -> Any:
    """Convert a YAML or CLI value to the field's type, or raise a ConfigError naming the source."""
    base, optional = field_type(name)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: '{name}' can't be empty.")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "on"):
                return True
            if str(value).lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
            if math.isnan(result):
                raise ValueError
            return result
        if base is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
        if isinstance(value, (list, tuple)) and RunConfig.__dataclass_fields__[name].metadata.get("pair"):
            return ",".join(str(v).strip() for v in value)   # a text pair written as a YAML list, [first, second]
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: '{name}' must be {'a list' if base is list else 'a ' + base.__name__}, got {value!r}."
        ) from None


def check_keys(values: dict[str, Any], source: str) -> None:
    names = RunConfig.field_names()
    for key in values:
        if key not in names:
            raise ConfigError(f"{source}: unknown option '{key}'. {did_you_mean(key, names)}")


MAX_YAML_BYTES = 1 << 20   # a config or template is a few dozen lines; anything near this is not one


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``): a few hundred bytes of nested aliases expand to
    gigabytes (the "billion laughs"), and no config or template needs them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not accepted", mark)
        return super().compose_node(parent, index)


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse a small YAML file (a config, a template): a regular file of at most 1 MiB, no aliases."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist.") from None
    except OSError as err:
        raise ConfigError(f"{what} {path} can't be read: {err.strerror or err}.") from None
    if not path.is_file():
        raise ConfigError(f"{what} {path} is not a regular file.")
    if stat.st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{what} {path} is {stat.st_size:,} bytes; hf-finetune reads YAML files of at most "
                          f"{MAX_YAML_BYTES:,} bytes.")
    try:
        with path.open("rb") as f:
            text = f.read(MAX_YAML_BYTES + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{what} {path} can't be read: {err}.") from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise ConfigError(f"{what} {path} is nested too deeply to read; a config or template is a few levels of "
                          "option: value.", "Write plain values (a list of names, a mapping of a few keys).") from None
    except yaml.constructor.ConstructorError as err:
        tag = _unknown_tag(err)
        if tag is None:
            raise ConfigError(f"{what} {path} is not valid YAML: {err}".replace("\n", " ")) from None
        where = f" (line {err.problem_mark.line + 1})" if err.problem_mark else ""
        raise ConfigError(f"{what} {path}: the YAML tag {tag}{where} is refused: a {what.lower()} holds plain values "
                          "(text, numbers, lists, mappings), and code in one is never run.",
                          "Write the value itself, without the tag.") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML: {err}".replace("\n", " "),
                          "Fix the syntax (indentation, a ':' after each key) and run again.") from None


def _unknown_tag(err: yaml.constructor.ConstructorError) -> str | None:
    """The tag a safe loader has no constructor for (``!!python/object/apply:os.system``), as written."""
    marker = "constructor for the tag '"
    problem = err.problem or ""
    if marker not in problem:
        return None
    return problem.split(marker, 1)[1].rstrip("'").replace("tag:yaml.org,2002:", "!!")


def dump_yaml(values: Any) -> str:
    return yaml.dump(values, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)


def config_values(values: Any, source: str) -> dict[str, Any]:
    """Checked, typed run-config values from a parsed mapping (a config file, a run's run_config.yaml)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source} must be a mapping of option: value, got {type(values).__name__}.")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    if "trust_remote_code" in values:
        raise ConfigError(f"{source} sets trust_remote_code, which a config file can't do: a config may come "
                          "from someone else.", "Pass --trust-remote-code on the command line yourself.")
    check_keys(values, source)
    return {k: coerce(k, v, source) for k, v in values.items()}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a run-config YAML file into checked, typed values."""
    return config_values(read_yaml(path, "Config file"), f"Config file {path}")


def validate(config: RunConfig) -> RunConfig:
    """Reject values that would only fail later, deep inside training."""
    positive = ["learning_rate", "num_train_epochs", "per_device_train_batch_size",
                "per_device_eval_batch_size", "gradient_accumulation_steps", "logging_steps", "max_length"]
    for name in positive:
        value = getattr(config, name)
        if value is None or value <= 0:
            raise ConfigError(f"'{name}' must be greater than 0, got {value}.")
    for name in ("max_train_samples", "max_eval_samples", "max_test_samples", "eval_steps", "max_target_length", "image_size",
                 "generation_num_beams"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ConfigError(f"'{name}' must be greater than 0, got {value}.")
    for name in ("validation_size", "test_size"):
        value = getattr(config, name)
        if not 0 < value < 1:
            raise ConfigError(f"'{name}' must be a fraction between 0 and 1, got {value}.")
    _check_counts(config)
    if config.length_buckets <= 0:
        raise ConfigError(f"'length_buckets' must be greater than 0, got {config.length_buckets}.")
    if config.warmup_steps < 0 or config.weight_decay < 0 or (config.dataloader_num_workers or 0) < 0:
        raise ConfigError("'warmup_steps', 'weight_decay' and 'dataloader_num_workers' can't be negative.")
    if config.eval_strategy == "steps" and not config.eval_steps:
        raise ConfigError("eval_strategy 'steps' needs 'eval_steps'.")
    for name in ("eval_strategy", "train_sampling_strategy", "image_augmentation", "report_to"):
        choices = RunConfig.__dataclass_fields__[name].metadata.get("choices")
        if getattr(config, name) not in choices:
            raise ConfigError(f"'{name}' must be one of {', '.join(choices)}, got {getattr(config, name)!r}.")
    if config.max_zero_shot_samples < 0:
        raise ConfigError(f"'max_zero_shot_samples' can't be negative (0 skips the zero-shot step), got "
                          f"{config.max_zero_shot_samples}.")
    if config.hp_search is not None and not 1 <= config.hp_search <= MAX_HP_TRIALS:
        raise ConfigError(f"'hp_search' is a number of trials from 1 to {MAX_HP_TRIALS}, got {config.hp_search}: "
                          "each trial trains the model once.", "A few dozen trials are usual (e.g. --hp-search 20).")
    if config.streaming:
        _check_streaming(config)
    if config.bf16 and config.fp16:
        raise ConfigError("Choose one of bf16 and fp16, not both.")
    if config.output_dir is not None and not config.output_dir.strip():
        raise ConfigError("'output_dir' can't be empty.", "Leave it out for the default, or name a folder.")
    if config.push_to_hub:
        check_repo_id(config.push_to_hub)   # a bad target fails now, not after training
    if config.resume_from_hub and not config.push_to_hub:
        raise ConfigError("--resume-from-hub keeps checkpoints on a branch of the --push-to-hub repo; name that repo.",
                          "Add --push-to-hub OWNER/NAME.")
    if config.resume_from_hub and config.eval_strategy == "no":
        raise ConfigError("--resume-from-hub needs checkpoints, which are saved at each evaluation; "
                          "eval_strategy 'no' saves none.", "Use --eval-strategy epoch or steps.")
    if config.hub_create_pr and config.hub_revision:
        raise ConfigError("--hub-create-pr opens a pull request against the main branch; it can't be combined with "
                          "--hub-revision.")
    return config


def flag(name: str) -> str:
    """The command-line flag of a field (a config file's key is its name: both are named in messages)."""
    return "--" + name.replace("_", "-")


MAX_SEED = 2**32 - 1   # numpy's and torch's seeds: what transformers' set_seed takes
MAX_HP_TRIALS = 1000   # each trial is a training run: more would take a thousand runs' time


def _check_counts(config: RunConfig) -> None:
    """Values TrainingArguments or the seeding would take and fail on later, or silently read as something
    else (a max_steps of 0 or -5 as no limit at all)."""
    if not 0 <= config.seed <= MAX_SEED:
        raise ConfigError(f"{flag('seed')} must be between 0 and {MAX_SEED:,} (2**32 - 1), got {config.seed}.")
    if config.max_steps == 0 or config.max_steps < -1:
        raise ConfigError(f"{flag('max_steps')} must be a number of optimizer steps (1 or more), or -1 (the default: "
                          f"no limit, --num-train-epochs decides), got {config.max_steps}.")
    if config.num_processes is not None and config.num_processes < 1:
        raise ConfigError(f"{flag('num_processes')} is a number of training processes (1 or more), "
                          f"got {config.num_processes}.")
    schedules = scheduler_types()
    if config.lr_scheduler_type not in schedules:
        raise ConfigError(f"Unknown {flag('lr_scheduler_type')} {config.lr_scheduler_type!r}. "
                          f"{did_you_mean(config.lr_scheduler_type, schedules)}",
                          f"transformers' schedules: {', '.join(schedules)}.")


def _check_streaming(config: RunConfig) -> None:
    """--streaming reads rows as training goes, never all of them: the run's length can't come from epochs, and
    a search's trials would each read the whole stream again (a linear probe fits on the stream's first rows)."""
    if config.max_steps <= 0:
        raise ConfigError("--streaming reads the data as training goes, without counting its rows first, so the "
                          "number of training steps can't come from --num-train-epochs.",
                          "Give the length of the run with --max-steps N.")
    if config.hp_search:
        raise ConfigError("--hp-search can't be combined with --streaming: each trial would read the stream again, "
                          "and the trials would be compared on different rows.",
                          "Search on a local sample without --streaming (e.g. --max-train-samples 20000), then "
                          "stream with the values it chose.")


def streaming_schedule(config: RunConfig) -> tuple[RunConfig, str | None]:
    """A stream's epoch is a pass over all of it, which a run of --max-steps rarely ends: evaluation (and so
    the checkpoints a resume starts from) every eval_steps instead, a quarter of the run unless given."""
    if not config.streaming or config.eval_strategy != "epoch":
        return config, None
    steps = config.eval_steps or max(1, config.max_steps // 4)
    return (dataclasses.replace(config, eval_strategy="steps", eval_steps=steps),
            f"evaluating and saving a checkpoint every {steps} steps (--eval-strategy steps --eval-steps {steps}): "
            "an epoch of a stream is a pass over all of it")


def scheduler_types() -> list[str]:
    """The learning-rate schedules transformers knows (``SchedulerType``), in its order."""
    from transformers.trainer_utils import SchedulerType   # imports torch: only once a run is being resolved

    return [s.value for s in SchedulerType]


def check_accumulation(config: RunConfig, train_rows: int, processes: int) -> None:
    """Refuse to accumulate over more batches than an epoch has: each optimizer step would then be one whole
    epoch, cut short (transformers steps at the epoch's end), which is not what was asked for."""
    batches = -(-train_rows // (config.per_device_train_batch_size * max(processes, 1)))
    if config.gradient_accumulation_steps > batches:
        raise ConfigError(
            f"{flag('gradient_accumulation_steps')} {config.gradient_accumulation_steps} is more than the {batches} "
            f"batches of an epoch ({train_rows} training rows, batches of {config.per_device_train_batch_size}"
            + (f" on each of {processes} processes" if processes > 1 else "") + ").",
            f"Use at most {batches}, or a smaller --per-device-train-batch-size.")


def resolve(*layers: dict[str, Any]) -> RunConfig:
    """Merge value layers (lowest precedence first) over the schema defaults and validate."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items()})
    check_keys(merged, "Run configuration")
    return validate(RunConfig(**{k: coerce(k, v, "Run configuration") for k, v in merged.items()}))
