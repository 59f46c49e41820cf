"""What a Hugging Face Job is given: the files the run reads and nothing else (no secret, no repository, no
stray file), under a size limit, after the same data checks a local run makes, with the extras it needs.
Against the tests' Hub server (tests/hub_server.py); a submitted Job is canceled at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_reviews_csv
from hub_server import HubServer

TOKEN = "hf_jobsInputsTestToken_7d2c9e4a1b"
LEAKED = b"hf_leakedFromDotEnv_0123456789abcdefXYZ"   # a token a user keeps in .env beside the data
RUN = ["--max-train-samples", "64", "--max-eval-samples", "16", "--max-length", "32", "--eval-strategy", "steps",
       "--eval-steps", "4"]


@pytest.fixture(scope="module")
def server():
    with HubServer(tokens={TOKEN}) as hub:
        yield hub


@pytest.fixture
def hub_env(server, monkeypatch):
    """In-process CLI calls go to the tests' Hub server, with a token."""
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return server


def job_args(model: Path, data: Path, *extra: str) -> list[str]:
    return ["sentiment", "--model", str(model), "--dataset", str(data), "--text-column", "review",
            "--label-column", "stars", *RUN, "--push-to-hub", "tester/shipped", "--jobs-flavor", "cpu-basic", *extra]


def write_labelled_reviews(path: Path) -> Path:
    """The reviews table with labels 0 (1 star) and 1 (5 stars), named by a label_names.txt beside it."""
    write_reviews_csv(path)
    path.write_text(path.read_text().replace(",1\n", ",0\n").replace(",5\n", ",1\n"))
    (path.parent / "label_names.txt").write_text("negative\npositive\n")
    return path


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder as people have them: the data and its label names, and beside them a .env holding a
    token, a git repository, a system file, notes and a big file that is no data (sparse: no disk used)."""
    root = tmp_path / "project"
    root.mkdir()
    write_labelled_reviews(root / "reviews.csv")
    (root / ".env").write_bytes(b"HF_TOKEN=" + LEAKED + b"\n")
    (root / ".git" / "objects" / "ab").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n\tbare = false\n")
    (root / ".git" / "objects" / "ab" / "cdef0123").write_bytes(b"x" * 100)
    (root / ".DS_Store").write_bytes(b"\0" * 64)
    (root / "notes.md").write_text("remember to tune the learning rate\n")
    with (root / "backup.tar").open("wb") as big:
        big.truncate(12 * 10**9)
    return root


def shipped(spec: dict) -> set[str]:
    return {f["path"] for f in spec["files"]}


def model_files(model: Path) -> set[str]:
    return {f"/data/model/{model.name}/{p.name}" for p in model.iterdir()}


WHEEL = "/data/hf_finetune-0.1.0-py3-none-any.whl"


def test_dry_run_lists_only_what_the_run_reads(cli, tiny_model, project, monkeypatch):
    """A data folder, and a data file: the table and its label names, never .env, .git/, notes or a big file."""
    folder = cli(job_args(tiny_model, project, "--dry-run"))
    assert folder.returncode == 0, folder.stderr
    spec = json.loads(folder.stdout)
    assert shipped(spec) == {"/data/run_config.yaml", "/data/data/project/reviews.csv",
                             "/data/data/project/label_names.txt", *model_files(tiny_model), WHEEL}
    sizes = {f["path"]: f.get("bytes") for f in spec["files"]}   # with their sizes
    assert sizes["/data/data/project/reviews.csv"] == (project / "reviews.csv").stat().st_size
    assert LEAKED.decode() not in folder.stdout + folder.stderr
    monkeypatch.chdir(project)   # `--dataset .`: the same files, under the folder's own name
    here = cli(job_args(tiny_model, Path("."), "--dry-run"))
    assert here.returncode == 0, here.stderr
    assert shipped(json.loads(here.stdout)) == shipped(spec)
    single = cli(job_args(tiny_model, project / "reviews.csv", "--dry-run"))
    assert single.returncode == 0, single.stderr
    assert shipped(json.loads(single.stdout)) == {"/data/run_config.yaml", "/data/data/reviews.csv",
                                                  "/data/data/label_names.txt", *model_files(tiny_model), WHEEL}


def test_a_submitted_job_uploads_no_secret_no_git_and_no_stray_file(hub_env, cli, tiny_model, project):
    server = hub_env
    (tiny_model / ".env").write_bytes(b"HF_TOKEN=" + LEAKED + b"\n")   # a secret beside the model too
    try:
        proc = cli(job_args(tiny_model, project, "--jobs-detach"))
    finally:
        (tiny_model / ".env").unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = list(server.jobs.jobs.values())[-1]
    server.jobs.cancel(job.id)
    folder = job.spec["volumes"][0]["path"]
    uploaded = {name.removeprefix(folder + "/") for name in server.files("tester/hf-finetune-jobs",
                                                                         repo_type="dataset")
                if name.startswith(folder + "/")}
    assert uploaded == {"run_config.yaml", "data/project/reviews.csv", "data/project/label_names.txt",
                        *(f"model/{tiny_model.name}/{p.name}" for p in tiny_model.iterdir()), WHEEL[6:]}
    assert not server.uploaded_contains(LEAKED)
    # the list was shown, with sizes, before the upload
    assert "data/project/reviews.csv  (" in proc.stdout and ".env" not in proc.stdout


def test_inputs_over_the_upload_limit_are_refused_naming_the_biggest(hub_env, cli, tiny_model, project):
    server = hub_env
    sent = len(server.requests)
    proc = cli(job_args(tiny_model, project, "--jobs-max-upload", "50kB"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "over the upload limit of 50.0 kB" in proc.stderr and f"model/{tiny_model.name}/" in proc.stderr
    assert "--jobs-max-upload" in proc.stderr and "Unexpected" not in proc.stderr
    assert len(server.requests) == sent


def test_an_image_folder_ships_its_images_and_an_image_table_the_images_it_names(cli, tiny_vit, image_folder):
    def data_files(dataset: Path) -> set[str]:
        proc = cli(["image-classification", "--model", tiny_vit, "--dataset", dataset, "--push-to-hub",
                    "tester/images", "--jobs-flavor", "cpu-basic", "--dry-run"])
        assert proc.returncode == 0, proc.stderr
        return {path for path in shipped(json.loads(proc.stdout)) if path.startswith("/data/data/")}

    (image_folder / ".DS_Store").write_bytes(b"\0" * 64)
    (image_folder / "README.md").write_text("red and blue photos\n")
    assert data_files(image_folder) == {f"/data/data/photos/{p.relative_to(image_folder)}"
                                        for p in image_folder.rglob("*.png")}
    rows = ["file,species"] + [f"{p.relative_to(image_folder)},{p.parent.name}"
                               for p in sorted(image_folder.rglob("*_*.png"))]
    (image_folder / "labels.csv").write_text("\n".join(rows))
    (image_folder / "red" / "unlisted.png").write_bytes((image_folder / "red" / "red_0.png").read_bytes())
    assert data_files(image_folder / "labels.csv") == {"/data/data/labels.csv", *(f"/data/data/{p.relative_to(image_folder)}"
                                                for p in image_folder.rglob("*_*.png"))}


def test_data_mistakes_fail_here_as_in_a_local_run_before_anything_is_sent(hub_env, cli, tiny_model, project,
                                                                          tmp_path):
    server = hub_env
    (project / "label_names.txt").write_text("negative\n")   # two labels, one name
    local = cli([*job_args(tiny_model, project)[:-4], "--output-dir", tmp_path / "out"])
    assert local.returncode == 1 and "only 1 label names were given" in local.stderr, local.stderr
    sent = len(server.requests)
    for extra in (["--dry-run"], []):
        proc = cli(job_args(tiny_model, project, *extra))
        assert proc.returncode == local.returncode and proc.stderr == local.stderr, proc.stdout + proc.stderr
    assert len(server.requests) == sent


def test_the_job_installs_the_extras_the_run_uses_and_no_others(cli, tiny_model, project):
    def install_line(*args) -> str:
        proc = cli([*args, "--push-to-hub", "tester/x", "--jobs-flavor", "cpu-basic", "--dry-run"])
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["command"][2].split(";")[1]

    local = install_line(*job_args(tiny_model, project)[:-4])
    assert "[" not in local   # a local model and data: no embedded assets to install
    assert "[hpsearch]" in install_line(*job_args(tiny_model, project)[:-4], "--hp-search", "2")
    assert "[embedded]" in install_line("sentiment", "--dataset", project / "reviews.csv", "--text-column", "review",
                                        "--label-column", "stars")   # the embedded default model


def test_a_bad_jobs_namespace_is_refused_before_the_wheel_is_built(hub_env, cli, tiny_model, project):
    server = hub_env
    sent = len(server.requests)
    proc = cli(job_args(tiny_model, project / "reviews.csv", "--jobs-namespace", "no such/org"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--jobs-namespace 'no such/org' is not a Hub user or organization name" in proc.stderr
    assert "Unexpected" not in proc.stderr and "building a wheel" not in proc.stdout
    assert len(server.requests) == sent


@pytest.mark.slow
def test_a_job_names_the_labels_as_the_local_run_does(hub_env, cli, tiny_model, project):
    """label_names.txt beside a single data file reaches the Job: its model says negative / positive, not 0 / 1."""
    server = hub_env
    proc = cli([*job_args(tiny_model, project / "reviews.csv", "--max-steps", "4", "--max-test-samples", "16",
                          "--per-device-train-batch-size", "8", "--early-stopping-patience", "0")])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    config = json.loads(server.file_bytes("tester/shipped", "config.json"))
    assert config["id2label"] == {"0": "negative", "1": "positive"}


def test_the_files_shipped_are_the_same_data_as_the_folder_here(tmp_path):
    """The data's identity (the fingerprint that resuming and the tokenization cache compare) is that of the files
    read: a Job's copy of them is the same data as the folder here, whatever else lies beside it there."""
    from hf_finetune.data.sources import content_hash, files_read

    here = tmp_path / "reviews"
    here.mkdir()
    write_labelled_reviews(here / "train.csv")
    (here / "notes.md").write_text("try a smaller learning rate\n")
    (here / ".env").write_bytes(b"HF_TOKEN=" + LEAKED + b"\n")
    copy = tmp_path / "job" / "reviews"
    copy.mkdir(parents=True)
    for file in files_read(here):
        (copy / file.name).write_bytes(file.read_bytes())
    assert sorted(p.name for p in copy.iterdir()) == ["label_names.txt", "train.csv"]
    assert content_hash(copy) == content_hash(here)
