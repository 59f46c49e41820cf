"""What every command's parser shares: mistakes as ConfigError, the common options, the help layout
and the console."""

from __future__ import annotations

import argparse

from rich.console import Console

from ..errors import ConfigError, did_you_mean


class Parser(argparse.ArgumentParser):
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


def add_common_options(parser: argparse.ArgumentParser, *, token: bool = True, trust: bool = False) -> None:
    """The options several commands share, declared once so they read the same everywhere."""
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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default once: the help's own "(default: ...)" when it has one, else the value."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default:" in text or action.default is None or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def make_console(stderr: bool = False) -> Console:
    """Rich output on a terminal; into a file or a pipe, lines that are never wrapped or truncated (a
    table as wide as its cells, a path or a sha in one piece)."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=100_000, soft_wrap=True)
