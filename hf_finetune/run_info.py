"""The run record: what a finished run was (``run_info.json``), as one typed object.

Training fills it and saves it last, so its presence means the run dir is complete (``is_finished``);
the card, ``push``, ``predict``, ``evaluate``, the CI summary and recovery read it, all through this
type (as transformers' ``TrainerState`` is saved and loaded as JSON). It is pushed with the model, so it
holds no local path: local inputs are named by their file or folder name.

A run dir may come from someone else: loading checks every field's type and refuses a record that
does not fit, instead of failing later in whichever command reads the odd field.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

FILE = "run_info.json"


@dataclass
class BaseModel:
    """The checkpoint the run started from."""

    ref: str = ""                 # a Hub id, an embedded asset, or a local folder's name
    hub_id: str | None = None     # for the card's `base_model`
    revision: str | None = None   # the commit a Hub model was pinned to
    description: str = ""


@dataclass
class DataSet:
    """The data the run was trained and measured on."""

    name: str = ""
    hub_id: str | None = None
    config: str | None = None
    description: str = ""
    content: str = ""                                        # a hash of local files, or a Hub fingerprint
    files: dict[str, list[str]] = field(default_factory=dict)   # split -> file names it was read from
    label_names_file: str | None = None


@dataclass
class TemplateRef:
    name: str = ""
    bundled: bool = True
    file: str = ""


@dataclass
class LocalInputs:
    """Which inputs were files on the training machine (never pushed; named by file name in shared files)."""

    model: bool = False
    dataset: bool = False
    template: bool = False


@dataclass
class Split:
    count: int = 0
    origin: str = ""   # where the split came from: "validation (dev.tsv)", "stratified 10% hold-out of ..."


@dataclass
class RunInfo:
    """Everything later commands need to know about a finished run."""

    task: str = ""
    kind: str = ""
    pipeline_tag: str = ""
    model_name: str = ""
    template: TemplateRef = field(default_factory=TemplateRef)
    base_model: BaseModel = field(default_factory=BaseModel)
    dataset: DataSet = field(default_factory=DataSet)
    local_inputs: LocalInputs = field(default_factory=LocalInputs)
    splits: dict[str, Split] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)   # split -> label -> examples
    columns: dict[str, str] = field(default_factory=dict)                   # role -> column of the data
    metric_names: list[str] = field(default_factory=list)
    metric_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_for_best_model: str = ""
    license: str | None = None
    model_license: str | None = None
    data_license: str | None = None
    language: Any = None           # a code or a list of codes, as the template's card section gives it
    tags: list[str] = field(default_factory=list)
    example_input: str | dict[str, str] | None = None   # a text pair as the pipeline takes one: {text, text_pair}
    prefix: str = ""               # the input prefix the model was trained with
    precision: str = ""
    stats: dict[str, Any] = field(default_factory=dict)         # token lengths, length buckets, dropped rows
    versions: dict[str, str] = field(default_factory=dict)
    install: str | None = None     # the pip requirement that installs this hf-finetune
    finished: str = ""
    test_analysis: dict[str, Any] | None = None                 # the kind's analysis of the test predictions
    run_id: str = ""
    fingerprint: str = ""          # of settings, data and tokenizer: the same run is not trained twice
    baseline: dict[str, Any] | None = None
    checkpoint_notes: list[str] = field(default_factory=list)
    hp_search: dict[str, Any] | None = None

    # -- as JSON --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Any, source: str = FILE) -> "RunInfo":
        """A record from parsed JSON: unknown keys are ignored (a newer hf-finetune's), missing ones take
        their defaults (an older one's), and a value of the wrong type is refused, naming it."""
        return _build(cls, values, source)

    def save(self, folder: str | Path) -> Path:
        """Write run_info.json into a run dir (atomically, never through a link); a run writes it last."""
        from .rundir import RunDir

        return RunDir(folder).write_json(FILE, self.to_dict())

    @classmethod
    def load(cls, folder: str | Path) -> "RunInfo":
        from .rundir import RunDir

        return RunDir(folder).info

    @staticmethod
    def is_finished(folder: str | Path) -> bool:
        from .rundir import RunDir

        return RunDir(folder).is_finished

    @classmethod
    def read(cls, text: str, source: str) -> "RunInfo":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{source} is not valid JSON ({err.msg}, line {err.lineno}).") from None
        return cls.from_dict(values, source)


_HINTS: dict[type, dict[str, Any]] = {}


def _build(record_type: type, values: Any, source: str, where: str = "") -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {where or 'the record'} must be a JSON object, got {type(values).__name__}.")
    hints = _HINTS.setdefault(record_type, typing.get_type_hints(record_type))
    known = {f.name for f in dataclasses.fields(record_type)}
    return record_type(**{name: _value(hints[name], value, source, f"{where}{name}")
                          for name, value in values.items() if name in known})


def _value(hint: Any, value: Any, source: str, where: str) -> Any:
    """``value`` checked against the type ``hint``; nested records built."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, f"{where}.")
    if value is None and (hint is Any or type(None) in args):
        return None
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _value(options[0], value, source, where)
        for option in options:   # the first type the value fits
            try:
                return _value(option, value, source, where)
            except ConfigError:
                continue
        names = " or ".join(getattr(typing.get_origin(o) or o, "__name__", str(o)) for o in options)
        raise ConfigError(f"{source}: '{where}' must be {names}, got {type(value).__name__}.",
                          "The run dir's record is damaged or was edited by hand.")
    expected = origin or hint
    if expected is Any:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: '{where}' must be {getattr(expected, '__name__', expected)}, "
                          f"got {type(value).__name__}.", "The run dir's record is damaged or was edited by hand.")
    if expected is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
        return {str(k): _build(args[1], v, source, f"{where}.{k}.") for k, v in value.items()}
    return value
