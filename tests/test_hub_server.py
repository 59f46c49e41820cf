"""The test Hub server (tests/hub_server.py) against the real huggingface_hub client.

The client reads HF_ENDPOINT, HF_HUB_DISABLE_XET and HF_HUB_OFFLINE at import time, so each upload
configuration runs in a fresh subprocess: `HF_HUB_DISABLE_XET=1` (big and binary files go through the LFS
batch API and a PUT) and Xet left on (the server answers "regular" for every file, since it doesn't speak Xet).
Small read-side and error checks run in-process with `HfApi(endpoint=...)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub_server import HubServer

TOKEN = "hf_serverTestToken_3b9d0c2e"
REPO = "tester/round-trip"
README = "---\nlicense: apache-2.0\ntags:\n- test\n---\n# Round trip\n\nA card with YAML front matter.\n"
CONFIGS = pytest.mark.parametrize("xet", [False, True], ids=["lfs", "xet-regular"])


def client_env(url: str, home: Path, *, xet: bool, token: str | None = TOKEN) -> dict[str, str]:
    """Environment for a client subprocess: our endpoint, a private HF_HOME, no telemetry or update check."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_XET", "HF_HUB_CACHE")}
    env.update(HF_ENDPOINT=url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_UPDATE_CHECK="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    if token:
        env["HF_TOKEN"] = token
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    return env


def run_client(code: str, env: dict[str, str]) -> dict:
    """Run a snippet of the real client; it prints one JSON line as its result."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_folder(root: Path) -> dict[str, bytes]:
    files = {"notes.txt": b"plain text, small\n", "README.md": README.encode(),
             "weights.bin": os.urandom(10 * 1024 * 1024 + 12345), "sub/dir/config.json": b'{"a": 1}\n'}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


@pytest.fixture
def inprocess(monkeypatch, tmp_path):
    """Make the already-imported client usable in this process: online, no telemetry, a private HF_HOME."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    return tmp_path


@CONFIGS
def test_push_pull_round_trip(xet, tmp_path):
    folder = tmp_path / "folder"
    files = make_folder(folder)
    with HubServer(tokens={TOKEN}, xet_regular=xet) as server:
        result = run_client(f"""
            import json
            from huggingface_hub import HfApi, snapshot_download
            api = HfApi()
            url = api.create_repo({REPO!r})
            again = api.create_repo({REPO!r}, exist_ok=True)
            first = api.upload_folder(folder_path={str(folder)!r}, repo_id={REPO!r}, commit_message="add files")
            unchanged = api.upload_folder(folder_path={str(folder)!r}, repo_id={REPO!r})
            path = snapshot_download({REPO!r}, local_dir={str(tmp_path / "pulled")!r})
            info = api.model_info({REPO!r}, files_metadata=True)
            print(json.dumps({{"url": url, "again": again, "first": first.oid, "unchanged": unchanged.oid,
                              "sha": info.sha, "path": path, "files": sorted(api.list_repo_files({REPO!r})),
                              "siblings": {{s.rfilename: s.size for s in info.siblings}},
                              "lfs": [s.rfilename for s in info.siblings if s.lfs]}}))
            """, client_env(server.url, tmp_path / "home", xet=xet))

        assert result["url"] == result["again"] == f"{server.url}/{REPO}"
        # an identical re-upload is skipped by the client: the preupload oids matched
        assert result["first"] == result["unchanged"] == result["sha"]
        expected = sorted([".gitattributes", *files])
        assert result["files"] == expected and sorted(result["siblings"]) == expected
        assert result["siblings"]["weights.bin"] == len(files["weights.bin"])
        pulled = Path(result["path"])
        for name, data in files.items():
            assert (pulled / name).read_bytes() == data, name
            assert server.file_bytes(REPO, name) == data, name
        assert server.uploaded_contains(b"A card with YAML front matter.")
        assert not server.errors

        calls = set(server.requests)
        if xet:   # everything went inline in the commit; nothing to LFS or Xet
            assert result["lfs"] == [] and not server.lfs_objects
            assert not any(method == "PUT" or "lfs" in path for method, path in calls)
        else:
            assert result["lfs"] == ["weights.bin"] and server.is_lfs(REPO, "weights.bin")
            assert ("POST", f"/{REPO}.git/info/lfs/objects/batch") in calls
            assert ("POST", f"/{REPO}.git/info/lfs/objects/verify") in calls
            assert any(method == "PUT" and path.startswith("/lfs-upload/") for method, path in calls)
            assert ("POST", "/api/validate-yaml") in calls   # create_commit checks README.md front matter


@CONFIGS
def test_pull_request_at_refs_pr(xet, tmp_path):
    with HubServer(tokens={TOKEN}, xet_regular=xet) as server:
        result = run_client(f"""
            import json
            from huggingface_hub import HfApi, hf_hub_download, snapshot_download
            api = HfApi()
            api.create_repo("tester/pr")
            api.upload_file(path_or_fileobj=b"v1\\n", path_in_repo="notes.txt", repo_id="tester/pr")
            open({str(tmp_path / "notes.txt")!r}, "wb").write(b"v2\\n")
            pr = api.upload_folder(folder_path={str(tmp_path)!r}, repo_id="tester/pr", create_pr=True,
                                   allow_patterns=["notes.txt"], commit_message="update notes")
            at_pr = snapshot_download("tester/pr", revision="refs/pr/1", cache_dir={str(tmp_path / "cache")!r})
            on_main = hf_hub_download("tester/pr", "notes.txt", cache_dir={str(tmp_path / "cache")!r})
            refs = api.list_repo_refs("tester/pr", include_pull_requests=True)
            print(json.dumps({{"pr_url": pr.pr_url, "pr_oid": pr.oid, "at_pr": open(at_pr + "/notes.txt").read(),
                              "main": open(on_main).read(), "prs": [r.ref for r in refs.pull_requests]}}))
            """, client_env(server.url, tmp_path / "home", xet=xet))
        assert result["pr_url"] == f"{server.url}/tester/pr/discussions/1"
        assert result["at_pr"] == "v2\n" and result["main"] == "v1\n"
        assert result["prs"] == ["refs/pr/1"]
        assert server.repo("tester/pr").refs["refs/pr/1"] == result["pr_oid"]
        assert server.file_bytes("tester/pr", "notes.txt", revision="refs/pr/1") == b"v2\n"
        assert server.file_bytes("tester/pr", "notes.txt") == b"v1\n"
        assert not server.errors


def test_branch_commit_and_range_download(inprocess):
    from huggingface_hub import HfApi, hf_hub_download

    with HubServer(tokens={TOKEN}) as server:
        api = HfApi(endpoint=server.url, token=TOKEN)
        api.create_repo("tester/branchy", repo_type="dataset")
        api.create_branch("tester/branchy", branch="v1", repo_type="dataset")
        api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="data/a.txt", repo_id="tester/branchy",
                        repo_type="dataset", revision="v1")
        assert api.list_repo_files("tester/branchy", repo_type="dataset", revision="v1") == [
            ".gitattributes", "data/a.txt"]
        assert api.list_repo_files("tester/branchy", repo_type="dataset") == [".gitattributes"]
        path = hf_hub_download("tester/branchy", "data/a.txt", repo_type="dataset", revision="v1",
                               endpoint=server.url, token=TOKEN, cache_dir=inprocess / "cache")
        assert Path(path).read_bytes() == b"0123456789"
        import httpx2

        part = httpx2.get(f"{server.url}/datasets/tester/branchy/resolve/v1/data/a.txt",
                          headers={"Range": "bytes=2-4", "Authorization": f"Bearer {TOKEN}"})
        assert part.status_code == 206 and part.content == b"234"
        assert part.headers["Content-Range"] == "bytes 2-4/10"
        # a streamed (chunked) storage PUT is read whole; bytes that don't match the oid are refused
        oid = hashlib.sha256(b"abc").hexdigest()
        assert httpx2.put(f"{server.url}/lfs-upload/{oid}", content=iter([b"a", b"bc"])).status_code == 200
        assert server.lfs_objects[oid] == b"abc"
        assert httpx2.put(f"{server.url}/lfs-upload/{oid}", content=b"abd").status_code == 400
        assert [i.path for i in api.get_paths_info("tester/branchy", ["data/a.txt", "data"], repo_type="dataset",
                                                   revision="v1")] == ["data", "data/a.txt"]
        api.delete_repo("tester/branchy", repo_type="dataset")
        assert ("dataset", "tester/branchy") not in server.repos


def test_wrong_or_read_only_token(inprocess):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    with HubServer(tokens={TOKEN}, read_tokens={"hf_readonly"}) as server:
        with pytest.raises(HfHubHTTPError) as wrong:
            HfApi(endpoint=server.url, token="hf_wrong").create_repo("tester/denied")
        assert wrong.value.response.status_code == 401
        assert not isinstance(wrong.value, RepositoryNotFoundError)
        with pytest.raises(HfHubHTTPError) as read_only:
            HfApi(endpoint=server.url, token="hf_readonly").create_repo("tester/denied")
        assert read_only.value.response.status_code == 403
        assert HfApi(endpoint=server.url, token=TOKEN).whoami()["name"] == "tester"
        assert not server.repos
        assert not server.uploaded_contains(b"hf_wrong")   # tokens travel in headers, never in bodies


def test_missing_repo_revision_file_and_private_repo(inprocess):
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with HubServer(tokens={TOKEN}) as server:
        api = HfApi(endpoint=server.url, token=TOKEN)
        cache = inprocess / "cache"
        with pytest.raises(RepositoryNotFoundError):
            snapshot_download("tester/missing", endpoint=server.url, token=TOKEN, cache_dir=cache)
        api.create_repo("tester/secret", private=True)
        api.upload_file(path_or_fileobj=b"hidden", path_in_repo="x.txt", repo_id="tester/secret")
        assert api.model_info("tester/secret").private is True
        with pytest.raises(RevisionNotFoundError):
            hf_hub_download("tester/secret", "x.txt", revision="nope", endpoint=server.url, token=TOKEN,
                            cache_dir=cache)
        with pytest.raises(EntryNotFoundError):
            hf_hub_download("tester/secret", "y.txt", endpoint=server.url, token=TOKEN, cache_dir=cache)
        with pytest.raises(RepositoryNotFoundError):   # anonymous callers don't see private repos
            HfApi(endpoint=server.url, token=False).model_info("tester/secret")
        with pytest.raises(RepositoryNotFoundError):
            snapshot_download("tester/secret", endpoint=server.url, token=False, cache_dir=inprocess / "anon")
        path = snapshot_download("tester/secret", endpoint=server.url, token=TOKEN, cache_dir=cache)
        assert (Path(path) / "x.txt").read_bytes() == b"hidden"
        assert ("HEAD", "/tester/secret/resolve/nope/x.txt") in server.requests
