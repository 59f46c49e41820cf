"""Task templates: declarative YAML files that say which classes and defaults a task uses.

A template is data. The engine only interprets it: ``kind`` picks the task kind (``hf_finetune.kinds``:
how examples become model inputs, metrics, card sections), everything else names classes (resolved
from ``transformers``; a ``module:attr`` path only with ``trust_remote_code``) and values. A new task
of an existing kind is one new YAML file; ``--template my.yaml`` runs a user's own.

Keys:
  name, description, kind, pipeline_tag
  model: {auto_class, processor, default, load_args}
  data: {default, default_run: run-config values used only with the default data set,
         columns: {<role>: [candidate column names]}; a text candidate "first,second" is a text pair,
                  found when both columns are there (for kinds that read pairs),
         prefix: input prefix, a string or one per model type ({t5: "summarize: "})}
  collator: {class, args}
  trainer: {class, args, callbacks: [{class, args}]}
  metrics: [{name, args}]; metric_for_best_model; greater_is_better
  defaults: run-config values (see hf_finetune.config.RunConfig)
  search_space: what `--hp-search N` may vary, {<option>: {low, high, log} or {choices: [...]}}, over
         learning_rate, num_train_epochs, warmup_steps, weight_decay, per_device_train_batch_size,
         lr_scheduler_type (see hf_finetune.hpsearch)
  card: {license, language, tags}
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import kinds
from .config import check_keys, coerce, read_yaml
from .errors import ConfigError, did_you_mean

_TOP_KEYS = {"name", "description", "kind", "pipeline_tag", "model", "data", "collator", "trainer",
             "metrics", "metric_for_best_model", "greater_is_better", "defaults", "card", "search_space"}
_SECTION_KEYS = {
    "model": {"auto_class", "processor", "default", "load_args"},
    "data": {"default", "default_run", "columns", "prefix"},
    "collator": {"class", "args"},
    "trainer": {"class", "args", "callbacks"},
    "card": {"license", "language", "tags"},
}


# Trust, as transformers' trust_remote_code: a template is data. Without trust_remote_code the classes it
# names resolve only from transformers (a class of the kind each slot needs), and their arguments can't
# switch on remote code, push anywhere or carry credentials. A `module:attr` name is code someone else
# wrote: it is imported only with trust_remote_code.


def _has_from_pretrained(cls: type) -> bool:
    return callable(getattr(cls, "from_pretrained", None))


def _is_trainer(cls: type) -> bool:
    from transformers import Trainer

    return issubclass(cls, Trainer)


def _is_callback(cls: type) -> bool:
    from transformers import TrainerCallback

    return issubclass(cls, TrainerCallback)


SLOTS: dict[str, tuple[str, Any]] = {   # slot -> (what it must be, check)
    "model.auto_class": ("a model class with from_pretrained", _has_from_pretrained),
    "model.processor": ("a processor class with from_pretrained", _has_from_pretrained),
    "collator": ("a transformers data collator", lambda cls: "DataCollator" in cls.__name__),
    "trainer": ("a transformers Trainer class", _is_trainer),
    "trainer.callbacks": ("a TrainerCallback class", _is_callback),
}
UNTRUSTED_ARGS = re.compile(r"trust_remote_code|push_to_hub.*|hub_.*|report_to|output_dir|logging_dir|deepspeed|"
                            r"fsdp_config|.*token.*|.*_url|endpoint")


def _untrusted(what: str, source: str) -> ConfigError:
    return ConfigError(f"Template {source} {what}; that runs code, or sends data or credentials, that the template's "
                       "author chose, so it is refused by default.",
                       "If you trust this template, pass --trust-remote-code (trust_remote_code=True in the API).")


def check_args(args: dict[str, Any], where: str, source: str, trusted: bool) -> dict[str, Any]:
    if not trusted:
        for key in args:
            if UNTRUSTED_ARGS.fullmatch(str(key)):
                raise _untrusted(f"sets {where} argument {key!r}", source)
    return args


@dataclass
class ClassSpec:
    """A class named in a template, with keyword arguments for its constructor."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    slot: str = "trainer"
    trusted: bool = False
    source: str = ""

    def resolve(self) -> Any:
        """Import the class: ``Name`` from transformers; ``package.module:Name`` only when trusted."""
        module_name, _, attr = self.name.rpartition(":")
        if module_name and not self.trusted:
            raise _untrusted(f"names the class {self.name!r} ({self.slot}), from outside transformers and hf-finetune",
                             self.source)
        try:
            obj = getattr(importlib.import_module(module_name or "transformers"), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"Template {self.source} names class {self.name!r}, which can't be imported: {err}.") \
                from None
        what, fits = SLOTS[self.slot]
        if not self.trusted and not (isinstance(obj, type) and fits(obj)):
            raise ConfigError(f"Template {self.source}: {self.name!r} ({self.slot}) is not {what}.")
        return obj


@dataclass
class TaskTemplate:
    name: str
    kind: str
    description: str
    pipeline_tag: str
    auto_class: ClassSpec
    processor: ClassSpec
    default_model: str
    default_dataset: str
    columns: dict[str, list[str]]
    collator: ClassSpec
    trainer: ClassSpec
    callbacks: list[ClassSpec]
    metrics: list[tuple[str, dict[str, Any]]]
    metric_for_best_model: str
    greater_is_better: bool
    defaults: dict[str, Any]
    card: dict[str, Any]
    default_run: dict[str, Any] = field(default_factory=dict)
    prefix: str | dict[str, str] = ""
    model_load_args: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    bundled: bool = False
    trust_remote_code: bool = False
    search_space: dict[str, dict[str, Any]] = field(default_factory=dict)

    def input_prefix(self, model_type: str | None) -> str:
        """The input prefix for a model family: one string, or one per family (``{t5: "summarize: "}``)."""
        if isinstance(self.prefix, dict):
            return self.prefix.get(model_type or "", self.prefix.get("default", ""))
        return self.prefix


def bundled_dir() -> Path:
    return Path(str(resources.files("hf_finetune.task_templates")))


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_dir().glob("*.yaml"))


def bundled_path(name: str) -> Path:
    """The file of a bundled template, or a clear error naming the tasks there are."""
    names = bundled_names()
    if name not in names:
        raise ConfigError(f"Unknown task {name!r}. {did_you_mean(name, names)}",
                          "Run `hf-finetune tasks` to list them, or pass --template my_task.yaml.")
    return bundled_dir() / f"{name}.yaml"


# RunConfig fields a search may vary: TrainingArguments names, so the Trainer applies them per trial
SEARCHABLE = {"learning_rate": float, "num_train_epochs": float, "warmup_steps": float, "weight_decay": float,
              "per_device_train_batch_size": int, "lr_scheduler_type": str}


def parse_search_space(raw: Any, source: str) -> dict[str, dict[str, Any]]:
    """A template's ``search_space``: ``{name: {low, high[, log]}}`` or ``{name: {choices: [...]}}``."""
    if raw is None:
        return {}
    where = f"Template {source} 'search_space'"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping of option: {{low, high, log}} or {{choices}}.")
    space: dict[str, dict[str, Any]] = {}
    for name, spec in raw.items():
        if name not in SEARCHABLE:
            raise ConfigError(f"{where}: {name!r} can't be searched; these can: {', '.join(SEARCHABLE)}.")
        value_type = SEARCHABLE[name]
        if isinstance(spec, dict) and set(spec) == {"choices"} and isinstance(spec["choices"], list) and spec["choices"]:
            space[name] = {"choices": [coerce(name, v, where) for v in spec["choices"]]}
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec) <= {"low", "high", "log"} and value_type is not str:
            try:
                low, high = value_type(spec["low"]), value_type(spec["high"])
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: {name} needs numbers for 'low' and 'high', got {spec!r}.") from None
            log = bool(spec.get("log", False))
            if not low < high or (log and low <= 0) or low < 0:
                raise ConfigError(f"{where}: {name} needs 0 <= low < high (low > 0 with log: true), got {spec!r}.")
            space[name] = {"low": low, "high": high, "log": log}
        else:
            raise ConfigError(f"{where}: {name} must be {{low, high}} (optionally log: true) or {{choices: [...]}}, "
                              f"got {spec!r}.")
    return space


def _args(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'args' must be a mapping, got {value!r}.")
    return dict(value)


def _class_spec(value: Any, slot: str, source: str, trusted: bool) -> ClassSpec:
    where = f"Template {source} {slot}"
    if isinstance(value, str):
        spec = ClassSpec(value, {}, slot, trusted, source)
    elif isinstance(value, dict) and "class" in value:
        unknown = set(value) - {"class", "args"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; a class entry has 'class' and 'args'.")
        spec = ClassSpec(str(value["class"]), _args(value.get("args"), where), slot, trusted, source)
    else:
        raise ConfigError(f"{where}: expected a class name or {{class: ..., args: ...}}, got {value!r}.")
    check_args(spec.args, slot, source, trusted)
    spec.resolve()   # refused or missing classes fail now, before any work
    return spec


def _metric_spec(value: Any, source: str) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and "name" in value:
        return str(value["name"]), _args(value.get("args"), f"Template {source} metrics")
    raise ConfigError(f"Template {source} metrics: expected a metric name or {{name: ..., args: ...}}, got {value!r}.")


def parse(raw: Any, source: str, *, trust_remote_code: bool = False, bundled: bool = False) -> TaskTemplate:
    """Validate a template mapping; every mistake is reported with the file and key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"Template {source} must be a YAML mapping.")
    for key in raw:
        if key not in _TOP_KEYS:
            raise ConfigError(f"Template {source}: unknown key {key!r}. {did_you_mean(key, sorted(_TOP_KEYS))}")
    for section, allowed in _SECTION_KEYS.items():
        body = raw.get(section) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"Template {source}: '{section}' must be a mapping.")
        for key in body:
            if key not in allowed:
                raise ConfigError(
                    f"Template {source}: unknown key '{section}.{key}'. {did_you_mean(key, sorted(allowed))}"
                )
    for required in ("name", "kind", "model", "data", "metrics", "metric_for_best_model"):
        if required not in raw:
            raise ConfigError(f"Template {source} lacks the required key {required!r}.")
    if raw["kind"] not in kinds.names():
        raise ConfigError(f"Template {source}: kind {raw['kind']!r} is not supported. "
                          f"{did_you_mean(raw['kind'], kinds.names())}")
    model, data = raw["model"], raw["data"]
    for key in ("auto_class", "processor"):
        if key not in model:
            raise ConfigError(f"Template {source} lacks 'model.{key}'.")
    defaults = dict(raw.get("defaults") or {})
    check_keys(defaults, f"Template {source} 'defaults'")
    defaults = {k: coerce(k, v, f"Template {source} 'defaults'") for k, v in defaults.items()}
    default_run = dict(data.get("default_run") or {})
    check_keys(default_run, f"Template {source} 'data.default_run'")
    default_run = {k: coerce(k, v, f"Template {source} 'data.default_run'") for k, v in default_run.items()}
    trainer = raw.get("trainer") or {}
    trusted = trust_remote_code or bundled
    trainer_spec = _class_spec({"class": trainer.get("class", "Trainer"), "args": trainer.get("args")}, "trainer",
                               source, trusted)
    load_args = check_args(_args(model.get("load_args"), f"Template {source} model.load_args"), "model.load_args",
                           source, trusted)
    return TaskTemplate(
        name=str(raw["name"]),
        kind=raw["kind"],
        description=str(raw.get("description", "")),
        pipeline_tag=str(raw.get("pipeline_tag", raw["kind"])),
        auto_class=_class_spec(model["auto_class"], "model.auto_class", source, trusted),
        processor=_class_spec(model["processor"], "model.processor", source, trusted),
        default_model=str(model.get("default") or ""),
        default_dataset=str(data.get("default") or ""),
        columns=_columns(data),
        prefix=(dict(data["prefix"]) if isinstance(data.get("prefix"), dict) else str(data.get("prefix") or "")),
        collator=_class_spec(raw.get("collator") or "DataCollatorWithPadding", "collator", source, trusted),
        trainer=trainer_spec,
        callbacks=[_class_spec(c, "trainer.callbacks", source, trusted) for c in trainer.get("callbacks") or []],
        metrics=[_metric_spec(m, source) for m in raw["metrics"]],
        metric_for_best_model=str(raw["metric_for_best_model"]),
        greater_is_better=bool(raw.get("greater_is_better", True)),
        defaults=defaults,
        card=dict(raw.get("card") or {}),
        default_run=default_run,
        model_load_args=load_args,
        source=source,
        bundled=bundled,
        trust_remote_code=trust_remote_code,
        search_space=parse_search_space(raw.get("search_space"), source),
    )


def _columns(data: dict[str, Any]) -> dict[str, list[str]]:
    return {str(k): [str(c) for c in v] for k, v in (data.get("columns") or {}).items()}


def column_candidates(role: str, first: str | None = None) -> list[str]:
    """The column names the bundled templates look for in the ``role`` (template ``first``'s names first):
    what ``predict`` looks for in a table, so that it finds every column training would."""
    names = sorted(bundled_names(), key=lambda name: name != first)
    candidates: list[str] = []
    for name in names:
        data = (read_yaml(bundled_dir() / f"{name}.yaml", "Template") or {}).get("data") or {}
        candidates += [c for c in _columns(data).get(role, []) if c not in candidates]
    return candidates


def load(name_or_path: str, *, trust_remote_code: bool = False) -> TaskTemplate:
    """Load a bundled template by name, or a user's template from a YAML path.

    Bundled templates are hf-finetune's own code and always trusted; any other template is data, and
    names no code from outside transformers unless ``trust_remote_code``.
    """
    path = Path(name_or_path)
    bundled = False
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"Template file {path} does not exist.")
    else:
        path, bundled = bundled_path(name_or_path), True
    raw = read_yaml(path, "Template")
    return parse(raw, str(path), trust_remote_code=trust_remote_code, bundled=bundled)


def list_templates() -> list[TaskTemplate]:
    return [load(name) for name in bundled_names()]


__all__ = ["TaskTemplate", "ClassSpec", "load", "list_templates", "bundled_names"]
