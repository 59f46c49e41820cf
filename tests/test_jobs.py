"""Training as a Hugging Face Job, against the tests' Hub server, whose Jobs really run the submitted command
(as a subprocess, in a fresh environment that must install the wheel the Job was given; tests/hub_jobs.py).

One Job that completes is shared by the tests that only read what it left (its local output, the server's
requests, the pushed repo); the failure, cancel and time-out tests each run their own short Job.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load

from conftest import REPO, run_cli
from hub_server import HubServer

TOKEN = "hf_jobsTestToken_5c1e8a2f9b7d3e60"
RUN = ["--max-train-samples", "64", "--max-eval-samples", "16", "--max-test-samples", "16", "--max-length", "32",
       "--eval-strategy", "steps", "--eval-steps", "4", "--logging-steps", "2", "--per-device-train-batch-size", "8",
       "--early-stopping-patience", "0"]


def jobs_env(session_env: dict, url: str) -> dict:
    env = dict(session_env, HF_ENDPOINT=url, HF_TOKEN=TOKEN)
    env.pop("HF_HUB_OFFLINE", None)
    return env


def submit_args(model: Path, data: Path, repo: str, *extra: str) -> list[str]:
    return ["sentiment", "--model", str(model), "--dataset", str(data), *RUN, "--push-to-hub", repo,
            "--jobs-flavor", "cpu-basic", *extra]


@pytest.fixture(scope="module")
def server():
    with HubServer(tokens={TOKEN}) as hub:
        yield hub


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> Path:
    from conftest import write_reviews_csv

    return write_reviews_csv(tmp_path_factory.mktemp("jobdata") / "reviews.csv")


@pytest.fixture(scope="module")
def completed(server, session_env, tiny_model, reviews):
    """A Job submitted and followed to its end: (the local command's result, the server's Job)."""
    before = len(server.jobs.jobs)
    proc = run_cli(submit_args(tiny_model, reviews, "tester/job-model", "--max-steps", "16"),
                   jobs_env(session_env, server.url))
    job = list(server.jobs.jobs.values())[before]
    return proc, job


def test_dry_run_prints_the_job_and_sends_nothing(server, cli, monkeypatch, tiny_model, reviews):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    sent = len(server.requests)
    proc = cli(submit_args(tiny_model, reviews, "tester/dry", "--jobs-timeout", "90m", "--dry-run"))
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(proc.stdout)
    assert spec["flavor"] == "cpu-basic" and spec["timeout_seconds"] == 5400 and spec["secrets"] == ["HF_TOKEN"]
    assert {f["path"] for f in spec["files"]} == {"/data/run_config.yaml", "/data/data/reviews.csv",
                                                  "/data/model/" + tiny_model.name + "/config.json",
                                                  *(f"/data/model/{tiny_model.name}/{p.name}"
                                                    for p in tiny_model.iterdir()),
                                                  "/data/hf_finetune-0.1.0-py3-none-any.whl"}
    assert TOKEN not in proc.stdout + proc.stderr
    assert len(server.requests) == sent   # nothing reached the Hub
    # a tracker is installed in the Job, which logs to a Space (its local files vanish with it)
    tracked = cli([*submit_args(tiny_model, reviews, "tester/dry", "--report-to", "trackio", "--dry-run")])
    assert tracked.returncode == 0, tracked.stderr
    assert " trackio;" in json.loads(tracked.stdout)["command"][2]


def test_a_tracker_that_is_not_installed_is_named_before_training(cli, tiny_model, reviews, tmp_path):
    proc = cli(["sentiment", "--model", tiny_model, "--dataset", reviews, "--report-to", "trackio",
                "--output-dir", tmp_path / "out"])
    assert proc.returncode == 2 and "pip install trackio" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_push_to_hub_is_required_and_checked_before_anything_is_sent(server, cli, tiny_model, reviews):
    sent = len(server.requests)
    proc = cli(["sentiment", "--model", str(tiny_model), "--jobs-flavor", "a10g-small"])
    assert proc.returncode == 2 and "--push-to-hub is required" in proc.stderr
    bad = cli(submit_args(tiny_model, reviews, "tester/x", "--jobs-timeout", "soon"))
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    typo = cli([*submit_args(tiny_model, reviews, "tester/x"), "--jobs-flavor", "a10g-smal"])
    assert typo.returncode == 2 and "Did you mean 'a10g-small'" in typo.stderr
    assert len(server.requests) == sent


def test_a_jobs_timeout_under_a_minute_is_refused_and_fractions_are_rounded(server, cli, monkeypatch, tiny_model,
                                                                           reviews):
    """The Hub takes whole seconds, and reads 0 as no time-out at all (its default applies)."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    half = cli(submit_args(tiny_model, reviews, "tester/dry", "--jobs-timeout", "0.5", "--dry-run"))
    assert half.returncode == 2 and "--jobs-timeout '0.5' is 0.5 s" in half.stderr, half.stdout + half.stderr
    assert "at least 60 s" in half.stderr
    for given, seconds in (("1.5m", 90), ("100.6", 101), ("0.02h", 72)):
        proc = cli(submit_args(tiny_model, reviews, "tester/dry", "--jobs-timeout", given, "--dry-run"))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["timeout_seconds"] == seconds


@pytest.mark.slow
def test_a_job_trains_streams_its_log_and_pushes_to_the_hub(completed, server):
    proc, job = completed
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert job.stage == "COMPLETED" and job.spec["flavor"] == "cpu-basic"
    # the Job's own progress lines reached the local output through the log stream
    assert "[hf-finetune] step 16/16" in proc.stdout and "Job " + job.id in proc.stdout
    files = server.files("tester/job-model")
    assert {"model.safetensors", "README.md", "metrics.json", "run_config.yaml"} <= set(files)
    assert "hf-finetune-checkpoints" not in server.repo("tester/job-model").refs   # deleted after the push
    # the metrics shown at the end are the pushed ones, read back from the Hub
    test_accuracy = json.loads(files["metrics.json"])["test"]["accuracy"]
    assert f"{test_accuracy:.4f}" in proc.stdout


@pytest.mark.slow
def test_the_job_installs_the_wheel_it_was_given(completed, server):
    _, job = completed
    uploaded = server.files("tester/hf-finetune-jobs", repo_type="dataset")
    wheels = [p for p in uploaded if p.endswith("hf_finetune-0.1.0-py3-none-any.whl")]
    assert len(wheels) >= 1
    installed = list((job.folder / "image").glob("lib/python*/site-packages/hf_finetune/jobs.py"))
    assert installed and installed[0].read_bytes() == (REPO / "hf_finetune" / "jobs.py").read_bytes()
    config = yaml.safe_load(uploaded[wheels[0].rsplit("/", 1)[0] + "/run_config.yaml"])
    assert config["dataset"] == "data/reviews.csv" and config["resume_from_hub"] is True
    assert "output_dir" not in config


@pytest.mark.slow
def test_the_token_travels_only_as_the_job_secret(completed, server):
    proc, job = completed
    bodies = [body for body in server.received if TOKEN.encode() in body]
    assert len(bodies) == 1   # the Job submission, and only in its secrets
    spec = json.loads(bodies[0])
    assert spec["secrets"] == {"HF_TOKEN": TOKEN}
    assert TOKEN not in json.dumps({k: v for k, v in spec.items() if k != "secrets"})
    assert not any(TOKEN.encode() in chunk for chunk in server.uploads)
    assert TOKEN not in proc.stdout + proc.stderr
    assert TOKEN not in "\n".join(text for _, text in job.lines)
    job_env = server.jobs.submitted_envs[list(server.jobs.jobs).index(job.id)]
    assert job_env["HF_TOKEN"] == TOKEN   # the secret did reach the Job


@pytest.mark.slow
def test_a_failing_job_exits_non_zero_with_the_tail_of_its_log(server, session_env, reviews):
    # a Hub model that is not there: found only by the Job (a local data mistake fails before submission)
    proc = run_cli(submit_args("tester/no-such-model", reviews, "tester/failing"), jobs_env(session_env, server.url))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ended ERROR" in proc.stdout and "last lines of its log" in proc.stdout
    assert "tester/no-such-model" in proc.stdout.split("last lines of its log")[1]   # the Job's own error message


def _wait(predicate, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def _follower(args: list[str], env: dict) -> subprocess.Popen:
    """The CLI as a terminal starts a command, with SIGINT at its default, and nobody to answer its prompts. A
    test run started in the background by a script (`pytest ... &`) ignores SIGINT, and its children inherit
    that, so SIGINT would never reach them (hf-finetune leaves an ignored signal ignored, as nohup asks)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)   # a handler, reset to default by exec
    try:
        return subprocess.Popen([sys.executable, "-m", "hf_finetune", *args], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def _ended(follower: subprocess.Popen, after: str) -> tuple[str, str]:
    """The follower's output once it ended (killed, and the test failed, if it did not within 60 s)."""
    try:
        return follower.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        follower.kill()
        out, err = follower.communicate()
        pytest.fail(f"the follower did not end after {after}:\n{out[-3000:]}\n{err}")


ENDLESS = ("import itertools, time\n"
           "for i in itertools.count():\n"
           "    print(f'[hf-finetune] step {i}/100000', flush=True)\n"
           "    time.sleep(0.05)\n")


def _endless_job(hub: HubServer) -> str:
    """A Job that logs a step line every 50 ms until it is stopped: following one, without training."""
    from huggingface_hub import HfApi

    from hf_finetune import jobs

    return HfApi(endpoint=hub.url, token=TOKEN).run_job(image=jobs.IMAGE, command=["python3", "-c", ENDLESS],
                                                        flavor="cpu-basic", namespace=hub.username).id


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_or_ctrl_c_to_the_follower_cancels_the_job_when_nobody_can_answer(server, session_env, signum,
                                                                                  code):
    """SIGTERM (`kill`, a CI job canceled or timed out) cancels the Job as Ctrl-C does where nobody can answer:
    no paid machine left running unattended."""
    job_id = _endless_job(server)
    follower = _follower(["jobs", "logs", job_id, "--follow"], jobs_env(session_env, server.url))
    assert "[hf-finetune] step" in follower.stdout.readline()   # following
    follower.send_signal(signum)
    out, err = _ended(follower, signal.Signals(signum).name)
    job = server.jobs.jobs[job_id]
    assert follower.returncode == code, out[-2000:] + err
    assert job.stage == "CANCELED" and f"canceled Job {job_id}" in out
    assert job.process.poll() is not None   # the Job's process is gone


def test_a_lost_connection_says_which_job_may_still_run_and_how_to_cancel_it(session_env):
    with HubServer(tokens={TOKEN}) as hub:
        job_id = _endless_job(hub)
        follower = _follower(["jobs", "logs", job_id, "--follow"], jobs_env(session_env, hub.url))
        assert "[hf-finetune] step" in follower.stdout.readline()
        hub.stop()   # the Hub goes away while the log streams
        out, err = _ended(follower, "the Hub went away")
    assert follower.returncode == 1, out[-2000:] + err
    assert f"Stopped following Job {job_id}" in err and "may still be running" in err
    assert f"hf-finetune jobs cancel {job_id} --namespace tester" in err
    assert f"hf-finetune jobs logs {job_id} --follow --namespace tester" in err
    assert "the run itself is saved" not in err and "Traceback" not in err


def test_jobs_commands_check_the_id_and_say_which_job_is_missing_where(server, session_env):
    env = jobs_env(session_env, server.url)
    sent = len(server.requests)
    path = run_cli(["jobs", "status", "../../whoami-v2#"], env)
    assert path.returncode == 2 and "'../../whoami-v2#' is not a Job id" in path.stderr, path.stdout + path.stderr
    namespace = run_cli(["jobs", "cancel", "f" * 24, "--namespace", "../whoami-v2#"], env)
    assert namespace.returncode == 2 and "is not a Hub user or organization name" in namespace.stderr
    assert len(server.requests) == sent   # neither reached the Hub
    missing = run_cli(["jobs", "status", "f" * 24], env)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert f"There is no Job {'f' * 24} in the namespace 'tester'" in missing.stderr
    assert "404 Client Error" not in missing.stderr


@pytest.fixture
def unanswered_endpoint():
    """An endpoint that never answers a connection, as a Hub behind a dropped route does: a listening socket
    whose accept queue is full and never accepted, so further SYNs are dropped."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = [socket.socket() for _ in range(2)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
        try:
            yield "http://127.0.0.1:%d" % listener.getsockname()[1]
        finally:
            for filler in fillers:
                filler.close()


def test_an_unreachable_hub_fails_the_jobs_commands_in_seconds_saying_what_was_kept(
        session_env, unanswered_endpoint, tiny_model, reviews):
    env = jobs_env(session_env, unanswered_endpoint)
    started = time.monotonic()
    status = run_cli(["jobs", "status", "f" * 24, "--namespace", "tester"], env)
    took = time.monotonic() - started
    assert status.returncode == 1 and "can't be reached" in status.stderr, status.stderr
    assert "the Job itself is not affected" in status.stderr and "the run itself is saved" not in status.stderr
    assert took < 9, took   # the 3-s probe, not the client's 10-s connect time-out (and its retries)
    submitted = run_cli(submit_args(tiny_model, reviews, "tester/unreached"), env)
    assert submitted.returncode == 1 and "can't be reached" in submitted.stderr, submitted.stderr
    assert "nothing was submitted" in submitted.stderr and "the run itself is saved" not in submitted.stderr
    assert "building a wheel" not in submitted.stdout   # it failed before any work


@pytest.mark.slow
def test_ctrl_c_cancels_the_job_when_nobody_can_answer_and_jobs_cancel(server, session_env, tiny_model, reviews):
    env = jobs_env(session_env, server.url)
    before = len(server.jobs.jobs)
    follower = _follower(submit_args(tiny_model, reviews, "tester/cancelled", "--max-steps", "100000"), env)
    _wait(lambda: len(server.jobs.jobs) > before and any(
        "[hf-finetune] step" in text for _, text in list(server.jobs.jobs.values())[before].lines))
    time.sleep(1)   # the line reaches the follower
    follower.send_signal(signal.SIGINT)
    out, err = _ended(follower, "SIGINT")
    job = list(server.jobs.jobs.values())[before]
    assert follower.returncode == 130, out + err
    assert job.stage == "CANCELED" and "canceled Job " + job.id in out
    assert job.process.poll() is not None   # the Job's process is gone

    detached = run_cli(submit_args(tiny_model, reviews, "tester/cancelled", "--jobs-detach"), env)
    assert detached.returncode == 0, detached.stderr
    job_id = list(server.jobs.jobs)[-1]
    assert f"hf-finetune jobs cancel {job_id}" in detached.stdout
    cancel = run_cli(["jobs", "cancel", job_id, "--namespace", "tester"], env)
    assert cancel.returncode == 0, cancel.stderr
    status = run_cli(["jobs", "status", job_id, "--namespace", "tester"], env)
    assert json.loads(status.stdout)["stage"] == "CANCELED"


@pytest.mark.slow
def test_a_timed_out_job_resubmitted_resumes_from_the_hub_and_ends_equal(server, session_env, tiny_model, reviews,
                                                                         completed):
    """The first Job is ended by its time-out right after its checkpoint of step 8 lands on the Hub (the
    server's timer, fired at that instant); the same command again continues from there, and the final
    weights equal those of the same run never interrupted (the shared Job)."""
    env = jobs_env(session_env, server.url)
    args = submit_args(tiny_model, reviews, "tester/resumed", "--max-steps", "16")

    def expire_after_step_8(repo, ref, commit) -> None:
        state = commit.files.get("last-checkpoint/trainer_state.json")
        if repo.repo_id == "tester/resumed" and ref == "hf-finetune-checkpoints" and state is not None \
                and json.loads(state.data)["global_step"] >= 8:
            server.on_commit = None
            server.jobs.expire(list(server.jobs.jobs)[-1])

    server.on_commit = expire_after_step_8
    first = run_cli(args, env)
    assert first.returncode == 1 and "Job timed out" in first.stdout, first.stdout + first.stderr
    assert "Re-submit the same command to continue" in first.stdout
    assert "model.safetensors" not in server.files("tester/resumed")   # nothing finished was pushed
    second = run_cli(args, env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    job = list(server.jobs.jobs.values())[-1]
    log = "\n".join(text for _, text in job.lines)
    assert "checkpoint of step 8 found on the Hub" in log and "step 16/16" in log
    steps = [int(line.split("step ")[1].split("/")[0]) for line in log.splitlines() if "[hf-finetune] step " in line]
    assert min(steps) > 8   # it continued from step 8 rather than training again from the start
    # the same run, never interrupted (the shared Job): bit-identical weights
    uninterrupted, _ = completed
    assert uninterrupted.returncode == 0
    pushed = load(server.file_bytes("tester/resumed", "model.safetensors"))
    reference = load(server.file_bytes("tester/job-model", "model.safetensors"))
    assert pushed.keys() == reference.keys()
    assert all((pushed[k] == reference[k]).all() for k in reference)


@pytest.mark.slow
def test_jobs_logs_replays_a_finished_job(completed, server, session_env):
    _, job = completed
    proc = run_cli(["jobs", "logs", job.id, "--namespace", "tester"], jobs_env(session_env, server.url))
    assert proc.returncode == 0, proc.stderr
    assert "[hf-finetune] step 16/16" in proc.stdout


def test_trackio_of_a_push_without_namespace_logs_to_the_token_users_space(server, monkeypatch, tiny_model,
                                                                            reviews, tmp_path):
    """`--push-to-hub NAME` goes to the token's user: the Job's trackio dashboard must go there too, not to
    a Space of a user called NAME."""
    from huggingface_hub import HfApi

    from hf_finetune import api, hub, jobs

    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    template, config = api.resolve_config("sentiment", model=str(tiny_model), dataset=str(reviews),
                                          push_to_hub="plainname", report_to="trackio")
    job = jobs.plan(template, config, flavor="cpu-basic")
    info = jobs.submit(job, TOKEN, lambda text: None)
    client = HfApi(endpoint=server.url, token=TOKEN)
    try:
        volume = info.volumes[0] if getattr(info, "volumes", None) else None
        folder = volume.path if volume is not None else None
        files = [f for f in client.list_repo_files(f"{server.username}/{jobs.INPUTS_REPO}", repo_type="dataset")
                 if f.endswith("run_config.yaml") and (folder is None or f.startswith(folder))]
        text = Path(client.hf_hub_download(f"{server.username}/{jobs.INPUTS_REPO}", files[-1], repo_type="dataset",
                                           cache_dir=tmp_path)).read_text()
    finally:
        hub.api(TOKEN).cancel_job(job_id=info.id)
    assert yaml.safe_load(text)["trackio_space_id"] == f"{server.username}/trackio"


def test_summaries_show_model_quality_not_trainer_timings():
    """Every summary (the CLI's table, a Job's end, the CI step summary) reads summary_rows: the Trainer's
    timings, preparation_time included, are not metrics of the model."""
    from hf_finetune.metrics import summary_rows

    metrics = {"test": {"accuracy": 0.9, "model_preparation_time": 0.01, "runtime": 1.0, "samples_per_second": 9.0},
               "validation": {"f1": 0.8, "preparation_time": 0.02}}
    assert sorted((split, name) for split, name, _ in summary_rows(metrics)) == [
        ("test", "accuracy"), ("validation (best checkpoint)", "f1")]


def test_an_existing_public_inputs_repo_is_refused_before_anything_is_uploaded(monkeypatch, tiny_model, reviews):
    """`create_repo(private=True, exist_ok=True)` leaves a public `<ns>/hf-finetune-jobs` public: the Job's data,
    model and wheel would be readable by anyone."""
    from huggingface_hub import HfApi

    from hf_finetune import api, jobs
    from hf_finetune.errors import HubError

    with HubServer(tokens={TOKEN}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        inputs_repo = f"{server.username}/{jobs.INPUTS_REPO}"
        HfApi(endpoint=server.url, token=TOKEN).create_repo(inputs_repo, repo_type="dataset", private=False)
        template, config = api.resolve_config("sentiment", model=str(tiny_model), dataset=str(reviews),
                                              push_to_hub="tester/public-inputs")
        said = []
        with pytest.raises(HubError, match=f"{inputs_repo} already exists and is public") as refused:
            jobs.submit(jobs.plan(template, config, flavor="cpu-basic"), TOKEN, said.append)
        assert "Make it private" in refused.value.hint
        assert set(server.files(inputs_repo, repo_type="dataset")) == {".gitattributes"}   # nothing uploaded
        assert not server.jobs.jobs and not server.uploads
        assert not any("wheel" in text for text in said)   # refused before the wheel was built


def _main_history(server: HubServer, repo_id: str) -> list[str]:
    repo = server.repo(repo_id)
    commit, messages = repo.resolve("main"), []
    while commit is not None:
        messages.append(commit.message)
        commit = repo.commits.get(commit.parent) if commit.parent else None
    return messages


@pytest.mark.slow
def test_a_two_process_job_trains_as_one_process_does_and_pushes_once(completed, server, session_env, tiny_model,
                                                                      reviews):
    """--num-processes 2 on a CPU flavor: the Job runs hf-finetune under accelerate launch (gloo), as a multi-GPU
    flavor does with one process per GPU; half the per-device batch keeps the 1-process Job's global batch."""
    single_proc, _ = completed
    assert single_proc.returncode == 0, single_proc.stdout[-3000:]
    before = len(server.jobs.jobs)
    proc = run_cli(submit_args(tiny_model, reviews, "tester/job-ddp", "--max-steps", "16",
                               "--per-device-train-batch-size", "4", "--num-processes", "2"),
                   jobs_env(session_env, server.url))
    job = list(server.jobs.jobs.values())[before]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert job.stage == "COMPLETED" and job.spec["command"][2].endswith("--num-processes 2")
    log = "\n".join(text for _, text in job.lines)
    assert log.count("[hf-finetune] step 16/16") == 1 and log.count("hf-finetune sentiment:") == 1   # rank 0 only
    files, single = server.files("tester/job-ddp"), server.files("tester/job-model")
    assert set(files) == set(single)   # the same run dir, written by one process
    assert yaml.safe_load(files["run_config.yaml"])["num_processes"] == 2
    metrics, single_metrics = json.loads(files["metrics.json"]), json.loads(single["metrics.json"])
    assert metrics["train"]["steps"] == single_metrics["train"]["steps"] == 16
    assert set(metrics["test"]) == set(single_metrics["test"])
    # pushed once, as the 1-process Job: the same history on main, and the checkpoint branch gone
    assert len(_main_history(server, "tester/job-ddp")) == len(_main_history(server, "tester/job-model"))
    assert "hf-finetune-checkpoints" not in server.repo("tester/job-ddp").refs
