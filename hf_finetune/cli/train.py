"""`hf-finetune TASK [options]`: the training command. Its options are RunConfig's fields; it runs here,
under `accelerate launch` (--num-processes) or as a Hugging Face Job (--jobs-flavor)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from .. import config as config_mod, kinds, tokens
from ..config import RunConfig
from ..errors import ConfigError
from ._options import HelpFormatter, Parser, add_common_options

if TYPE_CHECKING:
    from ..templates import TaskTemplate

GROUP_TITLES = {"task": "run", "model": "model", "data": "data", "training": "training (TrainingArguments names)",
                "metrics": "metrics", "hub": "Hugging Face Hub"}
DEFAULT_NOTE = re.compile(r"\s*\(default: [^()]*(?:\([^()]*\)[^()]*)*\)")
JOBS_OPTIONS = ("jobs_flavor", "jobs_timeout", "jobs_namespace", "jobs_detach", "jobs_max_upload", "dry_run")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown_default(name: str, template: TaskTemplate | None) -> Any:
    if template is not None:
        if name in template.defaults:
            return template.defaults[name]
        if name == "model":
            return template.default_model or None
        if name == "dataset":
            return template.default_dataset or None
        if name == "metric_for_best_model":
            return template.metric_for_best_model
        if name == "metrics":
            return ",".join(name for name, _ in template.metrics)
    return RunConfig.__dataclass_fields__[name].default


def _help_with_default(text: str, shown: Any) -> str:
    """The help with the option's real default written in: its argparse default is SUPPRESS, which
    argparse never shows."""
    if shown is None:
        return text
    if shown != "" and not isinstance(shown, bool):
        text = DEFAULT_NOTE.sub("", text)   # the real default (e.g. the template's) is shown instead
    if "(default:" in text:
        return text
    return f"{text} (default: {str(shown).replace('%', '%%')})"   # argparse %-formats help texts


def training_parser(template: TaskTemplate | None) -> argparse.ArgumentParser:
    """The options of RunConfig's fields default to SUPPRESS, so a parsed namespace holds only those the
    user typed: a default must not override a --config file."""
    prog = f"hf-finetune {template.name}" if template else "hf-finetune"
    description = template.description if template else "Fine-tune a model with a task template."
    if template and template.default_run:
        description += (" With the default data set these also apply: "
                        + ", ".join(f"{k}={v}" for k, v in template.default_run.items()) + ".")
    parser = Parser(prog=prog, description=description, allow_abbrev=False, formatter_class=HelpFormatter)
    add_common_options(parser, trust=True)
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--config", help="Run-config YAML file; flags override its values.", default=None)
    run_group.add_argument("--quiet", action="store_true", help="Print only errors and the final summary.")
    _add_jobs_options(parser)
    groups: dict[str, Any] = {"task": run_group}
    kind_options = kinds.get(template.kind).options if template is not None else None
    for f in RunConfig.fields():
        if f.metadata.get("cli") is False:
            continue
        if f.metadata.get("per_kind") and kind_options is not None and f.name not in kind_options:
            continue   # an option of other kinds of task (--summary-column under sentiment)
        group = groups.setdefault(f.metadata["group"],
                                  parser.add_argument_group(GROUP_TITLES.get(f.metadata["group"], f.metadata["group"])))
        base, _ = config_mod.field_type(f.name)
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS,
                                  "help": _help_with_default(f.metadata["help"], _shown_default(f.name, template))}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = f.name.upper() if base is not list else "NAME[,NAME...]"
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        group.add_argument(_flag(f.name), **kwargs)
    return parser


def _add_jobs_options(parser: argparse.ArgumentParser) -> None:
    """Where the run happens, not what it does: these never go into run_config.yaml."""
    group = parser.add_argument_group("Hugging Face Jobs (train on a Hub GPU; needs --push-to-hub)")
    group.add_argument("--jobs-flavor", default=None, metavar="FLAVOR",
                       help="Run on a Hugging Face Jobs machine of this flavor (e.g. t4-small, l4x1, a10g-small, "
                            "a100-large, h200) and follow it here. The token goes to the Job as its HF_TOKEN secret "
                            "only; checkpoints go to the Hub, so re-submitting resumes.")
    group.add_argument("--jobs-timeout", default=None, metavar="DURATION",
                       help="Stop the Job after this long: seconds, or 90m, 3h, 1d, rounded to whole seconds; at "
                            "least 60 s (default: the Hub's, 30 minutes).")
    group.add_argument("--jobs-namespace", default=None, metavar="NAMESPACE",
                       help="User or organization that runs (and pays for) the Job (default: the token's user).")
    group.add_argument("--jobs-max-upload", default=None, metavar="SIZE",
                       help="Refuse to upload more than this (the files the run reads: data, label names, images, "
                            "a local checkpoint), e.g. 500MB or 20GB (default: 10GB).")
    group.add_argument("--jobs-detach", action="store_true", default=False,
                       help="Submit and return at once (follow later with `hf-finetune jobs logs JOB_ID --follow`).")
    group.add_argument("--dry-run", action="store_true", default=False,
                       help="Print the Job as it would be submitted (image, command, flavor, timeout, secret names, "
                            "files to upload) as JSON, and submit nothing.")


def parse_options(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, Any]:
    """The parsed options, RunConfig's checked and converted to their field types (only those typed)."""
    fields = RunConfig.field_names()
    return {name: config_mod.coerce(name, value, f"Option {_flag(name)}") if name in fields else value
            for name, value in vars(parser.parse_args(argv)).items()}


def _print_summary(console: Console, result: Any, seconds: float) -> None:
    from .. import metrics as metrics_mod

    table = Table(title=f"hf-finetune: {result.config.task} finished in {seconds:.0f} s")
    names, rows = metrics_mod.summary_grid(result.metrics)
    table.add_column("split")
    for name in names:
        table.add_column(name, justify="right")
    for label, cells in rows:
        table.add_row(label, *cells)
    console.print(table)
    train = result.metrics.get("train", {})
    if "train_samples_per_second" in train:
        console.print(f"training: {train['train_samples_per_second']:.1f} samples/s, "
                      f"{train.get('wall_seconds', 0):.0f} s", highlight=False)
    _print_learning_check(console, result.metrics.get("learning_check"))
    console.print(f"model, card and metrics: [bold]{result.output_dir}[/]", highlight=False)
    if result.pushed_to:
        console.print(f"pushed: {result.pushed_to}", highlight=False)


def _print_learning_check(console: Console, record: dict[str, Any] | None) -> None:
    """The warning block of a run that learned nothing (or no more than a classical baseline)."""
    from rich.markup import escape

    from ..learning_check import warning_lines

    lines = warning_lines(record)
    if lines:
        console.print(f"[bold yellow]{escape(lines[0])}[/]", highlight=False)
        for line in lines[1:]:   # unwrapped: the terminal wraps them, a log keeps them whole
            console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)


def cmd_train(argv: list[str], console: Console) -> int:
    from .. import templates

    template_ref = None
    if argv and not argv[0].startswith("-"):
        template_ref, argv = argv[0], argv[1:]
    template = None
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--template")
    pre.add_argument("--trust-remote-code", action="store_true")
    known, _ = pre.parse_known_args(argv)
    ref = known.template or template_ref
    if ref is None and known.config:
        file_values = config_mod.load_config_file(known.config)
        ref = file_values.get("template") or file_values.get("task")
    if ref is not None:
        template = templates.load(ref, trust_remote_code=known.trust_remote_code)
    parser = training_parser(template)
    if template is None and not {"-h", "--help"} & set(argv):
        raise ConfigError("No task given.", "Name one (e.g. `hf-finetune sentiment`); `hf-finetune tasks` lists them.")
    values = parse_options(parser, argv)
    quiet, debug = values.pop("quiet"), values.pop("debug")
    config_file, token = values.pop("config"), values.pop("token")
    trust_remote_code = values.pop("trust_remote_code")
    token = tokens.check(token, "--token") if token else tokens.from_environment()
    job_options = {name: values.pop(name) for name in JOBS_OPTIONS}
    task = template_ref if template_ref and not known.template else None
    if job_options["jobs_flavor"] or job_options["dry_run"]:
        return _submit_job(task, config_file, values, job_options, token, trust_remote_code, debug, console)
    if any(job_options.values()):
        raise ConfigError("--jobs-timeout, --jobs-namespace, --jobs-max-upload and --jobs-detach go with "
                          "--jobs-flavor.",
                          "Add --jobs-flavor FLAVOR to run on Hugging Face Jobs.")
    processes = _processes_asked(config_file, values)
    if processes > 1:
        return _relaunch(task, config_file, values, trust_remote_code, processes,
                         argv if template_ref is None else [template_ref, *argv], token)
    from .. import api

    started = time.perf_counter()
    if os.environ.get("RANK", "0") != "0":
        quiet = True
    result = api.finetune(task, config=config_file, token=token, quiet=quiet, console=console, debug=debug,
                          trust_remote_code=trust_remote_code, **values)
    if os.environ.get("RANK", "0") == "0":   # one summary, from the main process
        _print_summary(console, result, time.perf_counter() - started)
    return 0


def _submit_job(task: str | None, config_file: str | None, values: dict[str, Any], options: dict[str, Any],
                token: str | None, trust_remote_code: bool, debug: bool, console: Console) -> int:
    """--jobs-flavor: resolve the run here, then hand it to a Hugging Face Job and follow it."""
    from .. import api, jobs

    if not options["jobs_flavor"]:
        raise ConfigError("--dry-run prints the Hugging Face Job a run would be; name its machine.",
                          "Add --jobs-flavor FLAVOR (e.g. a10g-small).")
    api.quiet_libraries(debug)
    template, resolved = api.resolve_config(task, config=config_file, trust_remote_code=trust_remote_code, **values)
    job = jobs.plan(template, resolved, flavor=options["jobs_flavor"], timeout=options["jobs_timeout"],
                    namespace=options["jobs_namespace"], trust_remote_code=trust_remote_code,
                    max_upload=options["jobs_max_upload"])
    if options["dry_run"]:
        sys.stdout.write(json.dumps(job.spec(), indent=2) + "\n")
        return 0

    def say(message: str) -> None:
        console.print(message, highlight=False)

    info = jobs.submit(job, token, say)
    namespace = info.owner.name
    say(f"Job [bold]{info.id}[/] submitted ({job.flavor}): {info.url}")
    if options["jobs_detach"]:
        say(f"follow it: hf-finetune jobs logs {info.id} --follow --namespace {namespace}\n"
            f"cancel it: hf-finetune jobs cancel {info.id} --namespace {namespace}")
        return 0
    return jobs.follow(info.id, namespace, token, console, repo_id=job.repo_id)


def _processes_asked(config_file: str | None, values: dict[str, Any]) -> int:
    """How many processes the command asks for (its flag, else its --config file's); 1 in a process that a
    launcher started (it is one of them)."""
    if "WORLD_SIZE" in os.environ:
        return 1
    asked = values.get("num_processes")
    if asked is None and config_file:
        asked = config_mod.load_config_file(config_file).get("num_processes")
    if asked is None:
        return 1
    return config_mod.coerce("num_processes", asked, "num_processes")


def _without_option(argv: list[str], option: str) -> list[str]:
    """argv without ``option VALUE`` / ``option=VALUE``."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            rest.append(arg)
    return rest


def _relaunch(task: str | None, config_file: str | None, values: dict[str, Any], trust_remote_code: bool,
              processes: int, argv: list[str], token: str | None) -> int:
    """`--num-processes N`: the same command in N processes under `accelerate launch` (launch.py), once the
    run's options are known to be valid (checked here once, not once per process)."""
    import torch

    from .. import api, launch

    _, resolved = api.resolve_config(task, config=config_file, trust_remote_code=trust_remote_code, **values)
    launch.check(resolved.fsdp, processes, torch.cuda.is_available())
    return launch.run(processes, _without_option(argv, "--token"), token)
