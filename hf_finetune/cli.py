"""The command line: a thin shell over hf_finetune.api.

    hf-finetune tasks                          list the task templates
    hf-finetune TASK [options]                 fine-tune (TASK: a template name or a .yaml path)
    hf-finetune --config run_config.yaml       repeat a run
    hf-finetune card RUN_DIR                   (re)write a run's model card
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__, api, card, config as config_mod, hub, metrics as metrics_mod, templates, tokens
from .config import RunConfig
from .errors import ConfigError, FinetuneError, did_you_mean
from .rundir import RunDir

COMMANDS = {"tasks": "List the task templates.",
            "pull": "Download a base checkpoint (config, tokenizer, safetensors) at a pinned revision.",
            "push": "Push a finished run to a Hub repo.",
            "predict": "Predict with a fine-tuned model (run dir or Hub id) on a file or stdin.",
            "card": "(Re)write the model card of a finished run.",
            "evaluate": "Metrics of a fine-tuned run on any data set and split.",
            "summary": "Print a finished run's metrics as a Markdown table (e.g. for $GITHUB_STEP_SUMMARY).",
            "init-ci": "Write a GitHub Actions workflow that fine-tunes and pushes to the Hub.",
            "jobs": "Follow, inspect or cancel a run submitted with --jobs-flavor: jobs logs|status|cancel JOB_ID.",
            "hf-extension": "Register hf-finetune as the `hf finetune` command of the hf CLI."}
GROUP_TITLES = {"task": "run", "model": "model", "data": "data", "training": "training (TrainingArguments names)",
                "metrics": "metrics", "hub": "Hugging Face Hub"}


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as ConfigError, with a did-you-mean for unknown options."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("unrecognized arguments:"):
            bad = message.split(":", 1)[1].split()[0]
            if not bad.startswith("-"):   # never echoed: it may be a value typed in the wrong place (a token)
                raise ConfigError("Unexpected extra argument (not shown).", f"See `{self.prog} --help`.")
            options = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            name = bad.split("=")[0]
            raise ConfigError(f"Unknown option {name}. {did_you_mean(name, options)}", f"See `{self.prog} --help`.")
        raise ConfigError(f"{message}.", f"See `{self.prog} --help`.")


def _add_common(parser: argparse.ArgumentParser, *, token: bool = True, trust: bool = False) -> None:
    """The options several commands share, declared once."""
    group = parser.add_argument_group("general")
    if token:
        group.add_argument("--token", default=None,
                           help="Hub token (default: HF_TOKEN or the `hf auth login` token). Never printed or "
                                "written anywhere.")
    if trust:
        group.add_argument("--trust-remote-code", action="store_true", default=False,
                           help="Allow code from outside transformers and hf-finetune: template classes named as "
                                "module:attr, metrics that are not built in, models with custom code. Only for "
                                "templates, configs and models whose authors you trust.")
    group.add_argument("--debug", action="store_true", help="Show tracebacks and library logs.")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown_default(name: str, template: templates.TaskTemplate | None) -> Any:
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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default once: the help's own "(default: ...)" when it has one, else the value."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default:" in text or action.default is None or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


DEFAULT_NOTE = re.compile(r"\s*\(default: [^()]*(?:\([^()]*\)[^()]*)*\)")


def training_parser(template: templates.TaskTemplate | None) -> argparse.ArgumentParser:
    prog = f"hf-finetune {template.name}" if template else "hf-finetune"
    description = template.description if template else "Fine-tune a model with a task template."
    if template and template.default_run:
        description += (" With the default data set these also apply: "
                        + ", ".join(f"{k}={v}" for k, v in template.default_run.items()) + ".")
    parser = _Parser(prog=prog, description=description, allow_abbrev=False, formatter_class=_HelpFormatter)
    _add_common(parser, trust=True)
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--config", help="Run-config YAML file; flags override its values.", default=None)
    run_group.add_argument("--quiet", action="store_true", help="Print only errors and the final summary.")
    _add_jobs_options(parser)
    groups: dict[str, Any] = {"task": run_group}
    for f in RunConfig.fields():
        if f.metadata.get("cli") is False:
            continue
        if template is not None and template.kind not in f.metadata.get("kinds", (template.kind,)):
            continue   # an option of other kinds of task (--summary-column under sentiment)
        group = groups.setdefault(f.metadata["group"],
                                  parser.add_argument_group(GROUP_TITLES.get(f.metadata["group"], f.metadata["group"])))
        base, _ = config_mod.field_type(f.name)
        shown = _shown_default(f.name, template)
        text = f.metadata["help"]
        if shown is not None and shown != "" and not isinstance(shown, bool):
            text = DEFAULT_NOTE.sub("", text)   # the real default (e.g. the template's) is shown instead
        kwargs: dict[str, Any] = {"dest": f.name, "help": text, "default": shown}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = f.name.upper() if base is not list else "NAME[,NAME...]"
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        group.add_argument(_flag(f.name), **kwargs)
    return parser


JOBS_OPTIONS = ("jobs_flavor", "jobs_timeout", "jobs_namespace", "jobs_detach", "dry_run")


def _add_jobs_options(parser: argparse.ArgumentParser) -> None:
    """Where the run happens, not what it does: these never go into run_config.yaml."""
    group = parser.add_argument_group("Hugging Face Jobs (train on a Hub GPU; needs --push-to-hub)")
    group.add_argument("--jobs-flavor", default=None, metavar="FLAVOR",
                       help="Run on a Hugging Face Jobs machine of this flavor (e.g. t4-small, l4x1, a10g-small, "
                            "a100-large, h200) and follow it here. The token goes to the Job as its HF_TOKEN secret "
                            "only; checkpoints go to the Hub, so re-submitting resumes.")
    group.add_argument("--jobs-timeout", default=None, metavar="DURATION",
                       help="Stop the Job after this long: seconds, or 90m, 3h, 1d (default: the Hub's, 30 minutes).")
    group.add_argument("--jobs-namespace", default=None, metavar="NAMESPACE",
                       help="User or organization that runs (and pays for) the Job (default: the token's user).")
    group.add_argument("--jobs-detach", action="store_true", default=False,
                       help="Submit and return at once (follow later with `hf-finetune jobs logs JOB_ID --follow`).")
    group.add_argument("--dry-run", action="store_true", default=False,
                       help="Print the Job as it would be submitted (image, command, flavor, timeout, secret names, "
                            "files to upload) as JSON, and submit nothing.")


def _given(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, Any]:
    """Only the options the user typed (defaults shown in --help must not override a config file)."""
    namespace = parser.parse_args(argv)
    typed = set()
    for token in argv:
        if token.startswith("--"):
            typed.add(token[2:].split("=")[0].replace("-", "_").removeprefix("no_"))
    values = {k: v for k, v in vars(namespace).items() if k in typed}
    return {k: config_mod.coerce(k, v, f"Option {_flag(k)}") for k, v in values.items()
            if k in RunConfig.field_names()} | {k: v for k, v in values.items() if k not in RunConfig.field_names()}


def _print_summary(console: Console, result: Any, seconds: float) -> None:
    table = Table(title=f"hf-finetune: {result.config.task} finished in {seconds:.0f} s")
    names = sorted({k for split in ("validation", "test") for k in result.metrics.get(split, {})
                    if not metrics_mod.is_timing(k)})
    table.add_column("split")
    for name in names:
        table.add_column(name, justify="right")
    for split in ("validation", "test"):
        values = result.metrics.get(split, {})
        table.add_row(split, *[f"{values[n]:.4f}" if n in values else "" for n in names])
    console.print(table)
    train = result.metrics.get("train", {})
    if "train_samples_per_second" in train:
        console.print(f"training: {train['train_samples_per_second']:.1f} samples/s, "
                      f"{train.get('wall_seconds', 0):.0f} s", highlight=False)
    console.print(f"model, card and metrics: [bold]{result.output_dir}[/]", highlight=False)
    if result.pushed_to:
        console.print(f"pushed: {result.pushed_to}", highlight=False)


def cmd_tasks(console: Console) -> int:
    table = Table(title="Task templates")
    for col in ("task", "kind", "default model", "default data", "description"):
        table.add_column(col)
    for t in templates.list_templates():
        table.add_row(t.name, t.kind, t.default_model, t.default_dataset, t.description)
    console.print(table)
    console.print("Run one with `hf-finetune TASK`, or your own with `hf-finetune path/to/template.yaml`.")
    return 0


def cmd_card(argv: list[str], console: Console) -> int:
    parser = _Parser(prog="hf-finetune card", description=COMMANDS["card"])
    parser.add_argument("run_dir")
    parser.add_argument("--repo-id", default=None, help="Hub repo id used in the card's usage snippet.")
    _add_common(parser, token=False)
    args = parser.parse_args(argv)
    if args.repo_id:
        hub.check_repo_id(args.repo_id)
    path = card.write(RunDir.open(args.run_dir), args.repo_id)
    console.print(f"wrote {path}", highlight=False)
    return 0


def cmd_pull(argv: list[str], console: Console) -> int:
    parser = _Parser(prog="hf-finetune pull", description=COMMANDS["pull"])
    parser.add_argument("repo_id", help="Hub model id, e.g. bert-base-uncased")
    parser.add_argument("--revision", default="main", help="Branch, tag or commit (default: main).")
    parser.add_argument("--cache-dir", default=None, help="Cache folder (default: the Hugging Face cache).")
    _add_common(parser)
    args = parser.parse_args(argv)
    path, sha = hub.pull(args.repo_id, args.revision, token=args.token, cache_dir=args.cache_dir)
    console.print(f"{args.repo_id} at commit {sha}\n{path}", highlight=False)
    return 0


def cmd_push(argv: list[str], console: Console) -> int:
    parser = _Parser(prog="hf-finetune push", description=COMMANDS["push"])
    parser.add_argument("run_dir")
    parser.add_argument("repo_id")
    parser.add_argument("--private", action="store_true", help="Create the repo as private.")
    parser.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing.")
    parser.add_argument("--revision", default=None, help="Target branch (created if needed).")
    parser.add_argument("--commit-message", default=None)
    _add_common(parser)
    args = parser.parse_args(argv)
    hub.check_repo_id(args.repo_id)
    run = RunDir.open(args.run_dir)
    plan = run.push_plan()            # refuses links and special files before anything is written
    card.write(run, args.repo_id)     # the usage snippet names the repo
    url = hub.push_run(run.path, args.repo_id, token=args.token, private=args.private, create_pr=args.create_pr,
                       revision=args.revision, commit_message=args.commit_message)
    console.print(f"pushed {run.path} to {args.repo_id}: {url}", highlight=False)
    if plan.left_out:
        console.print(f"left out (not files a run writes): {', '.join(plan.left_out)}", highlight=False)
    return 0


def cmd_predict(argv: list[str], console: Console) -> int:
    from rich.progress import Progress

    from . import predict as predict_mod

    parser = _Parser(prog="hf-finetune predict", description=COMMANDS["predict"])
    parser.add_argument("model", help="A run dir written by hf-finetune, a model folder, or a Hub model id.")
    parser.add_argument("--input", required=True,
                        help="A table (.csv, .tsv, .jsonl, .json, .parquet; read like training data), text lines "
                             "(.txt), an image, or - for standard input (text lines or JSON Lines).")
    parser.add_argument("--column", default=None,
                        help="Column of a table holding the inputs (default: the run's own text / image column, "
                             "else a common name such as text or sentence).")
    parser.add_argument("--output", default=None, help="Write .jsonl or .csv here (default: JSON Lines on stdout).")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--revision", default=None, help="For a Hub model: branch, tag or commit (default: main).")
    _add_common(parser, trust=True)
    args = parser.parse_args(argv)
    if args.batch_size <= 0:
        raise ConfigError("--batch-size must be greater than 0.")
    api.quiet_libraries(args.debug)
    _, info = predict_mod.load_run(args.model, args.token, args.revision)
    inputs = predict_mod.read_inputs(args.input, args.column, info["kind"], info)
    if not inputs:
        raise ConfigError(f"No inputs found in {args.input}.")
    err_console = make_console(stderr=True)
    with Progress(console=err_console, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("predicting", total=len(inputs))
        results = predict_mod.predict(args.model, inputs, batch_size=args.batch_size, token=args.token,
                                      revision=args.revision, trust_remote_code=args.trust_remote_code,
                                      progress=lambda n: progress.advance(task, n))
    predict_mod.write(results, args.output)
    if args.output:
        console.print(f"wrote {len(results)} predictions to {args.output}", highlight=False)
    return 0


def cmd_summary(argv: list[str], console: Console) -> int:
    from . import ci

    parser = _Parser(prog="hf-finetune summary", description=COMMANDS["summary"])
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    sys.stdout.write(ci.summary_markdown(args.run_dir))
    return 0


def cmd_init_ci(argv: list[str], console: Console) -> int:
    from . import ci

    parser = _Parser(prog="hf-finetune init-ci", description=COMMANDS["init-ci"])
    parser.add_argument("--task", default="sentiment", help="Default task of the workflow.")
    parser.add_argument("--dir", default=".", help="The repository to write into.")
    parser.add_argument("--force", action="store_true", help="Replace an existing workflow file.")
    parser.add_argument("--install-spec", default=None,
                        help="How the runner installs hf-finetune (a pip requirement; default: exactly the running "
                             "install, a pinned release or a VCS commit; required for a local install).")
    parser.add_argument("--oidc", action="store_true",
                        help="Keyless auth through GitHub OIDC (adds `id-token: write`) instead of an HF_TOKEN secret.")
    parser.add_argument("--jobs-flavor", default=None, metavar="FLAVOR",
                        help="Train on a Hugging Face Jobs machine of this flavor (e.g. a10g-small): the runner only "
                             "submits and follows the Job (no GPU or CUDA torch on the runner).")
    args = parser.parse_args(argv)
    path = ci.write_workflow(args.dir, args.task, args.force, install_spec=args.install_spec, oidc=args.oidc,
                             jobs_flavor=args.jobs_flavor)
    auth = ("Set up Trusted Publishing for this repository on the Hub and the repository variable HF_OIDC_RESOURCE"
            if args.oidc else "Add a repository secret HF_TOKEN")
    console.print(f"wrote {path}\n{auth}, then start it from the Actions tab.", highlight=False)
    return 0


def cmd_hf_extension(argv: list[str], console: Console) -> int:
    from . import ci

    parser = _Parser(prog="hf-finetune hf-extension", description=COMMANDS["hf-extension"])
    parser.add_argument("action", choices=["install"])
    parser.parse_args(argv)   # only validates: "install" is the one action
    folder = ci.install_hf_extension()
    console.print(f"registered {folder}; `hf finetune ...` now runs hf-finetune", highlight=False)
    return 0


def cmd_evaluate(argv: list[str], console: Console) -> int:
    from . import evaluation

    parser = _Parser(prog="hf-finetune evaluate", description=COMMANDS["evaluate"])
    parser.add_argument("run_dir")
    parser.add_argument("--dataset", required=True, help="Hub id or local file/folder.")
    parser.add_argument("--dataset-config", default=None)
    parser.add_argument("--split", default=None,
                        help="Split to score (default: on the run's own data, its test split as in training; on "
                             "other data, the test split, else the whole of a single file). A file's name works "
                             "too: --split dev for dev.tsv.")
    parser.add_argument("--max-samples", type=int, default=None)
    parser.add_argument("--text-column", default=None)
    parser.add_argument("--label-column", default=None)
    parser.add_argument("--label-columns", default=None, type=lambda v: [c.strip() for c in v.split(",") if c.strip()],
                        help="Multi-label: several 0/1 columns, one per label.")
    parser.add_argument("--label-separator", default=None, help="Multi-label: the separator of a label column of text.")
    parser.add_argument("--summary-column", default=None)
    parser.add_argument("--image-column", default=None)
    parser.add_argument("--output", default=None, help="Also write the metrics to this JSON file.")
    _add_common(parser, token=False, trust=True)
    args = parser.parse_args(argv)
    api.quiet_libraries(args.debug)
    result = evaluation.evaluate_run(args.run_dir, args.dataset, split=args.split, dataset_config=args.dataset_config,
                                     max_samples=args.max_samples, trust_remote_code=args.trust_remote_code, columns={
                                         "text_column": args.text_column, "label_column": args.label_column,
                                         "label_columns": args.label_columns, "label_separator": args.label_separator,
                                         "summary_column": args.summary_column, "image_column": args.image_column})
    table = Table(title=f"{args.run_dir} on {args.dataset} ({result.get('split')})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def cmd_train(argv: list[str], console: Console) -> int:
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
    values = _given(parser, argv)
    quiet, debug = values.pop("quiet", False), values.pop("debug", False)
    config_file, token = values.pop("config", None), values.pop("token", None)
    trust_remote_code = values.pop("trust_remote_code", False)
    token = tokens.check(token, "--token") if token else tokens.from_environment()
    job_options = {name: values.pop(name, None) for name in JOBS_OPTIONS}
    if job_options["jobs_flavor"] or job_options["dry_run"]:
        return _submit_job(template_ref if template_ref and not known.template else None, config_file, values,
                           job_options, token, trust_remote_code, debug, console)
    if any(job_options.values()):
        raise ConfigError("--jobs-timeout, --jobs-namespace and --jobs-detach go with --jobs-flavor.",
                          "Add --jobs-flavor FLAVOR to run on Hugging Face Jobs.")
    if (values.get("num_processes") or 1) > 1 and "WORLD_SIZE" not in os.environ:
        return _relaunch(argv if template_ref is None else [template_ref, *argv], values["num_processes"], token)
    started = time.perf_counter()
    if os.environ.get("RANK", "0") != "0":
        quiet = True
    result = api.finetune(template_ref if template_ref and not known.template else None, config=config_file,
                          token=token, quiet=quiet, console=console, debug=debug,
                          trust_remote_code=trust_remote_code, **values)
    if os.environ.get("RANK", "0") == "0":   # one summary, from the main process
        _print_summary(console, result, time.perf_counter() - started)
    return 0


def _submit_job(task: str | None, config_file: str | None, values: dict[str, Any], options: dict[str, Any],
                token: str | None, trust_remote_code: bool, debug: bool, console: Console) -> int:
    """--jobs-flavor: resolve the run here, then hand it to a Hugging Face Job and follow it."""
    from . import jobs

    if not options["jobs_flavor"]:
        raise ConfigError("--dry-run prints the Hugging Face Job a run would be; name its machine.",
                          "Add --jobs-flavor FLAVOR (e.g. a10g-small).")
    api.quiet_libraries(debug)
    template, resolved = api.resolve_config(task, config=config_file, trust_remote_code=trust_remote_code, **values)
    job = jobs.plan(template, resolved, flavor=options["jobs_flavor"], timeout=options["jobs_timeout"],
                    namespace=options["jobs_namespace"], trust_remote_code=trust_remote_code)
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


def cmd_jobs(argv: list[str], console: Console) -> int:
    from . import jobs

    parser = _Parser(prog="hf-finetune jobs", description=COMMANDS["jobs"])
    parser.add_argument("action", choices=["logs", "status", "cancel"])
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument("--namespace", default=None, help="The Job's user or organization (default: the token's).")
    parser.add_argument("--follow", action="store_true", help="logs: stream until the Job ends; exit with its status.")
    _add_common(parser)
    args = parser.parse_args(argv)
    token = tokens.check(args.token, "--token") if args.token else tokens.from_environment()
    if args.action == "logs":
        return jobs.logs(args.job_id, args.namespace, token, console, args.follow)
    return getattr(jobs, args.action)(args.job_id, args.namespace, token, console)


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


def _relaunch(argv: list[str], processes: int, token: str | None) -> int:
    """`--num-processes N`: run the same command under `accelerate launch` (DDP; gloo on CPU). The token
    goes to the processes through the environment, never their argv (which `ps` shows to every user)."""
    import subprocess

    rest = _without_option(_without_option(argv, "--num-processes"), "--token")
    env = dict(os.environ, **({"HF_TOKEN": token} if token else {}))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "hf_finetune", *rest]
    return subprocess.call(command, env=env)


def top_help() -> str:
    lines = [f"hf-finetune {__version__}: fine-tune Hugging Face checkpoints from one command.", "",
             "usage: hf-finetune TASK [options]      (hf-finetune TASK --help lists every option)",
             "       hf-finetune --config run_config.yaml [options]", "       hf-finetune COMMAND ...", "",
             "tasks:"]
    for name in templates.bundled_names():
        lines.append(f"  {name}")
    lines += ["", "commands:"] + [f"  {name:10s} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def _register_tokens(argv: list[str]) -> None:
    """Every token this process may see, masked in all its output from the start (--token in either form,
    HF_TOKEN, the stored login)."""
    for i, arg in enumerate(argv):
        if arg == "--token" and i + 1 < len(argv):
            tokens.register(argv[i + 1])
        elif arg.startswith("--token="):
            tokens.register(arg.split("=", 1)[1])
    tokens.register(os.environ.get("HF_TOKEN"))
    tokens.register_stored_token()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    streams = sys.stdout, sys.stderr
    tokens.mask_standard_streams()
    try:
        _register_tokens(argv)
        return _dispatch(argv)
    finally:
        sys.stdout, sys.stderr = streams


def make_console(stderr: bool = False) -> Console:
    """Rich output on a terminal; into a file or a pipe, lines that are never wrapped or truncated (a
    table as wide as its cells, a path or a sha in one piece)."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=100_000, soft_wrap=True)


def _dispatch(argv: list[str]) -> int:
    console = make_console()
    debug = "--debug" in argv
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(top_help())
            return 0
        if argv[0] == "--version":
            print(f"hf-finetune {__version__}")
            return 0
        if argv[0] == "tasks":
            return cmd_tasks(console)
        handlers = {"card": cmd_card, "summary": cmd_summary, "init-ci": cmd_init_ci,
                    "hf-extension": cmd_hf_extension, "evaluate": cmd_evaluate, "predict": cmd_predict,
                    "pull": cmd_pull, "push": cmd_push, "jobs": cmd_jobs}
        if argv[0] in handlers:
            return handlers[argv[0]](argv[1:], console)
        return cmd_train(argv, console)
    except SystemExit as exit_:  # argparse --help
        return int(exit_.code or 0)
    except FinetuneError as err:
        _report(err.message + (f" {err.hint}" if err.hint else ""), debug)
        return err.exit_code
    except KeyboardInterrupt:
        _report("Interrupted; nothing was written to the output dir.", debug)
        return 130
    except MemoryError:
        _report("Ran out of memory. Lower --per-device-train-batch-size or --max-length.", debug)
        return 1
    except (ConnectionError, TimeoutError) as err:
        _report(f"A network connection failed: {err.strerror or err}.", debug)
        return 1
    except OSError as err:
        _report(f"A file operation failed: {err.strerror or err} ({err.filename or ''}). "
                "Check free disk space and permissions.", debug)
        return 1
    except Exception as err:  # noqa: BLE001 - last resort: one paragraph, not a traceback
        io_problem = _io_failure(err)
        if io_problem:
            _report(f"Writing failed: {io_problem}. Check free disk space and permissions of the output dir; "
                    "nothing was published.", debug)
            return 1
        _report(f"Unexpected error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} "
                "This may be a bug in hf-finetune; run again with --debug for the traceback.", debug)
        return 1


IO_SIGNS = ("No space left on device", "File too large", "Read-only file system", "Permission denied",
            "I/O error", "Disk quota exceeded")


def _io_failure(err: BaseException) -> str | None:
    """A write failure hidden in another exception type (safetensors, pyarrow, torch.save); a network
    failure (a reset connection is an OSError too) is not one."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, (ConnectionError, TimeoutError)):
            return None
        text = str(cause)
        if isinstance(cause, OSError) or any(sign in text for sign in IO_SIGNS):
            return next((sign for sign in IO_SIGNS if sign in text), text.splitlines()[0] if text else type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return None


def _report(message: str, debug: bool) -> None:
    """One paragraph on stderr (after the traceback with --debug); tokens are masked by the stream itself."""
    if debug:
        traceback.print_exc()
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(tokens.redact(message))}", highlight=False,
                                    soft_wrap=True)
