"""The Python API: what the CLI calls, usable as is from a notebook.

>>> from hf_finetune import finetune
>>> result = finetune("sentiment", max_train_samples=500, num_train_epochs=1)
>>> result.metrics["test"]["accuracy"], result.output_dir
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config as config_mod, metrics as metrics_mod, templates, tokens
from .config import RunConfig

if TYPE_CHECKING:
    from rich.console import Console

    from .training import FinetuneResult


def resolve_config(task: str | None = None, *, template: str | None = None, config: str | Path | None = None,
                   trust_remote_code: bool = False, **overrides: Any) -> tuple[templates.TaskTemplate, RunConfig]:
    """Template + config file + keyword overrides -> (template, validated RunConfig).

    Nothing in a template or config file runs code from outside transformers and hf-finetune, or
    loads a metric that is not built in, unless ``trust_remote_code`` (never settable from a file).
    """
    file_values = config_mod.load_config_file(config) if config else {}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    config_mod.check_keys(overrides, "Options")
    template_ref = template or overrides.get("template") or file_values.get("template") or task or file_values.get("task")
    if not template_ref:
        raise config_mod.ConfigError("No task given.", "Name one (e.g. `hf-finetune sentiment`); `hf-finetune tasks` lists them.")
    tmpl = templates.load(template_ref, trust_remote_code=trust_remote_code)
    dataset_given = overrides.get("dataset") or file_values.get("dataset")
    layers = [tmpl.defaults, {} if dataset_given else tmpl.default_run, file_values, overrides,
              {"task": tmpl.name, "template": template or overrides.get("template") or file_values.get("template")}]
    resolved = config_mod.resolve(*layers)
    if resolved.model is None and tmpl.default_model:
        resolved.model = tmpl.default_model
    if resolved.dataset is None and tmpl.default_dataset:
        resolved.dataset = tmpl.default_dataset
    if resolved.metric_for_best_model is None:
        resolved.metric_for_best_model = tmpl.metric_for_best_model
    metrics_mod.check_trusted(resolved.metrics or [name for name, _ in tmpl.metrics], trust_remote_code)
    return tmpl, resolved


def quiet_libraries(debug: bool = False) -> None:
    """Keep the libraries' own chatter (load reports, progress bars, warnings) out of the user's way."""
    if debug:
        return
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", module="torch")
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("hf_finetune").setLevel(logging.WARNING)


def finetune(task: str | None = None, *, template: str | None = None, config: str | Path | None = None,
             token: str | None = None, quiet: bool = True, console: "Console | None" = None,
             debug: bool = False, trust_remote_code: bool = False, **overrides: Any) -> "FinetuneResult":
    """Fine-tune a checkpoint on a task and return the metrics and the output dir.

    ``task`` names a bundled template (``hf_finetune.templates.bundled_names()``) or a template YAML
    path; ``config`` is a run-config YAML file; keyword ``overrides`` use the RunConfig names
    (``learning_rate=3e-5``, ``dataset="reviews.csv"``, ...). ``token`` is used for Hub access
    only and is never written anywhere. ``trust_remote_code`` allows template classes from outside
    transformers, metrics that are not built in and models with their own code, as in transformers.
    """
    from .training import run   # torch, transformers, datasets: only now that a run needs them

    quiet_libraries(debug)
    token = tokens.check(token, "the token argument") if token else None
    tmpl, resolved = resolve_config(task, template=template, config=config, trust_remote_code=trust_remote_code,
                                    **overrides)
    return run(tmpl, resolved, console=console, quiet=quiet, token=token)
