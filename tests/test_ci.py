"""The GitHub Actions training workflow: lint-clean, and its own run: steps work in order."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_cli
from hub_server import HubServer

TOKEN = "hf_ciTestToken_0a1b2c3d4e5f"


SPEC = "hf-finetune[embedded] @ git+https://github.com/org/hf-finetune@0123abc"


def test_workflows_pass_actionlint(tmp_path, session_env):
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    files = [*sorted((REPO / ".github" / "workflows").glob("*.yml"))]
    for oidc, jobs in ((False, False), (True, False), (False, True), (True, True)):
        folder = tmp_path / f"{oidc}-{jobs}"
        generated = run_cli(["init-ci", "--dir", str(folder), "--task", "summarization", "--install-spec", SPEC,
                             *(["--oidc"] if oidc else []), *(["--jobs-flavor", "l4x1"] if jobs else [])],
                            session_env)
        assert generated.returncode == 0, generated.stderr
        files.append(folder / ".github" / "workflows" / "hf-finetune-train.yml")
    proc = subprocess.run([actionlint, *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_repo_workflow_is_the_packaged_template_installing_this_checkout():
    from hf_finetune import ci

    assert (REPO / ".github" / "workflows" / "train.yml").read_text() == ci.workflow_text("sentiment", ".[embedded]")


def test_ci_workflow_runs_the_readme_test_command():
    ci_yml = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    assert "bash .ci/run" in ci_yml
    assert "python -m pytest -q" in (REPO / ".ci" / "run").read_text()


def test_init_ci_refuses_to_overwrite_without_force(tmp_path, cli):
    spec = ["--install-spec", SPEC]
    first = cli(["init-ci", "--dir", tmp_path, *spec])
    assert first.returncode == 0
    again = cli(["init-ci", "--dir", tmp_path, *spec])
    assert again.returncode == 2 and "--force" in again.stderr
    forced = cli(["init-ci", "--dir", tmp_path, "--force", "--task", "image-classification", *spec])
    assert forced.returncode == 0
    text = (tmp_path / ".github/workflows/hf-finetune-train.yml").read_text()
    assert "default: image-classification" in text
    bad = cli(["init-ci", "--dir", tmp_path / "x", "--task", "sentimnt", *spec])
    assert bad.returncode == 2 and not (tmp_path / "x").exists()


def _run_steps(workflow: Path, env: dict, cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run a workflow's `run:` steps in order, as a runner would (bash -e, the job's env, `if: always()` and
    `if: failure()`)."""
    job = next(iter(yaml.safe_load(workflow.read_text())["jobs"].values()))
    results, failed = [], False
    for step in job["steps"]:
        if "run" not in step:
            continue
        condition = str(step.get("if", ""))
        if (failed and "always()" not in condition and "failure()" not in condition) or \
                (not failed and "failure()" in condition):
            continue
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=900)
        results.append(proc)
        failed |= proc.returncode != 0
    return results


@pytest.fixture(scope="module")
def runner_python(tmp_path_factory) -> tuple[Path, Path]:
    """A fresh venv standing in for a runner's Python, and a wheel of this checkout to install into it.

    The venv sees this environment's packages (torch, transformers, ...) except hf-finetune itself, so
    the workflow's own install line really installs hf-finetune, offline and in seconds.
    """
    root = tmp_path_factory.mktemp("runner")
    wheels = root / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(wheels), str(REPO)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)   # with its own pip, as on a runner
    outer = next(Path(p) for p in sys.path if p.endswith("site-packages") and (Path(p) / "torch").is_dir())
    visible = root / "site-packages-without-hf-finetune"
    visible.mkdir()
    for entry in outer.iterdir():
        if not entry.name.startswith(("hf_finetune", "__editable__", "pip")):
            (visible / entry.name).symlink_to(entry)
    inner = next(venv.glob("lib/python*/site-packages"))
    for old in [*inner.glob("setuptools*"), *inner.glob("_distutils_hack"), *inner.glob("distutils-precedence.pth")]:
        shutil.rmtree(old) if old.is_dir() else old.unlink()   # ensurepip's old setuptools would shadow ours
    (inner / "outer-packages.pth").write_text(f"{visible}\n")
    return venv / "bin", next(wheels.glob("*.whl"))


@pytest.mark.slow
@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure-fails-the-job"])
def test_workflow_run_steps_train_push_and_summarize(fail, tmp_path, session_env, tiny_model, reviews_csv,
                                                     runner_python):
    bin_dir, wheel = runner_python
    spec = f"hf-finetune[embedded] @ {wheel.as_uri()}"
    assert run_cli(["init-ci", "--dir", str(tmp_path), "--install-spec", spec], session_env).returncode == 0
    workflow = tmp_path / ".github" / "workflows" / "hf-finetune-train.yml"
    job_env = next(iter(yaml.safe_load(workflow.read_text())["jobs"].values()))["env"]
    assert job_env["HF_FINETUNE_PACKAGE"] == spec
    with HubServer(tokens={TOKEN}) as server:
        summary = tmp_path / "step_summary.md"
        env = dict(session_env)
        env.pop("HF_HUB_OFFLINE", None)
        env.update({k: str(v) for k, v in job_env.items() if "${{" not in str(v)})
        env.update(
            CI="true", GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary), HF_ENDPOINT=server.url,
            HF_TOKEN=TOKEN, HF_OIDC_RESOURCE="", TASK="sentiment", MODEL=str(tiny_model),
            DATASET=str(reviews_csv) if not fail else str(tmp_path / "missing.csv"), HUB_REPO="tester/from-ci",
            EPOCHS="1", PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            # the runner's package index, offline: the wheel of this checkout and what the venv already sees
            PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        steps = _run_steps(workflow, env, tmp_path)
        assert steps[0].returncode == 0, steps[0].stdout + steps[0].stderr     # the workflow's own install line
        _, train, summarize = steps
        assert next((bin_dir.parent).glob("lib/python*/site-packages/hf_finetune/__init__.py")).is_file()
        assert summarize.returncode == 0, summarize.stderr
        text = summary.read_text()
        if fail:
            assert train.returncode != 0 and "does not exist" in train.stderr
            assert "the run failed" in text
            assert ("model", "tester/from-ci") not in server.repos
            return
        assert train.returncode == 0, train.stderr + train.stdout
        assert "| test |" in text and "accuracy" in text and "| validation (best checkpoint) |" in text
        run = tmp_path / "outputs" / "run"
        for name in ("README.md", "metrics.json", "training_curves.png", "run_config.yaml"):
            assert (run / name).is_file(), name
        pushed = server.files("tester/from-ci")
        assert "model.safetensors" in pushed and "README.md" in pushed
        assert all(TOKEN.encode() not in data for data in pushed.values())


@pytest.mark.slow
def test_jobs_workflow_run_steps_submit_follow_and_summarize(tmp_path, session_env, tiny_model, reviews_csv,
                                                            runner_python):
    """`init-ci --jobs-flavor`: the runner installs hf-finetune (no GPU, no CUDA torch) and only submits and
    follows the Job, which trains and pushes; the step summary has the Job, the card and the metrics."""
    bin_dir, wheel = runner_python
    spec = f"hf-finetune[embedded] @ {wheel.as_uri()}"
    assert run_cli(["init-ci", "--dir", str(tmp_path), "--install-spec", spec, "--jobs-flavor", "t4-small"],
                   session_env).returncode == 0
    workflow = tmp_path / ".github" / "workflows" / "hf-finetune-train.yml"
    parsed = yaml.safe_load(workflow.read_text())
    job = next(iter(parsed["jobs"].values()))
    assert parsed[True]["workflow_dispatch"]["inputs"]["flavor"]["default"] == "t4-small"
    assert not any("upload-artifact" in str(step.get("uses")) for step in job["steps"])
    with HubServer(tokens={TOKEN}) as server:
        summary = tmp_path / "step_summary.md"
        env = dict(session_env)
        env.pop("HF_HUB_OFFLINE", None)
        env.update({k: str(v) for k, v in job["env"].items() if "${{" not in str(v)})
        env.update(
            CI="true", GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary), HF_ENDPOINT=server.url,
            HF_TOKEN=TOKEN, TASK="sentiment", MODEL=str(tiny_model), DATASET=str(reviews_csv),
            HUB_REPO="tester/from-jobs", EPOCHS="1", JOBS_FLAVOR="t4-small", JOBS_TIMEOUT="20m",
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        install, train = _run_steps(workflow, env, tmp_path)
        assert install.returncode == 0, install.stdout + install.stderr
        assert train.returncode == 0, train.stdout[-3000:] + train.stderr
        (submitted,) = server.jobs.jobs.values()
        assert submitted.spec["flavor"] == "t4-small" and submitted.spec["timeoutSeconds"] == 1200
        assert "model.safetensors" in server.files("tester/from-jobs")
        text = summary.read_text()
        assert f"Hugging Face Job [{submitted.id}]" in text and "completed" in text
        assert f"{server.url}/tester/from-jobs" in text and "| test | accuracy |" in text
        assert "preparation_time" not in text and "runtime" not in text and "per_second" not in text
        assert TOKEN not in text + train.stdout + train.stderr


def test_hf_cli_extension(tmp_path, session_env):
    env = dict(session_env, HOME=str(tmp_path), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    installed = run_cli(["hf-extension", "install"], env)
    assert installed.returncode == 0, installed.stderr
    hf = shutil.which("hf", path=env["PATH"])
    proc = subprocess.run([hf, "finetune", "sentiment", "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--learning-rate" in proc.stdout
    tasks = subprocess.run([hf, "finetune", "tasks"], env=env, capture_output=True, text=True, timeout=120)
    assert tasks.returncode == 0 and "summarization" in tasks.stdout


@pytest.mark.parametrize("spec", [
    "hf-finetune @ git+https://me:ghp_0123456789abcdefghijABCDEFGHIJ0123@github.com/org/hf-finetune@0123abc",
    "hf-finetune @ git+https://hf_0123456789abcdefghijABCDEFGHIJ@huggingface.co/org/hf-finetune@0123abc",
    "hf-finetune @ git+https://me:s3cret-pass@github.com/org/hf-finetune@0123abc",
    "hf-finetune @ https://example.com/hf_finetune-0.1.0.whl?token=github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
], ids=["github-token-as-password", "hub-token-as-user", "password", "token-in-query"])
def test_init_ci_refuses_an_install_spec_with_credentials_without_echoing_them(spec, tmp_path, cli):
    result = cli(["init-ci", "--dir", tmp_path, "--install-spec", spec])
    assert result.returncode == 2, result.stdout + result.stderr
    assert not (tmp_path / ".github").exists()
    said = result.stdout + result.stderr
    assert "credentials" in said and "secret" in said and "GH_PAT" in said
    for secret in ("ghp_0123456789", "hf_0123456789", "s3cret-pass", "github_pat_11ABC"):
        assert secret not in said


def test_init_ci_keeps_a_spec_without_credentials(tmp_path, cli):
    spec = "hf-finetune @ git+https://github.com/org/hf-finetune@0123abc"   # the `@` of a commit is no user info
    assert cli(["init-ci", "--dir", tmp_path, "--install-spec", spec]).returncode == 0


@pytest.mark.parametrize("task", ["my#task.yaml", "tasks/my #task.yaml", "it's.yaml", "a: b.yaml", "'quoted'.yaml",
                                  "true.yaml", "- list.yaml"])
def test_init_ci_writes_any_task_path_as_a_workflow_that_keeps_it(task, tmp_path, cli):
    """A task path with YAML's or an expression's syntax in it is quoted, not written into the YAML as is."""
    assert cli(["init-ci", "--dir", tmp_path, "--task", task, "--install-spec", SPEC]).returncode == 0
    workflow = tmp_path / ".github/workflows/hf-finetune-train.yml"
    parsed = yaml.safe_load(workflow.read_text())
    assert parsed[True]["workflow_dispatch"]["inputs"]["task"]["default"] == task   # YAML 1.1 reads `on` as True
    assert parsed["jobs"]["train"]["env"]["TASK"] == "${{ inputs.task || '" + task.replace("'", "''") + "' }}"
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    lint = subprocess.run([actionlint, str(workflow)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_init_ci_refuses_a_task_of_more_than_one_line(tmp_path, cli):
    result = cli(["init-ci", "--dir", tmp_path, "--task", "a\nb.yaml", "--install-spec", SPEC])
    assert result.returncode == 2 and "one line" in result.stderr
