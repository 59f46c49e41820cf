"""`hf-finetune jobs logs|status|cancel JOB_ID`: a Job submitted with --jobs-flavor, after the fact."""

from __future__ import annotations

from rich.console import Console

from .. import tokens
from ._options import Parser, add_common_options


def cmd_jobs(parser: Parser, argv: list[str], console: Console) -> int:
    from .. import jobs

    parser.add_argument("action", choices=["logs", "status", "cancel"])
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument("--namespace", default=None, help="The Job's user or organization (default: the token's).")
    parser.add_argument("--follow", action="store_true", help="logs: stream until the Job ends; exit with its status.")
    add_common_options(parser)
    args = parser.parse_args(argv)
    token = tokens.check(args.token, "--token") if args.token else tokens.from_environment()
    if args.action == "logs":
        return jobs.logs(args.job_id, args.namespace, token, console, args.follow)
    return getattr(jobs, args.action)(args.job_id, args.namespace, token, console)
