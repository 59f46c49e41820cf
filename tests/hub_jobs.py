"""The Jobs side of the tests' Hub server: a submitted Job really runs, as a subprocess on this machine.

What a Jobs machine does and how it is stood in for here:
- the container image: a fresh virtual environment whose base packages are this test environment's (a
  `.pth` line, no `.pth` processing, so the editable hf-finetune is NOT visible: the Job must install the
  wheel it was given, as on a real machine). The image name is recorded, not pulled.
- volumes: a repo volume's files (at its revision, under its `path`) are written to a folder, and the mount
  path is replaced by that folder in the command and env, as a container mount would make them appear.
- env and secrets: both reach the process's environment; only secret *names* are ever echoed back.
- the network: `HF_ENDPOINT` points the Job's Hub client at this server.
- time-out, cancel: the process group is killed; the stage becomes ERROR ("Job timed out") or CANCELED.
- logs: stdout and stderr, line by line, replayed then streamed as server-sent events until the Job ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    id: str
    namespace: str
    spec: dict[str, Any]
    created_at: str = field(default_factory=_now)
    stage: str = "SCHEDULING"
    message: str | None = None
    lines: list[tuple[str, str]] = field(default_factory=list)    # (timestamp, text)
    process: subprocess.Popen | None = None
    folder: Path | None = None
    returncode: int | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    def info(self, endpoint: str) -> dict[str, Any]:
        spec = self.spec
        return {"id": self.id, "createdAt": self.created_at, "dockerImage": spec.get("dockerImage"),
                "spaceId": spec.get("spaceId"), "command": spec.get("command"), "arguments": spec.get("arguments"),
                "environment": spec.get("environment") or {},
                "secrets": {name: "*****" for name in spec.get("secrets") or {}},   # names only, as the Hub
                "flavor": spec.get("flavor"), "labels": spec.get("labels"), "volumes": spec.get("volumes"),
                "status": {"stage": self.stage, "message": self.message},
                "owner": {"id": "0" * 24, "name": self.namespace, "type": "user"},
                "timeoutSeconds": spec.get("timeoutSeconds")}

    def log(self, text: str) -> None:
        with self.changed:
            self.lines.append((_now(), text))
            self.changed.notify_all()

    def end(self, stage: str, message: str | None = None) -> None:
        with self.changed:
            if self.stage not in TERMINAL:
                self.stage, self.message = stage, message
            self.changed.notify_all()


class JobRunner:
    """Runs the Jobs of one HubServer; `files_of(volume)` reads a repo volume from the server's state."""

    def __init__(self, hub: Any):
        self.hub = hub
        self.jobs: dict[str, Job] = {}
        self.root = Path(tempfile.mkdtemp(prefix="hub-jobs-"))
        self.submitted_envs: list[dict[str, str]] = []   # env + secrets each Job process got (for tests)

    def submit(self, namespace: str, spec: dict[str, Any]) -> Job:
        job = Job(id=f"{len(self.jobs) + 1:024x}", namespace=namespace, spec=spec)
        self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"job-{job.id}", daemon=True).start()
        return job

    # -- one Job -----------------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        try:
            job.folder = self.root / job.id
            job.folder.mkdir()
            mounts = self._mount(job)
            env = self._environment(job, mounts)
            command = [_remap(part, mounts) for part in job.spec["command"] + job.spec.get("arguments", [])]
            job.process = subprocess.Popen(command, cwd=job.folder, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
            if job.stage in TERMINAL:   # canceled while starting
                self._kill(job)
            else:
                job.stage = "RUNNING"
            job.log("===== Job started =====")
            timeout = job.spec.get("timeoutSeconds")
            if timeout:
                threading.Timer(timeout, self.expire, args=(job.id,)).start()
            for line in job.process.stdout:
                job.log(line.rstrip("\n"))
            job.returncode = job.process.wait()
            job.end("COMPLETED" if job.returncode == 0 else "ERROR",
                    None if job.returncode == 0 else f"exit code {job.returncode}")
        except Exception as err:  # noqa: BLE001 - the Job fails, the server goes on
            job.log(f"job runner: {err!r}")
            job.end("ERROR", f"could not start: {err}")

    def _mount(self, job: Job) -> dict[str, str]:
        mounts = {}
        for i, volume in enumerate(job.spec.get("volumes") or []):
            target = job.folder / f"mount{i}"
            prefix = (volume.get("path") or "").strip("/")
            files = self.hub.files(volume["source"], volume.get("revision") or "main", volume.get("type", "model"))
            for path, data in files.items():
                if prefix and not path.startswith(prefix + "/"):
                    continue
                local = target / path[len(prefix) + 1 if prefix else 0:]
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(data)
            target.mkdir(exist_ok=True)
            mounts[volume["mountPath"]] = str(target)
        return mounts

    def _environment(self, job: Job, mounts: dict[str, str]) -> dict[str, str]:
        venv = job.folder / "image"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        packages = next(venv.glob("lib/python*/site-packages"))
        (packages / "image-base.pth").write_text(site.getsitepackages()[0] + "\n")
        env = {key: value for key, value in os.environ.items()
               if key in ("LANG", "LC_ALL", "PYTHONHASHSEED", "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS",
                          "HF_HUB_DISABLE_XET", "PIP_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")}
        tmp = job.folder / "tmp"
        tmp.mkdir()
        env.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", HOME=str(job.folder), TMPDIR=str(tmp),
                   HF_ENDPOINT=self.hub.url, HF_HOME=str(job.folder / "hf_home"),
                   HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_UPDATE_CHECK="1", PIP_NO_INDEX="1",
                   PIP_DISABLE_PIP_VERSION_CHECK="1", VIRTUAL_ENV=str(venv))
        env.update({k: _remap(str(v), mounts) for k, v in (job.spec.get("environment") or {}).items()})
        env.update({k: str(v) for k, v in (job.spec.get("secrets") or {}).items()})
        self.submitted_envs.append(dict(env))
        return env

    # -- control -----------------------------------------------------------------------------------
    def _kill(self, job: Job) -> None:
        if job.process is not None and job.process.poll() is None:
            try:
                os.killpg(job.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cancel(self, job_id: str) -> None:
        job = self.jobs[job_id]
        job.end("CANCELED")
        self._kill(job)

    def expire(self, job_id: str) -> None:
        """What the Job's time-out does (tests may also call it at a chosen instant)."""
        job = self.jobs[job_id]
        if job.stage in TERMINAL:
            return
        job.end("ERROR", "Job timed out")
        self._kill(job)

    def stream(self, job_id: str, tail: int | None) -> Iterator[bytes]:
        """Server-sent events: the lines so far (or the last `tail`), then new ones until the Job ends."""
        job = self.jobs[job_id]
        with job.changed:
            start = max(len(job.lines) - tail, 0) if tail else 0
        sent = start
        while True:
            # never yield while holding the lock: a client that hangs up leaves this generator suspended at its
            # yield, and a lock held there would block cancel_job and the Job's own log lines forever
            with job.changed:
                if sent >= len(job.lines) and job.stage not in TERMINAL:
                    job.changed.wait(timeout=5)
                idle = sent >= len(job.lines) and job.stage not in TERMINAL
                lines, done = job.lines[sent:], job.stage in TERMINAL
                sent = len(job.lines)
            if idle:
                yield b": keep-alive\n\n"
                continue
            for timestamp, text in lines:
                yield b"data: " + json.dumps({"timestamp": timestamp, "data": text}).encode() + b"\n\n"
            if done and sent >= len(job.lines):
                if job.process is not None:
                    try:
                        job.process.wait(timeout=10)   # the reader may still hold the last lines
                    except subprocess.TimeoutExpired:
                        pass
                time.sleep(0.2)
                with job.changed:
                    rest = job.lines[sent:]
                for timestamp, text in rest:
                    yield b"data: " + json.dumps({"timestamp": timestamp, "data": text}).encode() + b"\n\n"
                return

    def close(self) -> None:
        for job in self.jobs.values():
            self._kill(job)
        shutil.rmtree(self.root, ignore_errors=True)


def _remap(text: str, mounts: dict[str, str]) -> str:
    for mount, local in sorted(mounts.items(), key=lambda m: -len(m[0])):
        text = text.replace(mount, local)
    return text
