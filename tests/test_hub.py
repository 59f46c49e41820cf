"""Hub integration against a Hub-protocol server on 127.0.0.1, through the real huggingface_hub client.

Each client configuration runs in its own process, since huggingface_hub reads HF_ENDPOINT and the
Xet switch at import time: `HF_HUB_DISABLE_XET=1` (large files go through LFS batch + PUT) and Xet
left on (the server asks for regular uploads).
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from hub_server import HubServer

TOKEN = "hf_hubTestToken_7f3a9c0e1d2b4a6f"
QUICK = ["--max-train-samples", "48", "--max-eval-samples", "16", "--max-test-samples", "16",
         "--num-train-epochs", "1", "--max-length", "32"]


def hub_env(session_env: dict, url: str, *, xet: bool, token: str | None = TOKEN) -> dict:
    env = dict(session_env, HF_ENDPOINT=url)
    env.pop("HF_HUB_OFFLINE", None)
    if token:
        env["HF_TOKEN"] = token
    if xet:
        env.pop("HF_HUB_DISABLE_XET", None)
    else:
        env["HF_HUB_DISABLE_XET"] = "1"
    return env


def client(code: str, env: dict) -> subprocess.CompletedProcess:
    """Run a snippet of the real client in a fresh process with the given environment."""
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """A 1-layer, 96-wide BERT with the embedded tokenizer: its weights (about 12 MB) are over the Hub's 10 MB
    limit for regular uploads, so a push with Xet off really goes through LFS."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from hf_finetune import embedded

    tokenizer = AutoTokenizer.from_pretrained(str(embedded.MODELS["all-MiniLM-L6-v2"].locate()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=96, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=96, max_position_embeddings=64)
    path = tmp_path_factory.mktemp("small-bert")
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, session_env, small_model):
    out = tmp_path_factory.mktemp("hubruns") / "run"
    proc = run_cli(["sentiment", "--model", str(small_model), "--output-dir", str(out), *QUICK], session_env)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("xet", [False, True], ids=["lfs", "xet-regular"])
def test_push_pull_round_trip(xet, trained_run, tmp_path, session_env):
    with HubServer(tokens={TOKEN}, xet_regular=xet) as server:
        env = hub_env(session_env, server.url, xet=xet)
        # a >10 MB weights file makes the LFS path real when Xet is off
        assert (trained_run / "model.safetensors").stat().st_size > 10 * 2**20
        run = tmp_path / "run"
        shutil.copytree(trained_run, run)
        (run / "checkpoints" / "checkpoint-2").mkdir(parents=True)   # what a run must never push
        (run / "checkpoints" / "checkpoint-2" / "optimizer.pt").write_bytes(b"state")
        (run / "pytorch_model.bin").write_bytes(b"pickle")
        (run / "training_args.bin").write_bytes(b"pickle")
        proc = run_cli(["push", str(run), "tester/tiny-sentiment"], env)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        pushed = server.files("tester/tiny-sentiment")
        assert {"config.json", "model.safetensors", "README.md", "metrics.json", "run_config.yaml",
                "training_curves.png", "tokenizer.json"} <= set(pushed)
        assert not any(p.startswith("checkpoint") or p.endswith((".bin", ".pt")) for p in pushed)
        assert server.is_lfs("tester/tiny-sentiment", "model.safetensors") is (not xet)

        pulled = tmp_path / "pulled"
        code = ("from huggingface_hub import snapshot_download; "
                f"print(snapshot_download('tester/tiny-sentiment', local_dir={str(pulled)!r}))")
        proc = client(code, env)
        assert proc.returncode == 0, proc.stderr
        for name in ("model.safetensors", "config.json", "tokenizer.json", "metrics.json"):
            assert filecmp.cmp(trained_run / name, pulled / name, shallow=False), name
        card = (pulled / "README.md").read_text()
        assert 'model="tester/tiny-sentiment"' in card or "model='tester/tiny-sentiment'" in card

        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(pulled)
        assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
        if not xet:
            assert any(path.endswith("/info/lfs/objects/batch") for _, path in server.requests)
            assert any(method == "PUT" for method, _ in server.requests)


def test_repush_pr_branch_and_private(trained_run, tmp_path, session_env):
    with HubServer(tokens={TOKEN}, xet_regular=True) as server:
        env = hub_env(session_env, server.url, xet=True)
        first = run_cli(["push", str(trained_run), "tester/again", "--private"], env)
        again = run_cli(["push", str(trained_run), "tester/again"], env)   # exist_ok: re-runs must not break
        assert first.returncode == 0 and again.returncode == 0, again.stderr
        assert server.repos[("model", "tester/again")].private
        changed = tmp_path / "changed-run"
        shutil.copytree(trained_run, changed)
        config = yaml.safe_load((changed / "run_config.yaml").read_text())
        (changed / "run_config.yaml").write_text(yaml.safe_dump({**config, "seed": 4321}))   # a PR needs a change
        pr = run_cli(["push", str(changed), "tester/again", "--create-pr"], env)
        assert pr.returncode == 0, pr.stderr
        assert "discussions/1" in pr.stdout
        assert yaml.safe_load(server.files("tester/again", revision="refs/pr/1")["run_config.yaml"])["seed"] == 4321
        assert yaml.safe_load(server.files("tester/again")["run_config.yaml"])["seed"] != 4321
        branch = run_cli(["push", str(trained_run), "tester/again", "--revision", "v1"], env)
        assert branch.returncode == 0, branch.stderr
        assert "model.safetensors" in server.files("tester/again", revision="v1")
        # a private repo is invisible without the token
        anonymous = client("from huggingface_hub import HfApi; HfApi().model_info('tester/again')",
                           hub_env(session_env, server.url, xet=True, token=None))
        assert anonymous.returncode != 0 and "RepositoryNotFound" in anonymous.stderr


def test_private_push_to_an_existing_public_repo_is_refused_before_any_upload(trained_run, session_env):
    """create_repo(private=True, exist_ok=True) leaves an existing public repo public: --private must not
    upload the model there as if it were private."""
    with HubServer(tokens={TOKEN}, xet_regular=True) as server:
        env = hub_env(session_env, server.url, xet=True)
        public = run_cli(["push", str(trained_run), "tester/open"], env)
        assert public.returncode == 0, public.stderr
        commits = len(server.repos[("model", "tester/open")].commits)
        refused = run_cli(["push", str(trained_run), "tester/open", "--private"], env)
        assert refused.returncode != 0
        assert "already exists and is public" in refused.stderr and "nothing was uploaded" in refused.stderr
        assert not server.repos[("model", "tester/open")].private
        assert len(server.repos[("model", "tester/open")].commits) == commits   # nothing pushed


def test_token_never_leaks_into_pushed_files_or_outputs(trained_run, tmp_path, session_env):
    with HubServer(tokens={TOKEN}, xet_regular=True) as server:
        env = hub_env(session_env, server.url, xet=True)
        out = tmp_path / "trained-and-pushed"
        proc = run_cli(["sentiment", "--model", str(trained_run), "--output-dir", str(out), "--push-to-hub",
                        "tester/pushed-during-run", "--token", TOKEN, *QUICK], env)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert TOKEN not in proc.stdout + proc.stderr
        for name, data in server.files("tester/pushed-during-run").items():
            assert TOKEN.encode() not in data, name
        assert not any(TOKEN.encode() in body for body in server.received)
        for path in out.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path
        assert "token" not in yaml.safe_load((out / "run_config.yaml").read_text())


@pytest.mark.parametrize("token, expected", [(None, "refused"), ("hf_wrong_token_123", "refused")])
def test_missing_or_rejected_token_is_a_clear_error(token, expected, trained_run, session_env):
    with HubServer(tokens={TOKEN}) as server:
        env = hub_env(session_env, server.url, xet=True, token=None)
        env["HF_HOME"] = str(Path(env["HF_HOME"]) / "no-login")   # no stored `hf auth login` token
        args = ["push", str(trained_run), "tester/denied"] + (["--token", token] if token else [])
        proc = run_cli(args, env)
        assert proc.returncode != 0
        assert expected in proc.stderr and "HTTP 401" in proc.stderr
        assert "Traceback" not in proc.stderr
        if token:
            assert token not in proc.stderr


def test_pull_pins_the_revision_and_skips_unwanted_weights(tmp_path, session_env):
    with HubServer(tokens={TOKEN}) as server:
        env = hub_env(session_env, server.url, xet=True)
        only_bin = client(
            "from huggingface_hub import HfApi, CommitOperationAdd\n"
            "api = HfApi()\n"
            "api.create_repo('tester/old')\n"
            "api.create_commit('tester/old', [CommitOperationAdd(k, v) for k, v in\n"
            "    {'config.json': b'{}', 'pytorch_model.bin': b'B', 'tf_model.h5': b'T'}.items()], commit_message='w')\n",
            env)
        assert only_bin.returncode == 0, only_bin.stderr
        pulled = run_cli(["pull", "tester/old"], env)
        assert pulled.returncode == 0, pulled.stderr
        folder = Path(pulled.stdout.strip().splitlines()[-1])
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "pytorch_model.bin"]   # .bin as a fallback
        setup = client(
            "from huggingface_hub import HfApi\n"
            "api = HfApi()\n"
            "api.create_repo('tester/base')\n"
            "ops = {'config.json': b'{}', 'model.safetensors': b'S', 'pytorch_model.bin': b'B', 'tf_model.h5': b'T',\n"
            "       'flax_model.msgpack': b'F', 'onnx/model.onnx': b'O', 'tokenizer.json': b'{}'}\n"
            "from huggingface_hub import CommitOperationAdd\n"
            "c = api.create_commit('tester/base', [CommitOperationAdd(k, v) for k, v in ops.items()], commit_message='w')\n"
            "print(c.oid)\n", env)
        assert setup.returncode == 0, setup.stderr
        sha = setup.stdout.strip().splitlines()[-1]
        proc = run_cli(["pull", "tester/base", "--revision", "main"], env)
        assert proc.returncode == 0, proc.stderr
        assert sha in proc.stdout
        folder = Path(proc.stdout.strip().splitlines()[-1])
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]


def test_a_read_only_token_gets_a_clear_403(trained_run, session_env):
    with HubServer(tokens={TOKEN}, read_tokens={"hf_readOnlyToken0123456789abcdef"}) as server:
        env = hub_env(session_env, server.url, xet=True, token="hf_readOnlyToken0123456789abcdef")
        proc = run_cli(["push", str(trained_run), "tester/readonly"], env)
    assert proc.returncode == 1 and "HTTP 403" in proc.stderr and "lacks access" in proc.stderr


def test_only_a_finished_run_is_pushed(trained_run, tmp_path, session_env):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(trained_run, unfinished)
    (unfinished / "run_info.json").unlink()
    with HubServer(tokens={TOKEN}) as server:
        proc = run_cli(["push", str(unfinished), "tester/unfinished"], hub_env(session_env, server.url, xet=True))
        assert proc.returncode == 2 and "not a finished hf-finetune run" in proc.stderr
        assert server.requests == []


@pytest.mark.slow
def test_the_training_command_pushes_privately_to_a_branch_or_as_a_pr(small_model, tmp_path, session_env):
    with HubServer(tokens={TOKEN}) as server:
        env = hub_env(session_env, server.url, xet=True)
        branch = run_cli(["sentiment", "--model", str(small_model), "--output-dir", str(tmp_path / "a"), *QUICK,
                          "--push-to-hub", "tester/flags", "--hub-private-repo", "--hub-revision", "dev"], env)
        assert branch.returncode == 0, branch.stderr
        assert server.repos[("model", "tester/flags")].private
        assert "model.safetensors" in server.files("tester/flags", revision="dev")
        assert "model.safetensors" not in server.files("tester/flags")
        pr = run_cli(["sentiment", "--model", str(small_model), "--output-dir", str(tmp_path / "b"), *QUICK,
                      "--seed", "7", "--push-to-hub", "tester/flags", "--hub-create-pr"], env)
        assert pr.returncode == 0, pr.stderr
        assert "discussions/1" in pr.stdout
        assert "model.safetensors" in server.files("tester/flags", revision="refs/pr/1")


def test_a_gated_repo_says_so(session_env):
    """The gated message, not "no such repo": huggingface_hub's GatedRepoError subclasses its not-found error."""
    with HubServer(tokens={TOKEN}) as server:
        env = hub_env(session_env, server.url, xet=True)
        made = client("from huggingface_hub import HfApi, CommitOperationAdd\n"
                      "api = HfApi()\napi.create_repo('tester/gated')\n"
                      "api.create_commit('tester/gated', [CommitOperationAdd('config.json', b'{}')], "
                      "commit_message='w')\n", env)
        assert made.returncode == 0, made.stderr
        server.repos[("model", "tester/gated")].gated = True
        proc = run_cli(["pull", "tester/gated"], env)
    assert proc.returncode != 0 and "'tester/gated' is gated" in proc.stderr, proc.stderr
    assert "Unexpected error" not in proc.stderr
