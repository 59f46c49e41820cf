"""Train on a Hugging Face Jobs machine (a GPU), and follow it from here.

``hf-finetune TASK ... --push-to-hub me/model --jobs-flavor a10g-small`` resolves the run here, as
any run, then hands it to a Job:

1. **Plan** (``plan``): the Job's inputs are ``run_config.yaml`` (the resolved run, checkpoints kept
   on the Hub so a re-submitted Job resumes), the local data, template or model it names, and, for an
   hf-finetune installed from a local tree, a wheel built now. A released or VCS install is pinned
   instead (``install.install_spec``). ``--dry-run`` prints this plan and stops.
2. **Submit** (``submit``): the inputs go, as one commit, to a subfolder of the private data set repo
   ``<namespace>/hf-finetune-jobs`` (run_uv_job ships local files through a bucket the same way; a
   repo works with every Hub client and server), mounted read-only at ``/data`` at that commit. The
   Job runs a CUDA PyTorch image that installs exactly this hf-finetune and runs the config. The
   token travels only as the Job secret ``HF_TOKEN``: never in the command, the env or the files.
3. **Follow** (``follow``): the Job's log stream drives the local display; Ctrl-C asks whether to
   detach or cancel (cancels when nobody can answer); the exit status is the Job's; at the end, the
   pushed repo and its test metrics, read back from the Hub.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fnmatch
import json
import queue
import re
import secrets as secrets_mod
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from rich.console import Console
from rich.table import Table

from . import __version__, config as config_mod, embedded, hub, install, launch as launch_mod
from .progress import parse_step_line
from .config import RunConfig
from .errors import ConfigError, FinetuneError, HubError, did_you_mean
from .templates import TaskTemplate

IMAGE = "pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime"   # CUDA torch and pip; hf-finetune is installed on top
INPUTS_REPO = "hf-finetune-jobs"     # private data set repo of the namespace, one subfolder per Job
MOUNT = "/data"
SECRET = "HF_TOKEN"
TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")
EXIT_CODES = {"COMPLETED": 0, "CANCELED": 130}   # any other end: 1
_TIMEOUT = re.compile(r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>[smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_UPLOAD = "10GB"   # the Job's inputs, at most (--jobs-max-upload): a stray multi-GB file is refused
_SIZE = re.compile(r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?b?)")
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
               "t": 10**12, "tb": 10**12}
MIN_TIMEOUT = 60                     # seconds
_JOB_ID = re.compile(r"[0-9A-Za-z]{1,64}")   # the Hub's are 24 hex digits


# GPUs per Jobs flavor (the Hub's hardware table, `HfApi.list_jobs_hardware()`'s accelerator.quantity, kept
# here so that --dry-run needs no request); a test checks that every flavor huggingface_hub knows is listed.
GPUS = {"cpu-basic": 0, "cpu-upgrade": 0, "cpu-performance": 0, "cpu-xl": 0,
        "t4-small": 1, "t4-medium": 1, "l4x1": 1, "l4x4": 4, "l40sx1": 1, "l40sx4": 4, "l40sx8": 8,
        "a10g-small": 1, "a10g-large": 1, "a10g-largex2": 2, "a10g-largex4": 4,
        "a100-large": 1, "a100x4": 4, "a100x8": 8, "h200": 1, "h200x2": 2, "h200x4": 4, "h200x8": 8,
        "rtx-pro-6000": 1, "rtx-pro-6000x2": 2, "rtx-pro-6000x4": 4, "rtx-pro-6000x8": 8}


def processes(flavor: str, asked: int | None) -> int:
    """The Job's training processes: --num-processes, else one per GPU of the flavor (1 on a CPU flavor). More
    than the flavor's GPUs is refused (NCCL takes one GPU per process); on a CPU flavor they share its cores
    (gloo), as locally."""
    gpus = GPUS.get(flavor, 1)
    if asked is None:
        return max(gpus, 1)
    if gpus and asked > gpus:
        raise ConfigError(f"--num-processes {asked} is more than the {gpus} GPU{'s' * (gpus > 1)} of --jobs-flavor "
                          f"{flavor}; each process trains on a GPU of its own.",
                          f"Use at most {gpus}, or a flavor with more GPUs (e.g. a100x8).")
    return asked


def flavors() -> list[str]:
    from huggingface_hub import JobHardware

    return [h.value for h in JobHardware]


def parse_timeout(text: str | int | float | None) -> int | None:
    """'3h', '90m', '45s', '2d' or seconds -> whole seconds (the Hub's unit; rounded), at least MIN_TIMEOUT."""
    if text is None:
        return None
    match = _TIMEOUT.fullmatch(str(text).strip().lower())
    if not match:
        raise ConfigError(f"--jobs-timeout {text!r} is not a duration.", "Use seconds or a number with s, m, h or d, "
                                                                          "e.g. 3h or 90m.")
    seconds = float(match["value"]) * _UNITS[match["unit"]]
    if seconds < MIN_TIMEOUT:   # the Hub reads 0 as "no time-out given" and applies its default instead
        raise ConfigError(f"--jobs-timeout {text!r} is {seconds:g} s: a Job installs hf-finetune before it trains, "
                          "so it would be stopped before it starts.",
                          f"Give at least {MIN_TIMEOUT} s, e.g. 30m or 2h (a number alone is seconds).")
    return round(seconds)


@dataclasses.dataclass
class JobPlan:
    """Everything a Job is made of, before anything is uploaded or submitted."""

    image: str
    command: list[str]
    env: dict[str, str]
    secret_names: list[str]
    flavor: str
    timeout_seconds: int | None
    namespace: str | None            # None: the token's user, asked at submission
    name: str
    repo_id: str                     # where the Job pushes the model (and keeps its checkpoints)
    files: dict[str, Path | bytes]   # path under the mount -> local file or content
    trackio_in_users_space: bool = False   # trackio logs to <the token's user>/trackio, known at submission
    wheel_from: str | None = None    # a local hf-finetune tree, built into a wheel at submission
    launch: list[str] | None = None  # with several processes: the `accelerate launch` command the Job runs

    def spec(self) -> dict[str, Any]:
        """What --dry-run prints: the Job as it would be submitted (secrets by name only)."""
        files = [{"path": f"{MOUNT}/{name}", "bytes": len(content) if isinstance(content, bytes)
                  else content.stat().st_size, **({} if isinstance(content, bytes) else {"from": str(content)})}
                 for name, content in sorted(self.files.items())]
        if self.wheel_from:
            files.append({"path": f"{MOUNT}/{wheel_name()}", "from": f"a wheel built from {self.wheel_from} "
                                                                     "at submission"})
        namespace = self.namespace or "(the token's user)"
        return {"image": self.image, "command": self.command, "env": self.env, "secrets": self.secret_names,
                "flavor": self.flavor, **({"launch": self.launch} if self.launch else {}),
                "timeout_seconds": self.timeout_seconds, "namespace": self.namespace,
                "name": self.name, "push_to_hub": self.repo_id,
                "volumes": [{"type": "dataset", "source": f"{namespace}/{INPUTS_REPO}", "mount_path": MOUNT,
                             "path": "(a new subfolder per Job)", "read_only": True}],
                "files": files}


def wheel_name() -> str:
    return f"hf_finetune-{__version__}-py3-none-any.whl"


# -- 1. plan ---------------------------------------------------------------------------------------
def _local_inputs(template: TaskTemplate, config: RunConfig) -> tuple[dict[str, Path], dict[str, str]]:
    """Local files the run reads -> (files to ship under the mount, run-config values naming them there).

    Only what the run reads is shipped, each beside the others as here: the data files, its label names
    file and the images its rows name (read here as the run will read them, with the same checks), a
    checkpoint's files, a template; never a hidden file (.env, .git/), nor a note or a stray file."""
    files: dict[str, Path] = {}
    values: dict[str, str] = {}

    def ship(key: str, value: str | None, folder_name: str, read: Callable[[Path], list[Path]]) -> None:
        if not value or embedded.is_embedded(value):
            return
        path = Path(value).expanduser()
        if not path.exists():
            return   # a Hub id: the Job downloads it
        if path.is_symlink():
            raise ConfigError(f"{value} is a symbolic link; a Job's inputs are never uploaded through links.",
                              "Point to the real file or folder.")
        root = (path if path.is_dir() else path.parent).resolve()
        prefix = f"{folder_name}/{path.resolve().name}" if path.is_dir() else folder_name
        for item in read(path):
            if item.is_symlink():
                raise ConfigError(f"{item} is a symbolic link; a Job's inputs are never uploaded through links, "
                                  "and nothing was submitted.", "Remove it, or copy the file in its place.")
            if not item.resolve().is_relative_to(root):
                raise ConfigError(f"The run reads {item}, outside {root}: a Job gets the files under the folder of "
                                  f"its --{key} only, as they lie there, and nothing was submitted.",
                                  "Move the file under that folder, and name it by a path relative to it.")
            files[f"{prefix}/{item.resolve().relative_to(root).as_posix()}"] = item
        values[key] = f"{folder_name}/{path.resolve().name}"

    ship("dataset", config.dataset, "data", lambda path: _data_files(template, config, path))
    ship("model", config.model, "model", _checkpoint_files)
    if not template.bundled:
        ship("template", str(template.source), "template", lambda path: [path])
    return files, values


def _data_files(template: TaskTemplate, config: RunConfig, path: Path) -> list[Path]:
    """The files the run reads of its local data set, found by reading it as the run will: a mistake
    (columns, label names) fails here with the local run's message, before anything is sent."""
    from . import data

    prepared = data.prepare(template, config)
    return sorted({*data.sources.files_read(path), *prepared.source.named_files})


def _checkpoint_files(folder: Path) -> list[Path]:
    """The files of a local checkpoint folder that from_pretrained reads: those ``hub.pull`` takes of a Hub
    checkpoint (configs, tokenizer files, safetensors weights; .bin weights only without safetensors)."""
    if not folder.is_dir():
        return [folder]
    top = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def matching(patterns: list[str]) -> list[Path]:
        return [p for p in top if any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)]

    weights = [] if any(p.suffix == ".safetensors" for p in top) else matching(hub.PULL_FALLBACK_WEIGHTS)
    return matching(hub.PULL_PATTERNS) + weights


def parse_size(text: str | int) -> int:
    """'10GB', '500MB', '1.5 GB' or bytes -> bytes."""
    match = _SIZE.fullmatch(str(text).strip().lower())
    if not match or float(match["value"]) <= 0:
        raise ConfigError(f"--jobs-max-upload {text!r} is not a size.", "Use bytes or a number with KB, MB or GB, "
                                                                         "e.g. 20GB.")
    return int(float(match["value"]) * _SIZE_UNITS[match["unit"]])


def _size_text(size: int) -> str:
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


def _check_upload_size(files: dict[str, Path | bytes], limit: int) -> None:
    """Refuse, before anything is sent, inputs bigger than the limit, naming the biggest files."""
    sizes = {name: _file_size(content) for name, content in files.items()}
    total = sum(sizes.values())
    if total <= limit:
        return
    biggest = sorted(sizes, key=lambda name: -sizes[name])[:3]
    raise ConfigError(f"The Job's inputs are {_size_text(total)}, over the upload limit of {_size_text(limit)}; the "
                      "biggest: " + ", ".join(f"{name} ({_size_text(sizes[name])})" for name in biggest)
                      + ". Nothing was submitted.",
                      "If the run needs them all, raise the limit with --jobs-max-upload SIZE (e.g. "
                      f"--jobs-max-upload {max(1, -(-total // 10**9))}GB).")


def _file_size(content: Path | bytes) -> int:
    return len(content) if isinstance(content, bytes) else content.stat().st_size


def _listing(files: dict[str, Path | bytes], most: int = 30) -> list[str]:
    """The files to upload with their sizes, one a line (the first ``most``; --dry-run lists them all)."""
    from rich.markup import escape

    names = sorted(files)
    lines = [f"  {escape(name)}  ({_size_text(_file_size(files[name]))})" for name in names[:most]]
    if len(names) > most:
        rest = sum(_file_size(files[name]) for name in names[most:])
        lines.append(f"  ... and {len(names) - most} more ({_size_text(rest)}); --dry-run lists them all")
    return lines


def _check_namespace(namespace: str | None, flag: str = "--jobs-namespace") -> None:
    """A namespace the Hub can't have, refused before the wheel is built and anything is sent."""
    if namespace is None:
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(f"{namespace}/{INPUTS_REPO}")
    except HFValidationError:
        raise ConfigError(f"{flag} {namespace!r} is not a Hub user or organization name.",
                          "Give the name as it is on the Hub (letters, digits, '-', '_', '.'), or leave it out "
                          "for the token's user.") from None


def _install_line(config: RunConfig, template: TaskTemplate) -> tuple[str, str | None]:
    """The pip requirement(s) the Job installs, and the local tree to build a wheel from (if any): with the
    extras the run needs (the embedded assets it uses, optuna for --hp-search), and no others."""
    uses_embedded = any(embedded.is_embedded(v or "") for v in
                        (config.model or template.default_model, config.dataset or template.default_dataset))
    extras = ",".join(name for name, needed in (("embedded", uses_embedded), ("hpsearch", bool(config.hp_search)))
                      if needed)
    spec = install.install_spec(extras)
    source = None
    if spec is None:
        source = install.local_source()
        if source is None:
            raise ConfigError("This hf-finetune was installed in a way a Job can't repeat (no index release, VCS "
                              "commit or local source recorded).", "Install it from PyPI, git, or a local folder.")
        spec = f"{MOUNT}/{wheel_name()}" + (f"[{extras}]" if extras else "")
    requirements = [spec]
    if config.report_to in ("trackio", "tensorboard", "wandb"):
        requirements.append(config.report_to)
    return " ".join(shlex.quote(r) for r in requirements), source


def plan(template: TaskTemplate, config: RunConfig, *, flavor: str, timeout: str | None = None,
         namespace: str | None = None, trust_remote_code: bool = False,
         max_upload: str | int | None = None) -> JobPlan:
    """Check and assemble the Job; reads local files, sends nothing. ``max_upload``: the most the inputs may
    weigh (bytes, or '20GB'; MAX_UPLOAD by default)."""
    if not config.push_to_hub:
        raise ConfigError("A Job's machine and disk are gone when it ends, so it must push the model: "
                          "--push-to-hub is required with --jobs-flavor.", "Add --push-to-hub OWNER/NAME.")
    known = flavors()
    if flavor not in known:
        raise ConfigError(f"Unknown --jobs-flavor {flavor!r}. {did_you_mean(flavor, known)}")
    timeout_seconds = parse_timeout(timeout)
    limit = parse_size(MAX_UPLOAD if max_upload is None else max_upload)
    _check_namespace(namespace)
    count = processes(flavor, config.num_processes)
    launch_mod.check(config.fsdp, count, GPUS.get(flavor, 1) > 0, where=f"on --jobs-flavor {flavor}")
    files, names = _local_inputs(template, config)
    job_config = dataclasses.replace(config, output_dir=None, resume_from_hub=True, num_processes=count, **names)
    # trackio logs to a Space (a Job's local files vanish with it) of the namespace the model goes to
    owner = namespace or (config.push_to_hub.split("/")[0] if "/" in config.push_to_hub else None)
    users_space = job_config.report_to == "trackio" and not job_config.trackio_space_id and owner is None
    if job_config.report_to == "trackio" and not job_config.trackio_space_id and owner:
        job_config.trackio_space_id = f"{owner}/trackio"
    if job_config.eval_strategy == "no":
        raise ConfigError("A Job saves a checkpoint to the Hub at each evaluation, so it can resume; eval_strategy "
                          "'no' saves none.", "Use --eval-strategy epoch or steps.")
    config_text = ("# hf-finetune run configuration, submitted as a Hugging Face Job\n"
                   + config_mod.dump_yaml({k: v for k, v in job_config.to_dict().items() if v is not None}))
    files = {"run_config.yaml": config_text.encode("utf-8"), **files}
    _check_upload_size(files, limit)
    requirement, source = _install_line(config, template)
    run_args = ["--config", "run_config.yaml", "--output-dir", "${TMPDIR:-/tmp}/hf-finetune-run",
                *(["--trust-remote-code"] if trust_remote_code else [])]
    # with several processes, hf-finetune runs itself under `accelerate launch` (launch.py), one per GPU
    script = (f"set -e; python -m pip install --no-cache-dir --quiet {requirement}; cd {MOUNT}; "
              f'exec hf-finetune {" ".join(_shell_word(a) for a in run_args)}'
              + (f" --num-processes {count}" if count > 1 else ""))
    return JobPlan(image=IMAGE, command=["sh", "-c", script], env={"PYTHONUNBUFFERED": "1"},
                   secret_names=[SECRET], flavor=flavor, timeout_seconds=timeout_seconds, namespace=namespace,
                   name=f"hf-finetune-{template.name}", repo_id=config.push_to_hub, files=files, wheel_from=source,
                   trackio_in_users_space=users_space,
                   launch=launch_mod.shown_command(count, run_args) if count > 1 else None)


def _shell_word(arg: str) -> str:
    """An argument of the Job's shell line: quoted, but ${TMPDIR...} left for the shell to expand."""
    return f'"{arg}"' if arg.startswith("${") else shlex.quote(arg)


# -- 2. submit -------------------------------------------------------------------------------------
def build_wheel(source: str, folder: Path) -> Path:
    """A wheel of the local hf-finetune tree (no dependencies: the Job installs those from the index), or
    the local wheel this hf-finetune was installed from."""
    if source.endswith(".whl"):
        return Path(source)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(folder), source], capture_output=True, text=True)
    wheel = folder / wheel_name()
    if result.returncode != 0 or not wheel.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise FinetuneError(f"Building a wheel of {source} for the Job failed: {' '.join(tail)}",
                            "Check that the folder is an hf-finetune source tree, or install a release.")
    return wheel


def submit(job: JobPlan, token: str | None, say) -> Any:
    """Upload the inputs (one commit), then submit the Job; returns its JobInfo."""
    from huggingface_hub import CommitOperationAdd, Volume

    token = hub.resolve_token(token)
    if not token:
        raise HubError("Submitting a Job needs a Hub token (it is passed to the Job as the secret HF_TOKEN).",
                       "Set HF_TOKEN, run `hf auth login`, or pass --token.")
    _need_hub("Submitting the Job", "nothing was submitted")
    api = hub.api(token)
    with hub.errors("Asking the Hub who the token belongs to", kept="nothing was submitted"):
        namespace = job.namespace or api.whoami()["name"]
    inputs_repo = f"{namespace}/{INPUTS_REPO}"
    _ensure_private(api, inputs_repo)
    files = dict(job.files)
    if job.trackio_in_users_space:   # `--push-to-hub NAME` goes to the token's user: so does the dashboard
        files["run_config.yaml"] = files["run_config.yaml"] + f"trackio_space_id: {namespace}/trackio\n".encode()
    folder = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets_mod.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="hf-finetune-job-") as tmp:
        if job.wheel_from:
            say(f"building a wheel of {job.wheel_from} ...")
            files[wheel_name()] = build_wheel(job.wheel_from, Path(tmp))
        size = sum(_file_size(c) for c in files.values())
        say(f"uploading the Job's inputs ({len(files)} files, {size / 1e6:.1f} MB) to the private data set "
            f"{inputs_repo}, folder {folder}:")
        for line in _listing(files):
            say(line)
        operations = [CommitOperationAdd(path_in_repo=f"{folder}/{name}",
                                         path_or_fileobj=content if isinstance(content, bytes) else str(content))
                      for name, content in sorted(files.items())]
        with hub.errors(f"Uploading the Job's inputs to {inputs_repo}", kept="nothing was submitted"):
            commit = api.create_commit(inputs_repo, repo_type="dataset", operations=operations,
                                       commit_message=f"hf-finetune: inputs of a {job.name} Job")
    volume = Volume(type="dataset", source=inputs_repo, mount_path=MOUNT, revision=commit.oid, path=folder,
                    read_only=True)
    with hub.errors("Submitting the Job", kept=f"it may have been created all the same: `hf jobs ps --namespace "
                                               f"{namespace}` lists the running ones"):
        return api.run_job(image=job.image, command=job.command, env=job.env, secrets={SECRET: token},
                           flavor=job.flavor, timeout=job.timeout_seconds, name=job.name, volumes=[volume],
                           namespace=namespace)


def _ensure_private(api: Any, inputs_repo: str) -> None:
    """The inputs repo, created private; an existing public one is refused (the user's data would be public)."""
    with hub.errors(f"Preparing the private data set {inputs_repo}", kept="nothing was submitted"):
        hub.ensure_repo(api, inputs_repo, private=True, repo_type="dataset",
                        what="a Job's inputs (its data, model folder, template and the hf-finetune wheel)",
                        another="bill another namespace with --jobs-namespace")


# -- 3. follow -------------------------------------------------------------------------------------
def _ask_detach_or_cancel(console: Console) -> str:
    if not sys.stdin.isatty():
        return "cancel"   # nobody to ask (CI, a pipe): don't leave a paid machine running unattended
    from rich.prompt import Prompt

    try:
        return Prompt.ask("\nStop following: [d]etach (the Job keeps running) or [c]ancel the Job?",
                          choices=["d", "c"], default="d", console=console).replace("d", "detach").replace(
                              "c", "cancel")
    except (KeyboardInterrupt, EOFError):
        return "cancel"


class _StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM (`kill`, a CI cancel) while following, recorded for the main thread, which
    then asks (SIGINT on a terminal) or cancels the Job. Recorded rather than raised: a KeyboardInterrupt lands
    on whatever line runs, and rich's or httpx's code stopped half-way can be left unusable (a Console left
    buffering never prints "canceled"). A signal the caller ignores (nohup, `cmd &` in a script) stays ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}


class _LogView:
    """The Job's log lines, with its progress lines shown as a bar on a terminal."""

    def __init__(self, console: Console):
        self.console = console
        self.tail: collections.deque[str] = collections.deque(maxlen=25)
        self.bar = None
        self.task = None

    def line(self, text: str) -> None:
        self.tail.append(text)
        step = parse_step_line(text)
        if step is not None and self.console.is_terminal:
            if self.bar is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                self.bar = Progress(TextColumn("[bold]Job training"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), TextColumn("{task.fields[status]}"), console=self.console)
                self.task = self.bar.add_task("training", total=step[1], status="")
                self.bar.start()
            self.bar.update(self.task, completed=step[0], total=step[1], status=step[2])
            return
        if self.bar is not None:
            self.bar.console.print(text, highlight=False, markup=False)
        else:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def follow(job_id: str, namespace: str | None, token: str | None, console: Console,
           repo_id: str | None = None) -> int:
    """Stream the Job's logs until it ends; return its exit status (0 completed, 130 canceled, 1 otherwise).
    Ctrl-C asks whether to detach or cancel (cancels when nobody can answer); SIGTERM cancels (143)."""
    api = hub.api(token)
    view = _LogView(console)
    info = None
    with _StopSignals() as signals:
        try:
            _show_logs(_log_lines(api, job_id, namespace), view, signals)
            if signals.received is None:
                info = _wait_terminal(api, job_id, namespace, signals)
        except NoSuchJob:
            raise
        except FinetuneError as err:   # the Hub out of reach, or the connection lost: the Job may run on
            clause = _still_running(job_id, namespace)
            raise HubError(f"Stopped following Job {job_id}: {err.message}", clause[0].upper() + clause[1:] + "."
                           ) from None
        finally:
            view.close()
    if info is None:
        return _stop(api, job_id, namespace, console, signals.received or signal.SIGINT)
    return _report_end(info, view.tail, console, repo_id, token)


_END = object()   # the log stream ended


def _log_lines(api: Any, job_id: str, namespace: str | None) -> "queue.Queue[Any]":
    """The log lines, read by a thread: each line, then _END or the exception that ended the reading."""
    lines: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        try:
            for text in _logs(api, job_id, namespace, True):
                lines.put(text)
            lines.put(_END)
        except BaseException as err:  # noqa: BLE001 - handed to the main thread, which raises it
            lines.put(err)

    threading.Thread(target=read, name=f"job-{job_id}-logs", daemon=True).start()
    return lines


def _show_logs(lines: "queue.Queue[Any]", view: _LogView, signals: _StopSignals) -> None:
    """Show the lines until the log ends or a stop signal comes (checked at least every 0.2 s)."""
    while signals.received is None:
        try:
            item = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        view.line(item)


def _stop(api: Any, job_id: str, namespace: str | None, console: Console, signum: int) -> int:
    """Following stopped by a signal: detach or cancel (SIGINT), or cancel (SIGTERM)."""
    if signum == signal.SIGINT and _ask_detach_or_cancel(console) == "detach":
        console.print(f"detached; the Job keeps running. Follow it again: hf-finetune jobs logs {job_id} "
                      f"--follow{_ns_flag(namespace)}", highlight=False)
        return 0
    with hub.errors(f"Canceling Job {job_id}", kept=_still_running(job_id, namespace)):
        api.cancel_job(job_id=job_id, namespace=namespace)
    console.print(f"canceled Job {job_id}" + (" (SIGTERM)" if signum == signal.SIGTERM else ""), highlight=False)
    return 130 if signum == signal.SIGINT else 143


def _still_running(job_id: str, namespace: str | None) -> str:
    ns = _ns_flag(namespace)
    return (f"the Job may still be running (and billed): follow it again with `hf-finetune jobs logs {job_id} "
            f"--follow{ns}`, or cancel it with `hf-finetune jobs cancel {job_id}{ns}`")


def _logs(api: Any, job_id: str, namespace: str | None, follow: bool) -> Iterable[str]:
    """The log lines, with failures while streaming reported as ours too."""
    with _job_errors("Reading the logs of", job_id, namespace):
        lines = iter(api.fetch_job_logs(job_id=job_id, namespace=namespace, follow=follow))
    while True:
        with _job_errors("Reading the logs of", job_id, namespace):
            text = next(lines, None)
        if text is None:
            return
        yield text


def _wait_terminal(api: Any, job_id: str, namespace: str | None, signals: _StopSignals) -> Any:
    """The log stream may end a moment before the Job's stage does; None when a stop signal came."""
    deadline = time.monotonic() + 60
    while signals.received is None:
        with _job_errors("Reading the status of", job_id, namespace):
            info = api.inspect_job(job_id=job_id, namespace=namespace)
        if info.status.stage in TERMINAL or time.monotonic() > deadline:
            return info
        time.sleep(1)
    return None


def _ns_flag(namespace: str | None) -> str:
    return f" --namespace {namespace}" if namespace else ""


def _report_end(info: Any, tail: Iterable[str], console: Console, repo_id: str | None, token: str | None) -> int:
    stage = info.status.stage
    message = f": {info.status.message}" if info.status.message else ""
    if stage == "COMPLETED":
        console.print(f"[green]Job {info.id} completed[/]", highlight=False)
        metrics = _print_pushed(repo_id, token, console) if repo_id else {}
        _step_summary(info, f"completed{message}", repo_id, metrics)
        return 0
    _step_summary(info, f"ended {stage}{message}", repo_id, {})
    console.print(f"[red]Job {info.id} ended {stage}{message}[/]", highlight=False)
    lines = list(tail)
    if lines and stage != "CANCELED":
        console.print("last lines of its log:", highlight=False)
        for text in lines[-15:]:
            console.print("  " + text, highlight=False, markup=False)
    if stage != "CANCELED" and repo_id:
        console.print(f"Re-submit the same command to continue from its last checkpoint on {repo_id} "
                      f"(branch hf-finetune-checkpoints).", highlight=False)
    return EXIT_CODES.get(stage, 1)


def _step_summary(info: Any, outcome: str, repo_id: str | None, metrics: dict[str, Any]) -> None:
    """In GitHub Actions: the Job, its outcome, the pushed card and its test metrics in the run's summary."""
    import os

    from .metrics import summary_rows

    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    lines = [f"### hf-finetune: Hugging Face Job [{info.id}]({info.url}) {outcome}", ""]
    if repo_id and metrics:
        lines += [f"Model card: {hub.shown_endpoint()}/{repo_id}", "", "| split | metric | value |", "|---|---|---|"]
        lines += [f"| {split} | {key} | {value:.4f} |" for split, key, value in summary_rows(metrics)]
    elif repo_id:
        lines.append(f"Re-run to continue from its last checkpoint on {repo_id} (branch hf-finetune-checkpoints).")
    with open(path, "a", encoding="utf-8") as summary:
        summary.write("\n".join(lines) + "\n")


def _print_pushed(repo_id: str, token: str | None, console: Console) -> dict[str, Any]:
    """The pushed repo and its metrics, read back from the Hub (not from the Job's log)."""
    from huggingface_hub import hf_hub_download

    from .metrics import summary_rows
    from .rundir import METRICS

    with hub.errors(f"Reading the metrics of {repo_id}"):
        path = hf_hub_download(repo_id, METRICS, token=token, endpoint=hub.endpoint())
    metrics = json.loads(Path(path).read_text(encoding="utf-8"))
    table = Table(title=f"{hub.shown_endpoint()}/{repo_id}")
    table.add_column("split")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for split, key, value in summary_rows(metrics):
        table.add_row(split, key, f"{value:.4f}")
    console.print(table)
    return metrics


# -- detached Jobs: hf-finetune jobs logs|status|cancel --------------------------------------------
def _need_hub(doing: str, kept: str) -> None:
    """Fail in seconds, not after the client's connect time-outs and retries, when the Hub is out of reach."""
    if hub.constants.is_offline_mode():
        raise HubError(f"{doing} needs the Hub ({hub.shown_endpoint()}), and HF_HUB_OFFLINE is set.",
                       f"Unset HF_HUB_OFFLINE, then try again; {kept}.")
    if not hub.reachable():
        raise HubError(f"{doing}: the Hub ({hub.shown_endpoint()}) can't be reached from here (no connection "
                       "within 3 s).", f"Check the network (and HF_ENDPOINT), then try again; {kept}.")


def _check_job(job_id: str, namespace: str | None) -> None:
    """A Job id and namespace go into the request's URL: only what they can be, never a path."""
    if not _JOB_ID.fullmatch(job_id):
        raise ConfigError(f"{job_id!r} is not a Job id: a Job id is letters and digits, such as "
                          "68780d00bbe36d38803f645f.", "Use the id printed at submission; `hf jobs ps -a` lists them.")
    _check_namespace(namespace, "--namespace")


class NoSuchJob(HubError):
    """The Hub has no Job of that id in that namespace (or the token can't see it)."""


@contextlib.contextmanager
def _job_errors(doing: str, job_id: str, namespace: str | None, kept: str = "the Job itself is not affected"
                ) -> Iterator[None]:
    """hub.errors for a request about one Job ("Reading the status of" Job X): a 404 says which Job was not
    found where; a network failure says what it left as it was (``kept``)."""
    from huggingface_hub.errors import HfHubHTTPError

    with hub.errors(f"{doing} Job {job_id}", kept=kept):
        try:
            yield
        except HfHubHTTPError as err:
            if getattr(err.response, "status_code", None) != 404:
                raise
            where = f"the namespace {namespace!r}" if namespace else "the token's namespace"
            raise NoSuchJob(f"There is no Job {job_id} in {where} on the Hub ({hub.shown_endpoint()}), or the "
                            "token can't see it.", f"Check the id (`hf jobs ps -a{_ns_flag(namespace)}` lists the "
                            "Jobs) and --namespace (a Job of an organization needs --namespace ORG).") from None


def _known_namespace(api: Any, namespace: str | None) -> str:
    """--namespace, else the token's user (what the Hub's client would ask for on every call)."""
    if namespace:
        return namespace
    with hub.errors("Asking the Hub who the token belongs to", kept="the Job itself is not affected"):
        return api.whoami()["name"]


def _job_command(job_id: str, namespace: str | None, token: str | None) -> tuple[Any, str]:
    """Checks shared by `jobs logs|status|cancel`: the id, the namespace, the Hub in reach; the API and namespace."""
    _check_job(job_id, namespace)
    _need_hub(f"Reaching Job {job_id}", "the Job itself is not affected")
    api = hub.api(token)
    return api, _known_namespace(api, namespace)


def logs(job_id: str, namespace: str | None, token: str | None, console: Console, follow_logs: bool) -> int:
    api, namespace = _job_command(job_id, namespace, token)
    if follow_logs:
        return follow(job_id, namespace, token, console)
    for text in _logs(api, job_id, namespace, False):
        console.print(text, highlight=False, markup=False, soft_wrap=True)
    return 0


def status(job_id: str, namespace: str | None, token: str | None, console: Console) -> int:
    api, namespace = _job_command(job_id, namespace, token)
    with _job_errors("Reading the status of", job_id, namespace):
        info = api.inspect_job(job_id=job_id, namespace=namespace)
    console.print_json(json.dumps({"id": info.id, "stage": info.status.stage, "message": info.status.message,
                                   "flavor": str(info.flavor), "url": info.url}))
    return 0


def cancel(job_id: str, namespace: str | None, token: str | None, console: Console) -> int:
    api, namespace = _job_command(job_id, namespace, token)
    with _job_errors("Canceling", job_id, namespace, kept=f"the Job may not be canceled: `hf-finetune jobs status "
                                                          f"{job_id}{_ns_flag(namespace)}` says"):
        api.cancel_job(job_id=job_id, namespace=namespace)
    console.print(f"canceled Job {job_id}", highlight=False)
    return 0
