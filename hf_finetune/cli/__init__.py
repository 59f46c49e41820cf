"""The command line: a thin shell over hf_finetune.api.

    hf-finetune tasks                          list the task templates
    hf-finetune TASK [options]                 fine-tune (TASK: a template name or a .yaml path)
    hf-finetune --config run_config.yaml       repeat a run
    hf-finetune card RUN_DIR                   (re)write a run's model card

Nothing heavy (torch, transformers, datasets) is imported until a command needs it, so --help and
--version answer at once.
"""

from __future__ import annotations

import os
import sys

from .. import __version__, tokens
from . import _errors
from ._options import Parser, make_console
from .jobs import cmd_jobs
from .runs import cmd_card, cmd_evaluate, cmd_predict, cmd_pull, cmd_push, cmd_summary
from .setup import cmd_hf_extension, cmd_init_ci, cmd_tasks
from .train import cmd_train

COMMANDS = {   # name -> (description: in the top help and the command's own --help, the function that runs it)
    "tasks": ("List the task templates.", cmd_tasks),
    "pull": ("Download a base checkpoint (config, tokenizer, safetensors) at a pinned revision.", cmd_pull),
    "push": ("Push a finished run to a Hub repo.", cmd_push),
    "predict": ("Predict with a fine-tuned model (run dir or Hub id) on a file or stdin.", cmd_predict),
    "card": ("(Re)write the model card of a finished run.", cmd_card),
    "evaluate": ("Metrics of a fine-tuned run on any data set and split.", cmd_evaluate),
    "summary": ("Print a finished run's metrics as a Markdown table (e.g. for $GITHUB_STEP_SUMMARY).", cmd_summary),
    "init-ci": ("Write a GitHub Actions workflow that fine-tunes and pushes to the Hub.", cmd_init_ci),
    "jobs": ("Follow, inspect or cancel a run submitted with --jobs-flavor: jobs logs|status|cancel JOB_ID.",
             cmd_jobs),
    "hf-extension": ("Register hf-finetune as the `hf finetune` command of the hf CLI.", cmd_hf_extension),
}


def top_help() -> str:
    from .. import templates

    lines = [f"hf-finetune {__version__}: fine-tune Hugging Face checkpoints from one command.", "",
             "usage: hf-finetune TASK [options]      (hf-finetune TASK --help lists every option)",
             "       hf-finetune --config run_config.yaml [options]", "       hf-finetune COMMAND ...", "",
             "tasks:"]
    for name in templates.bundled_names():
        lines.append(f"  {name}")
    lines += ["", "commands:"] + [f"  {name:10s} {description}" for name, (description, _) in COMMANDS.items()]
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


def _dispatch(argv: list[str]) -> int:
    console = make_console()
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(top_help())
            return 0
        if argv[0] == "--version":
            print(f"hf-finetune {__version__}")
            return 0
        if argv[0] in COMMANDS:
            description, command = COMMANDS[argv[0]]
            return command(Parser(prog=f"hf-finetune {argv[0]}", description=description), argv[1:], console)
        return cmd_train(argv, console)
    except SystemExit as exit_:  # argparse --help
        return int(exit_.code or 0)
    except BaseException as err:  # noqa: BLE001 - every failure as one paragraph and an exit code
        return _errors.report(err, debug="--debug" in argv)
