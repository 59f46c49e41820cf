"""Nothing from a shared run, template, config or workflow runs code or leaks a secret (issue #12).

Every test plays a hostile input against the real CLI (and the local Hub-protocol server): links in a
run dir, templates and configs naming code, a run's saved config, tokens in odd forms and places,
YAML bombs, and the install spec written into workflows and cards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, read_json, run_cli
from hub_server import HubServer

TOKEN = "hf_securityTestToken0123456789abcdef"
QUICK = ["--max-length", "16", "--num-train-epochs", "1", "--per-device-train-batch-size", "16"]


def hub_env(session_env: dict, url: str, token: str | None = TOKEN) -> dict:
    env = dict(session_env, HF_ENDPOINT=url)
    env.pop("HF_HUB_OFFLINE", None)
    if token is not None:
        env["HF_TOKEN"] = token
    return env


@pytest.fixture
def inputs(tiny_run_data) -> Path:
    """The folder holding the data of the shared run (a local path that must never reach the Hub)."""
    return tiny_run_data.parent


@pytest.fixture
def finished(tiny_run) -> Path:
    """The session's tiny finished run, from a local model folder and local data; tests copy it before changing
    it."""
    return tiny_run


def copy_run(finished: Path, tmp_path: Path) -> Path:
    run = tmp_path / "copy"
    shutil.copytree(finished, run, symlinks=True)
    return run


# -- 1. a push never follows links, and uploads only the files a run writes -------------------------------

@pytest.mark.parametrize("link, target", [("tokenizer.json", "token"), ("passwd.json", "/etc/passwd"),
                                          ("notes.txt", "secret")])
def test_push_refuses_a_run_dir_holding_a_link(link, target, finished, tmp_path, session_env):
    run = copy_run(finished, tmp_path)
    secret = tmp_path / "secret-file"
    secret.write_text("SECRET-CONTENT-123")
    (run / link).unlink(missing_ok=True)
    (run / link).symlink_to(secret if target != "/etc/passwd" else target)
    with HubServer(tokens={TOKEN}) as server:
        proc = run_cli(["push", str(run), "tester/linked"], hub_env(session_env, server.url))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert link in proc.stderr and "symbolic link" in proc.stderr
        assert server.requests == []                       # refused before any request
        assert not server.uploaded_contains(b"SECRET-CONTENT-123")


def test_push_uploads_the_allow_list_only_and_no_local_path(finished, tmp_path, session_env, inputs, tiny_model):
    run = copy_run(finished, tmp_path)
    (run / "notes.txt").write_text("private notes")
    (run / "extra.json").write_text("{}")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "optimizer.pt").write_bytes(b"x")
    with HubServer(tokens={TOKEN}) as server:
        proc = run_cli(["push", str(run), "tester/clean"], hub_env(session_env, server.url))
        assert proc.returncode == 0, proc.stderr
        pushed = server.files("tester/clean")
        pushed.pop(".gitattributes", None)   # made by the server with the repo, as on the Hub
    assert set(pushed) == {"README.md", "config.json", "log_history.json", "metrics.json", "model.safetensors",
                           "run_config.yaml", "run_info.json", "tokenizer.json", "tokenizer_config.json",
                           "training_curves.png", "confusion_matrix.png"}
    assert "notes.txt" in proc.stdout and "left out" in proc.stdout
    for local in (str(inputs), str(tiny_model), str(tmp_path), str(Path.home()) + "/"):
        for name, data in pushed.items():
            assert local.encode() not in data, (name, local)
    shared = yaml.safe_load(pushed["run_config.yaml"])
    assert shared["dataset"] == "reviews.csv" and shared["model"] == Path(tiny_model).name
    assert b"local inputs of the original run" in pushed["run_config.yaml"]
    # the local copy keeps the real paths, so the run repeats here
    assert yaml.safe_load((run / "run_config.yaml").read_text())["dataset"] == str(inputs / "reviews.csv")


def test_finished_run_holds_no_staging_bookkeeping_and_plain_modes(finished):
    assert not (finished / "run_fingerprint.txt").exists()
    modes = {p.name: p.stat().st_mode & 0o777 for p in finished.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"], modes


# -- 2. writes never follow links --------------------------------------------------------------------------

def test_card_rewrite_replaces_a_linked_readme_instead_of_writing_through_it(finished, tmp_path, cli):
    run = copy_run(finished, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / "README.md").unlink()
    (run / "README.md").symlink_to(victim)
    proc = cli(["card", run])
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious"
    assert not (run / "README.md").is_symlink() and "## How to use" in (run / "README.md").read_text()


def test_run_files_are_not_read_through_links(finished, tmp_path, cli):
    run = copy_run(finished, tmp_path)
    (run / "metrics.json").unlink()
    (run / "metrics.json").symlink_to("/etc/hostname")
    proc = cli(["summary", run])
    assert proc.returncode == 2 and "symbolic link" in proc.stderr


# -- 3. templates and configs are data: code only with --trust-remote-code ---------------------------------

def evil_template(folder: Path, marker: Path, *, section: str = "callback") -> Path:
    """The bundled sentiment template with one addition that would run `touch MARKER`."""
    raw = yaml.safe_load((REPO / "task_templates" / "sentiment.yaml").read_text())
    popen = {"class": "subprocess:Popen", "args": {"args": ["touch", str(marker)]}}
    if section == "callback":
        raw["trainer"]["callbacks"] = [popen]
    elif section == "collator":
        raw["collator"] = popen
    elif section == "trainer args":
        raw["trainer"]["args"] = {"push_to_hub": True}   # with the user's own stored token
    elif section == "model load_args":
        raw["model"]["load_args"] = {"trust_remote_code": True}
    path = folder / "evil.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("how", ["template path", "--template", "config template key"])
def test_a_template_naming_code_is_refused_before_anything_runs(how, tmp_path, cli, tiny_model):
    marker = tmp_path / "pwned"
    template = evil_template(tmp_path, marker)
    common = ["--model", str(tiny_model), "--output-dir", str(tmp_path / "out"), *QUICK]
    if how == "template path":
        args = [str(template), *common]
    elif how == "--template":
        args = ["--template", str(template), *common]
    else:
        config = tmp_path / "run.yaml"
        config.write_text(f"template: {template}\n")
        args = ["--config", str(config), *common]
    proc = cli(args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "subprocess:Popen" in proc.stderr and "--trust-remote-code" in proc.stderr
    time.sleep(0.2)
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("section, named", [("collator", "subprocess:Popen"), ("trainer args", "push_to_hub"),
                                            ("model load_args", "trust_remote_code")])
def test_template_arguments_that_run_code_or_send_data_are_refused(section, named, tmp_path, cli):
    template = evil_template(tmp_path, tmp_path / "pwned", section=section)
    proc = cli([template, "--help"])
    assert proc.returncode == 2 and named in proc.stderr and "--trust-remote-code" in proc.stderr, proc.stderr


def test_trust_remote_code_lets_a_trusted_template_run_its_own_callback(tmp_path, session_env, tiny_model, inputs):
    module = tmp_path / "my_callbacks.py"
    module.write_text(
        "from transformers import TrainerCallback\n"
        "class Marker(TrainerCallback):\n"
        "    def __init__(self, path):\n        self.path = path\n"
        "    def on_train_end(self, args, state, control, **kwargs):\n"
        "        open(self.path, 'w').write(str(state.global_step))\n")
    marker = tmp_path / "marker"
    raw = yaml.safe_load((REPO / "task_templates" / "sentiment.yaml").read_text())
    raw["trainer"]["callbacks"] = [{"class": "my_callbacks:Marker", "args": {"path": str(marker)}}]
    template = tmp_path / "mine.yaml"
    template.write_text(yaml.safe_dump(raw))
    env = dict(session_env, PYTHONPATH=str(tmp_path))
    args = [str(template), "--model", str(tiny_model), "--dataset", str(inputs / "reviews.csv"), "--text-column",
            "review", "--output-dir", str(tmp_path / "out"), *QUICK]
    refused = run_cli(args, env)
    assert refused.returncode == 2 and not marker.exists()
    trusted = run_cli([*args, "--trust-remote-code"], env)
    assert trusted.returncode == 0, trusted.stderr
    assert int(marker.read_text()) > 0
    # the trust is not recorded: the saved config can't switch it on for whoever repeats the run
    assert "trust_remote_code" not in yaml.safe_load((tmp_path / "out" / "run_config.yaml").read_text())


def test_a_config_file_cannot_grant_trust(tmp_path, cli):
    config = tmp_path / "run.yaml"
    config.write_text("task: sentiment\ntrust_remote_code: true\n")
    proc = cli(["--config", config])
    assert proc.returncode == 2 and "trust_remote_code" in proc.stderr and "command line" in proc.stderr


@pytest.mark.parametrize("metric", ["someone/metric-on-the-hub", "./my_metric"])
def test_metrics_that_are_not_built_in_need_trust(metric, tmp_path, cli, monkeypatch):
    local = tmp_path / "my_metric"
    local.mkdir()
    (local / "my_metric.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w')\n")
    monkeypatch.chdir(tmp_path)
    proc = cli(["sentiment", "--metrics", f"accuracy,{metric}"])
    assert proc.returncode == 2 and metric in proc.stderr and "--trust-remote-code" in proc.stderr, proc.stderr
    assert not (tmp_path / "pwned").exists()


def test_evaluate_reads_a_runs_saved_config_as_data(finished, tmp_path, cli, inputs):
    run = copy_run(finished, tmp_path)
    marker = tmp_path / "pwned"
    template = evil_template(tmp_path, marker)
    config = yaml.safe_load((run / "run_config.yaml").read_text())
    config["template"] = str(template)
    (run / "run_config.yaml").write_text(yaml.safe_dump(config))
    proc = cli(["evaluate", run, "--dataset", inputs / "reviews.csv", "--text-column", "review"])
    assert proc.returncode == 2 and "--trust-remote-code" in proc.stderr, proc.stderr
    time.sleep(0.2)
    assert not marker.exists()


def with_custom_code(folder: Path, marker: Path) -> Path:
    """A checkpoint folder whose config.json names its own Python code (auto_map), code that touches MARKER."""
    config = read_json(folder / "config.json")
    config["model_type"] = "custom-architecture"   # not one transformers knows: only its own code can load it
    config["auto_map"] = {"AutoConfig": "configuration_custom.CustomConfig",
                          "AutoModelForSequenceClassification": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("configuration_custom", "modeling_custom"):
        (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    return folder


@pytest.mark.parametrize("command", ["predict", "evaluate", "train"])
def test_a_checkpoints_own_code_runs_only_with_trust_remote_code(command, finished, tiny_model, tmp_path,
                                                                 session_env, inputs):
    """transformers asks "Do you wish to run the custom code? [y/N]" on stdin when trust_remote_code is left
    unset: a `yes |` in front of the command must not be an answer."""
    marker = tmp_path / "pwned"
    if command == "train":
        model = tmp_path / "model"
        shutil.copytree(tiny_model, model)
        folder = with_custom_code(model, marker)
        args = ["sentiment", "--model", folder, "--dataset", inputs / "reviews.csv", "--text-column", "review",
                "--output-dir", tmp_path / "out", *QUICK]
    else:
        folder = with_custom_code(copy_run(finished, tmp_path), marker)
        (tmp_path / "t.txt").write_text("great product\n")
        args = (["predict", folder, "--input", tmp_path / "t.txt"] if command == "predict" else
                ["evaluate", folder, "--dataset", inputs / "reviews.csv", "--text-column", "review"])
    args = [str(a) for a in args]
    proc = subprocess.run([sys.executable, "-m", "hf_finetune", *args], input="y\n" * 50, env=session_env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "--trust-remote-code" in proc.stderr, proc.stderr
    assert "Unexpected error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not marker.exists(), marker.read_text()
    # the same code does run once trusted: the refusal above is what kept it out
    subprocess.run([sys.executable, "-m", "hf_finetune", *args, "--trust-remote-code"], env=session_env,
                   capture_output=True, text=True, timeout=600)
    assert marker.exists()


# -- 4. workflows and cards install exactly this hf-finetune ----------------------------------------------

def fake_install(folder: Path, version: str, direct_url: dict | None) -> Path:
    """A dist-info as pip writes it, on a folder put first on sys.path."""
    info = folder / f"hf_finetune-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: hf-finetune\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return folder


@pytest.mark.parametrize("direct_url, expected", [
    (None, "hf-finetune[embedded]==9.9.9"),
    ({"url": "https://github.com/org/hf-finetune", "vcs_info": {"vcs": "git", "commit_id": "0123abc"}},
     "hf-finetune[embedded] @ git+https://github.com/org/hf-finetune@0123abc"),
    ({"url": "https://example.org/hf_finetune-9.9.9-py3-none-any.whl",
      "archive_info": {"hashes": {"sha256": "ab12"}}},
     "hf-finetune[embedded] @ https://example.org/hf_finetune-9.9.9-py3-none-any.whl#sha256=ab12"),
    ({"url": "file:///home/me/hf-finetune", "dir_info": {"editable": True}}, None),
    ({"url": "file:///tmp/hf_finetune-9.9.9-py3-none-any.whl", "archive_info": {}}, None),
])
def test_install_spec_is_the_running_install(direct_url, expected, tmp_path, monkeypatch):
    from hf_finetune import install

    monkeypatch.syspath_prepend(str(fake_install(tmp_path, "9.9.9", direct_url)))
    assert install.install_spec("embedded") == expected


def test_init_ci_refuses_a_local_install_without_a_spec_and_grants_oidc_only_when_asked(tmp_path, cli):
    refused = cli(["init-ci", "--dir", tmp_path / "a"])   # this checkout: an editable install
    assert refused.returncode == 2 and "--install-spec" in refused.stderr
    assert not (tmp_path / "a").exists()
    spec = "hf-finetune[embedded] @ git+https://github.com/org/hf-finetune@0123abc"
    for oidc in (False, True):
        folder = tmp_path / ("oidc" if oidc else "token")
        proc = cli(["init-ci", "--dir", folder, "--install-spec", spec, *(["--oidc"] if oidc else [])])
        assert proc.returncode == 0, proc.stderr
        workflow = yaml.safe_load((folder / ".github/workflows/hf-finetune-train.yml").read_text())
        job = workflow["jobs"]["train"]
        assert job["env"]["HF_FINETUNE_PACKAGE"] == spec
        assert ("id-token" in workflow["permissions"]) is oidc
        assert ("HF_OIDC_RESOURCE" in job["env"]) is oidc and ("HF_TOKEN" in job["env"]) is not oidc


def test_card_names_no_bare_package_for_a_local_install(finished):
    card = (finished / "README.md").read_text()
    assert 'pip install "hf-finetune' not in card and "local source tree" in card
    assert "local inputs that are not in this repository" in card and "`reviews.csv`" in card


# -- 5. tokens: refused when malformed, masked in every form, never in argv --------------------------------

def _no_token(proc: subprocess.CompletedProcess, token: str) -> None:
    output = proc.stdout + proc.stderr
    assert token.strip() not in output and repr(token)[1:-1] not in output, output


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_token_with_a_line_ending_is_refused_before_any_request(debug, finished, session_env):
    token = TOKEN + "\r"
    with HubServer(tokens={TOKEN}) as server:
        env = hub_env(session_env, server.url, token=token)
        proc = run_cli(["push", str(finished), "tester/crlf", *(["--debug"] if debug else [])], env)
        assert proc.returncode == 2 and "whitespace" in proc.stderr, proc.stderr
        assert server.requests == []
    _no_token(proc, token)


@pytest.mark.parametrize("form", ["--token=VALUE", "--token VALUE"])
def test_a_rejected_token_is_masked_in_messages_and_tracebacks(form, finished, session_env):
    wrong = "hf_wrongTokenButRealLooking0123456789"
    with HubServer(tokens={TOKEN}) as server:
        env = hub_env(session_env, server.url, token=None)
        env["HF_HOME"] = str(Path(env["HF_HOME"]) / "nobody")
        given = [f"--token={wrong}"] if "=" in form else ["--token", wrong]
        proc = run_cli(["push", str(finished), "tester/denied", *given, "--debug"], env)
    assert proc.returncode != 0 and "HTTP 401" in proc.stderr
    _no_token(proc, wrong)


def test_a_token_typed_in_the_wrong_place_is_not_echoed(finished, cli):
    proc = cli(["push", finished, "tester/x", TOKEN])
    assert proc.returncode == 2 and "Unexpected extra argument" in proc.stderr
    _no_token(proc, TOKEN)


def test_a_token_in_an_error_and_its_traceback_is_masked(cli, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proc = cli(["sentiment", "--dataset", f"./{TOKEN}.csv", "--debug"])   # the message quotes the value
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "***" in proc.stderr
    _no_token(proc, TOKEN)


@pytest.mark.slow
def test_child_processes_get_the_token_from_the_environment_not_argv(session_env, tiny_model, inputs, tmp_path):
    args = [sys.executable, "-m", "hf_finetune", "sentiment", "--model", str(tiny_model), "--dataset",
            str(inputs / "reviews.csv"), "--text-column", "review", "--output-dir", str(tmp_path / "ddp"),
            "--num-processes", "2", "--token", TOKEN, "--max-steps", "2", *QUICK]
    proc = subprocess.Popen(args, env=session_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    typed = " ".join(args) + " "   # the user's own command (a fork shows it too, until it execs)
    seen: list[str] = []
    while proc.poll() is None:
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != proc.pid:
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if "hf_finetune" in cmdline and "sentiment" in cmdline and cmdline != typed:
                    seen.append(cmdline)
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert seen, "no child process was observed"
    assert not [c for c in seen if TOKEN in c]
    assert TOKEN not in out + err


# -- 6. YAML limits ----------------------------------------------------------------------------------------

def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, cli):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(lines) + "\n")
    assert config.stat().st_size < 600       # 9^9 strings once expanded
    proc = cli(["sentiment", "--config", config])
    assert proc.returncode == 2 and "aliases" in proc.stderr, proc.stderr


def test_oversized_or_special_yaml_files_are_refused(tmp_path, cli):
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    proc = cli(["sentiment", "--config", big])
    assert proc.returncode == 2 and "at most" in proc.stderr
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    proc = cli(["sentiment", "--config", fifo])
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


def test_info_of_a_pushed_run_names_inputs_without_paths(finished, tiny_model):
    info = read_json(finished / "run_info.json")
    text = json.dumps(info)
    assert str(tiny_model) not in text and "/tmp/" not in text
    assert info["local_inputs"] == {"model": True, "dataset": True, "template": False}
