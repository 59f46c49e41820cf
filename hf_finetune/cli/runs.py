"""Commands that use a finished run (or a Hub model): card, push, pull, summary, predict, evaluate.

Each gets its parser from the dispatch (its name and description) and adds its own options."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from ._options import Parser, add_common_options, make_console


def cmd_card(parser: Parser, argv: list[str], console: Console) -> int:
    from .. import card
    from ..repo_id import check_repo_id
    from ..rundir import RunDir

    parser.add_argument("run_dir")
    parser.add_argument("--repo-id", default=None, help="Hub repo id used in the card's usage snippet.")
    add_common_options(parser, token=False)
    args = parser.parse_args(argv)
    if args.repo_id:
        check_repo_id(args.repo_id)
    path = card.write(RunDir.open(args.run_dir), args.repo_id)
    console.print(f"wrote {path}", highlight=False)
    return 0


def cmd_pull(parser: Parser, argv: list[str], console: Console) -> int:
    from .. import hub

    parser.add_argument("repo_id", help="Hub model id, e.g. bert-base-uncased")
    parser.add_argument("--revision", default="main", help="Branch, tag or commit (default: main).")
    parser.add_argument("--cache-dir", default=None, help="Cache folder (default: the Hugging Face cache).")
    add_common_options(parser)
    args = parser.parse_args(argv)
    path, sha = hub.pull(args.repo_id, args.revision, token=args.token, cache_dir=args.cache_dir)
    console.print(f"{args.repo_id} at commit {sha}\n{path}", highlight=False)
    return 0


def cmd_push(parser: Parser, argv: list[str], console: Console) -> int:
    from .. import card
    from ..push import push_run
    from ..repo_id import check_repo_id
    from ..rundir import RunDir

    parser.add_argument("run_dir")
    parser.add_argument("repo_id")
    parser.add_argument("--private", action="store_true", help="Create the repo as private.")
    parser.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing.")
    parser.add_argument("--revision", default=None, help="Target branch (created if needed).")
    parser.add_argument("--commit-message", default=None)
    add_common_options(parser)
    args = parser.parse_args(argv)
    check_repo_id(args.repo_id)
    run = RunDir.open(args.run_dir)
    plan = run.push_plan()            # refuses links and special files before anything is written
    card.write(run, args.repo_id)     # the usage snippet names the repo
    url = push_run(run.path, args.repo_id, token=args.token, private=args.private, create_pr=args.create_pr,
                   revision=args.revision, commit_message=args.commit_message)
    console.print(f"pushed {run.path} to {args.repo_id}: {url}", highlight=False)
    if plan.left_out:
        console.print(f"left out (not files a run writes): {', '.join(plan.left_out)}", highlight=False)
    return 0


def cmd_summary(parser: Parser, argv: list[str], console: Console) -> int:
    from .. import ci

    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    sys.stdout.write(ci.summary_markdown(args.run_dir))
    return 0


def cmd_predict(parser: Parser, argv: list[str], console: Console) -> int:
    from rich.progress import Progress

    from .. import api, predict as predict_mod

    parser.add_argument("model", help="A run dir written by hf-finetune, a model folder, or a Hub model id.")
    parser.add_argument("--input", required=True,
                        help="A table (.csv, .tsv, .jsonl, .json, .parquet; read like training data), text lines "
                             "(.txt), an image, or - for standard input (text lines, JSON Lines, or a CSV / TSV "
                             "table with a header row). For a model trained on text pairs, a table with both "
                             "columns, or one pair per line with its two texts separated by a tab "
                             "(printf 'first\\tsecond\\n' | hf-finetune predict RUN --input -).")
    parser.add_argument("--column", default=None,
                        help="Column of a table holding the inputs (default: the run's own text / image column, "
                             "else a common name such as text or sentence); for text pairs two, FIRST,SECOND.")
    parser.add_argument("--output", default=None, help="Write .jsonl or .csv here (default: JSON Lines on stdout).")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--revision", default=None, help="For a Hub model: branch, tag or commit (default: main).")
    add_common_options(parser, trust=True)
    args = parser.parse_args(argv)
    if args.batch_size <= 0:
        raise ConfigError("--batch-size must be greater than 0.")
    api.quiet_libraries(args.debug)
    _, info = predict_mod.load_run(args.model, args.token, args.revision)
    inputs = predict_mod.read_inputs(args.input, args.column, info.kind, info)
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


def cmd_evaluate(parser: Parser, argv: list[str], console: Console) -> int:
    from .. import api, evaluation
    from ..rundir import json_text

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
    add_common_options(parser, token=False, trust=True)
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
        Path(args.output).write_text(json_text(result), encoding="utf-8")
    return 0
