"""Task templates: declarative YAML files that say which classes and defaults a task uses.

A template is data. The engine only interprets it: ``kind`` picks the data/pre-processing path
(``text-classification``, ``summarization``, ``image-classification``), everything else names
classes (resolved from ``transformers`` or a ``module:attr`` path) and values. A new task of an
existing kind is one new YAML file; ``--template my.yaml`` runs a user's own.

Keys:
  name, description, kind, pipeline_tag
  model: {auto_class, processor, default, load_args}
  data: {default, default_run: run-config values used only with the default data set,
         columns: {<role>: [candidate column names]},
         prefix: input prefix, a string or one per model type ({t5: "summarize: "})}
  collator: {class, args}
  trainer: {class, args, callbacks: [{class, args}]}
  metrics: [{name, args}]; metric_for_best_model; greater_is_better
  defaults: run-config values (see hf_finetune.config.RunConfig)
  card: {license, language, tags}
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .config import RunConfig, check_keys, coerce
from .errors import ConfigError, did_you_mean

KINDS = ("text-classification", "summarization", "image-classification")
_TOP_KEYS = {"name", "description", "kind", "pipeline_tag", "model", "data", "collator", "trainer",
             "metrics", "metric_for_best_model", "greater_is_better", "defaults", "card"}
_SECTION_KEYS = {
    "model": {"auto_class", "processor", "default", "load_args"},
    "data": {"default", "default_run", "columns", "prefix"},
    "collator": {"class", "args"},
    "trainer": {"class", "args", "callbacks"},
    "card": {"license", "language", "tags"},
}


@dataclass
class ClassSpec:
    """A class named in a template, with keyword arguments for its constructor."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def resolve(self, default_module: str = "transformers") -> Any:
        """Import the class: ``Name`` from transformers, or ``package.module:Name``."""
        module_name, _, attr = self.name.rpartition(":")
        module_name = module_name or default_module
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"Template names class {self.name!r}, which can't be imported: {err}.") from None


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
    metrics: list[ClassSpec]
    metric_for_best_model: str
    greater_is_better: bool
    defaults: dict[str, Any]
    card: dict[str, Any]
    default_run: dict[str, Any] = field(default_factory=dict)
    prefix: str | dict[str, str] = ""
    model_load_args: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def input_prefix(template: "TaskTemplate", model_type: str | None) -> str:
    """The template's input prefix: one string, or one per model family (``{t5: "summarize: "}``)."""
    if isinstance(template.prefix, dict):
        return template.prefix.get(model_type or "", template.prefix.get("default", ""))
    return template.prefix


def bundled_dir() -> Path:
    return Path(str(resources.files("hf_finetune.task_templates")))


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_dir().glob("*.yaml"))


def _class_spec(value: Any, where: str) -> ClassSpec:
    if isinstance(value, str):
        return ClassSpec(value)
    if isinstance(value, dict) and "class" in value:
        unknown = set(value) - {"class", "args"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; a class entry has 'class' and 'args'.")
        return ClassSpec(str(value["class"]), dict(value.get("args") or {}))
    if isinstance(value, dict) and "name" in value:  # metrics use `name`
        return ClassSpec(str(value["name"]), dict(value.get("args") or {}))
    raise ConfigError(f"{where}: expected a class name or {{class: ..., args: ...}}, got {value!r}.")


def parse(raw: Any, source: str) -> TaskTemplate:
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
    if raw["kind"] not in KINDS:
        raise ConfigError(f"Template {source}: kind {raw['kind']!r} is not supported. {did_you_mean(raw['kind'], KINDS)}")
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
    return TaskTemplate(
        name=str(raw["name"]),
        kind=raw["kind"],
        description=str(raw.get("description", "")),
        pipeline_tag=str(raw.get("pipeline_tag", raw["kind"])),
        auto_class=_class_spec(model["auto_class"], f"{source} model.auto_class"),
        processor=_class_spec(model["processor"], f"{source} model.processor"),
        default_model=str(model.get("default") or ""),
        default_dataset=str(data.get("default") or ""),
        columns={k: [str(c) for c in v] for k, v in (data.get("columns") or {}).items()},
        prefix=(dict(data["prefix"]) if isinstance(data.get("prefix"), dict) else str(data.get("prefix") or "")),
        collator=_class_spec(raw.get("collator") or "DataCollatorWithPadding", f"{source} collator"),
        trainer=ClassSpec(str(trainer.get("class", "Trainer")), dict(trainer.get("args") or {})),
        callbacks=[_class_spec(c, f"{source} trainer.callbacks") for c in trainer.get("callbacks") or []],
        metrics=[_class_spec(m, f"{source} metrics") for m in raw["metrics"]],
        metric_for_best_model=str(raw["metric_for_best_model"]),
        greater_is_better=bool(raw.get("greater_is_better", True)),
        defaults=defaults,
        card=dict(raw.get("card") or {}),
        default_run=default_run,
        model_load_args=dict(model.get("load_args") or {}),
        source=source,
    )


def load(name_or_path: str) -> TaskTemplate:
    """Load a bundled template by name, or a user's template from a YAML path."""
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"Template file {path} does not exist.")
    else:
        names = bundled_names()
        if name_or_path not in names:
            raise ConfigError(f"Unknown task {name_or_path!r}. {did_you_mean(name_or_path, names)}",
                              "Run `hf-finetune tasks` to list them, or pass --template my_task.yaml.")
        path = bundled_dir() / f"{name_or_path}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"Template {path} is not valid YAML: {err}".replace("\n", " ")) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Template {path} can't be read: {err}.") from None
    return parse(raw, str(path))


def list_templates() -> list[TaskTemplate]:
    return [load(name) for name in bundled_names()]


__all__ = ["TaskTemplate", "ClassSpec", "load", "list_templates", "bundled_names", "RunConfig"]
