"""A run directory: the one type that reads, writes and lists what a fine-tuning run leaves on disk.

Push, card, evaluate, predict and the CI summary all go through ``RunDir``; none of them opens a
run's files by itself. Three rules hold here, because a run dir may come from someone else:

- it never reads or writes through a symbolic link (writes go to a temp file renamed over the name,
  which replaces a link instead of following it; reads refuse links);
- a push uploads only regular files whose names a run writes (an allow-list), and refuses a run dir
  that holds a link or a special file, naming it;
- nothing pushed holds a local path: ``run_info.json`` is written without any, and the pushed
  ``run_config.yaml`` names local inputs by their file name only.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import stat
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from . import config as config_mod
from .errors import ConfigError
from .run_info import FILE as INFO, RunInfo   # INFO's presence (a regular file) means "finished"

CONFIG = "run_config.yaml"
METRICS = "metrics.json"
HISTORY = "log_history.json"
CARD = "README.md"
CURVES = "training_curves.png"
CONFUSION = "confusion_matrix.png"
EXAMPLE = "example.png"
EVAL_RESULTS = ".eval_results"        # pushed only: made from metrics.json for a run on a Hub data set

# What a push uploads: the files a run writes, by exact name or pattern (the model and processor in
# their save_pretrained layouts, the card, metrics, curves, config). Anything else stays local.
PUSHED_NAMES = frozenset({
    CARD, METRICS, HISTORY, INFO, CONFIG, CURVES, CONFUSION, EXAMPLE,
    "config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model", "chat_template.jinja",
    "preprocessor_config.json", "processor_config.json",
})
PUSHED_PATTERNS = ("model-*-of-*.safetensors",)


def is_pushed_name(name: str) -> bool:
    return name in PUSHED_NAMES or any(fnmatch.fnmatchcase(name, p) for p in PUSHED_PATTERNS)


@dataclass(frozen=True)
class PushPlan:
    """The exact content of a push: (path in the repo, local file or bytes), and what stays local."""

    files: list[tuple[str, Path | bytes]]
    left_out: list[str]


def json_text(data: Any) -> str:
    """``data`` as standard JSON: a number that is not finite (a diverged run's NaN loss), which Python's json
    would write as ``NaN`` or ``Infinity`` and other readers refuse, is written as null."""
    return json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class RunDir:
    """A run's folder, finished or being written (the hidden staging dir of a run in progress)."""

    def __init__(self, path: str | Path, *, hub_snapshot: bool = False):
        self.path = Path(path)
        # a snapshot folder of the Hugging Face cache (what `pull` and predict on a Hub id read): its files
        # are links into the same repo's blobs/ folder, made by huggingface_hub; those, and only those, are read
        self._blobs = (self.path.parent.parent / "blobs").resolve() if hub_snapshot else None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """A finished run, or a clear error."""
        run = cls(path)
        if not run.path.is_dir():
            raise ConfigError(f"{path} is not a folder." if run.path.exists() else f"{path} does not exist.")
        if not run.is_finished:
            raise ConfigError(f"{path} is not a finished hf-finetune run (no {INFO}).",
                              "Give the output dir of a run that ended successfully.")
        return run

    # -- reading ---------------------------------------------------------------------------------
    def _regular(self, name: str) -> Path | None:
        """The path of a regular file in the run dir, None if absent; a link or special file is refused."""
        path = self.path / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode) and self._blobs is not None:
            target = path.resolve()
            if target.parent == self._blobs and target.is_file():
                return path
        if stat.S_ISLNK(mode):
            raise ConfigError(f"{path} is a symbolic link; hf-finetune does not read or write through links in a "
                              "run dir.", "Replace it with the file itself.")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path} is not a regular file.")
        return path

    def has(self, name: str) -> bool:
        return self._regular(name) is not None

    @property
    def is_finished(self) -> bool:
        try:
            return self.has(INFO)
        except ConfigError:
            return False

    def read_text(self, name: str) -> str:
        path = self._regular(name)
        if path is None:
            raise ConfigError(f"{self.path} lacks {name}.")
        return path.read_text(encoding="utf-8")

    def read_json(self, name: str) -> Any:
        try:
            return json.loads(self.read_text(name))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{self.path / name} is not valid JSON ({err.msg}, line {err.lineno}).") from None

    @cached_property
    def info(self) -> RunInfo:
        """The run record (an empty one for a model folder that has none)."""
        return RunInfo.read(self.read_text(INFO), str(self.path / INFO)) if self.has(INFO) else RunInfo()

    @cached_property
    def metrics(self) -> dict[str, Any]:
        return self.read_json(METRICS)

    @cached_property
    def log_history(self) -> list[dict[str, Any]]:
        return self.read_json(HISTORY) if self.has(HISTORY) else []

    @cached_property
    def config(self) -> dict[str, Any]:
        """run_config.yaml as checked, typed values (it may come from someone else)."""
        path = self._regular(CONFIG)
        if path is None:
            raise ConfigError(f"{self.path} lacks {CONFIG}.")
        return config_mod.config_values(config_mod.read_yaml(path, "Run config"), f"{path}")

    # -- writing ---------------------------------------------------------------------------------
    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write atomically: a temp file in the dir, renamed over ``name`` (a link there is replaced, not followed)."""
        target = self.path / name
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp makes 0600; a run's files are plain files
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.__dict__.pop({INFO: "info", METRICS: "metrics", HISTORY: "log_history", CONFIG: "config"}.get(name, ""),
                          None)
        return target

    def normalise_permissions(self) -> None:
        """Give the files of the run the mode the umask asks for (libraries write some of them 0600)."""
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    os.chmod(entry.path, 0o666 & ~_UMASK)

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json_text(data))

    # -- pushing ---------------------------------------------------------------------------------
    def push_plan(self) -> PushPlan:
        """The files a push uploads. Refuses a run dir holding a link or a special file (by name)."""
        files: list[tuple[str, Path | bytes]] = []
        left_out: list[str] = []
        with os.scandir(self.path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_symlink():
                    raise ConfigError(f"{entry.path} is a symbolic link; a push never uploads links (nor what they "
                                      "point to), and nothing was pushed.", "Remove it, or copy the file in its place.")
                if entry.is_dir(follow_symlinks=False):
                    left_out.append(entry.name + "/")
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise ConfigError(f"{entry.path} is not a regular file (a FIFO, socket or device); nothing was "
                                      "pushed.", "Remove it from the run dir.")
                if not is_pushed_name(entry.name):
                    left_out.append(entry.name)
                elif entry.name == CONFIG:
                    files.append((CONFIG, self.shareable_config().encode("utf-8")))
                else:
                    files.append((entry.name, Path(entry.path)))
        files.extend(self.eval_results())
        return PushPlan(files, left_out)

    def eval_results(self) -> list[tuple[str, bytes]]:
        """The Hub's eval-results file (``.eval_results/<data set>.yaml``) for a run on a Hub data set: its
        headline metric on the test split, which then shows on the model page and the data set's board."""
        from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

        info = self.info
        data, metric = info.dataset, info.metric_for_best_model
        value = (self.metrics.get("test") or {}).get(metric) if self.has(METRICS) else None
        if not data.hub_id or value is None:
            return []
        origin = info.splits["test"].origin if "test" in info.splits else "test"
        entry = EvalResultEntry(dataset_id=data.hub_id, task_id=data.config or "default",
                                value=round(float(value), 4), notes=f"{metric} on {origin}, fine-tuned with hf-finetune")
        name = data.hub_id.replace("/", "__")
        return [(f"{EVAL_RESULTS}/{name}.yaml", config_mod.dump_yaml(eval_result_entries_to_yaml([entry])).encode())]

    def shareable_config(self) -> str:
        """run_config.yaml as others can use it: local inputs named by their file name, no local paths."""
        values = dict(self.config)
        values["output_dir"] = None   # where it was written here is nobody else's business
        local = self.info.local_inputs
        notes = []
        for key in ("model", "dataset", "template"):
            if getattr(local, key) and values.get(key):
                values[key] = Path(str(values[key])).name
                notes.append(f"{key} {values[key]}")
        header = "# hf-finetune run configuration: repeat this run with `hf-finetune --config run_config.yaml`\n"
        if notes:
            header += f"# local inputs of the original run (not in this repo): {', '.join(notes)}\n"
        return header + config_mod.dump_yaml(values)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()   # once, at import: umask can only be read by setting it
