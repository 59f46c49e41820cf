"""Commands that set hf-finetune up rather than run it: tasks, init-ci, hf-extension."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rich.markup import escape

from ._options import Parser, make_console


def cmd_tasks(parser: Parser, argv: list[str], console: Console) -> int:
    """Takes no options: anything after `tasks` is ignored, `--help` included."""
    from .. import templates

    table = Table(title="Task templates")
    for col in ("task", "kind", "default model", "default data", "description"):
        table.add_column(col)
    for t in templates.list_templates():
        table.add_row(t.name, t.kind, t.default_model, t.default_dataset, t.description)
    console.print(table)
    console.print("Run one with `hf-finetune TASK`, or your own with `hf-finetune path/to/template.yaml`.")
    return 0


def cmd_init_ci(parser: Parser, argv: list[str], console: Console) -> int:
    from .. import ci

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
    if args.install_spec:
        _warn_if_unpinned(args.install_spec.strip())
    return 0


def _warn_if_unpinned(spec: str) -> None:
    """A spec that may install another hf-finetune at each run is written as asked, with a warning."""
    from ..install import unpinned

    problem = unpinned(spec)
    if problem:
        why, pinned = problem
        make_console(stderr=True).print(
            f"[bold yellow]warning:[/] --install-spec {escape(repr(spec))} does not pin one build: {escape(why)}; the "
            f"workflow is not reproducible. A pinned form: {escape(repr(pinned))}", highlight=False, soft_wrap=True)


def cmd_hf_extension(parser: Parser, argv: list[str], console: Console) -> int:
    from .. import ci

    parser.add_argument("action", choices=["install"])
    parser.parse_args(argv)   # only validates: "install" is the one action
    folder = ci.install_hf_extension()
    console.print(f"registered {folder}; `hf finetune ...` now runs hf-finetune", highlight=False)
    return 0
