"""A small Hub-protocol server for tests: the real `huggingface_hub` client pushes to and pulls from it.

No installable server does both push and pull offline (see shared/ASSETS.md), so this one speaks just
enough of the Hub's HTTP API for `create_repo`, `upload_folder` (regular files, and LFS batch + PUT),
commits to branches and pull requests, `repo_info`, `list_repo_tree`, `snapshot_download` and
`hf_hub_download`. State lives in memory; every request is recorded (method and path, never bodies)
and every uploaded byte is kept, so tests can look for leaked secrets.

Not a fake of our code: hf-finetune talks to it only through huggingface_hub, as it would to the Hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_THRESHOLD = 10 * 1024 * 1024           # files this big go through LFS, as on the Hub
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".png", ".h5", ".msgpack", ".onnx")   # the Hub's .gitattributes


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class StoredFile:
    data: bytes
    lfs: bool

    @property
    def oid(self) -> str:
        return git_blob_sha1(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Commit:
    sha: str
    files: dict[str, StoredFile]
    message: str
    parent: str | None


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)   # ref name -> commit sha
    commits: dict[str, Commit] = field(default_factory=dict)
    pull_requests: int = 0

    def resolve(self, revision: str) -> Commit | None:
        sha = self.branches.get(revision) or (revision if revision in self.commits else None)
        return self.commits.get(sha) if sha else None


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubServer:
    """Start with ``HubServer(tokens={"hf_x"}).start()`` (returns the base URL), stop with ``.stop()``.

    ``xet_regular=True`` answers every preupload with ``uploadMode: regular``: with `hf_xet` installed
    and Xet enabled, the client would otherwise send LFS-mode files to Xet storage, which this server
    doesn't speak. With ``xet_regular=False`` (clients run with ``HF_HUB_DISABLE_XET=1``) files of
    10 MB and more go through the LFS batch API and a PUT, as on the Hub.
    """

    def __init__(self, tokens: set[str] | None = None, xet_regular: bool = True, users: dict[str, str] | None = None):
        self.tokens = set(tokens or ())
        self.users = users or {t: "tester" for t in self.tokens}
        self.xet_regular = xet_regular
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.received: list[bytes] = []          # every request body (not headers), for secret scans
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> str:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "HubServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers for tests ------------------------------------------------------------------
    def file_bytes(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        repo = self.repos[(repo_type, repo_id)]
        commit = repo.resolve(revision)
        if commit is None or path not in commit.files:
            raise KeyError(f"{repo_id}@{revision}: {path}")
        return commit.files[path].data

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        commit = self.repos[(repo_type, repo_id)].resolve(revision)
        return {p: f.data for p, f in commit.files.items()} if commit else {}

    # -- logic --------------------------------------------------------------------------------
    def user_for(self, token: str | None) -> str | None:
        if not self.tokens:
            return "anonymous"
        return self.users.get(token) if token in self.tokens else None

    def new_commit(self, repo: Repo, branch: str, files: dict[str, StoredFile], message: str) -> Commit:
        parent = repo.branches.get(branch)
        seed = f"{repo.repo_id}{branch}{parent}{message}{time.time_ns()}{sorted(files)}".encode()
        commit = Commit(hashlib.sha1(seed).hexdigest(), files, message, parent)
        repo.commits[commit.sha] = commit
        repo.branches[branch] = commit.sha
        return commit


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet test output
        pass

    # -- plumbing ---------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        self.hub.received.append(data)
        return data

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _send(self, status: int, payload=None, headers: dict[str, str] | None = None, raw: bytes | None = None,
              head: bool = False) -> None:
        body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            if key != "Content-Length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)) if "Content-Length" not in (headers or {}) else headers["Content-Length"])
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, err: HubError, head: bool = False) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, {"error": err.message}, headers, head=head)

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        segments = [unquote(s) for s in split.path.strip("/").split("/")]
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        with self.hub.lock:
            self.hub.requests.append((method, split.path))
        body = self._body() if method in ("POST", "PUT") else b""
        try:
            with self.hub.lock:
                self._route(method, segments, query, body)
        except HubError as err:
            self._error(err, head=method == "HEAD")

    do_GET = lambda self: self._dispatch("GET")      # noqa: E731
    do_HEAD = lambda self: self._dispatch("HEAD")    # noqa: E731
    do_POST = lambda self: self._dispatch("POST")    # noqa: E731
    do_PUT = lambda self: self._dispatch("PUT")      # noqa: E731

    # -- routing ----------------------------------------------------------------------------
    def _route(self, method: str, seg: list[str], query: dict[str, str], body: bytes) -> None:
        hub = self.hub
        if seg[:2] == ["api", "whoami-v2"]:
            user = hub.user_for(self._token())
            if user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._send(200, {"type": "user", "name": user, "auth": {"accessToken": {"role": "write"}}})
        if seg[:2] == ["api", "validate-yaml"]:
            return self._send(200, {"errors": [], "warnings": []})
        if seg[:3] == ["api", "repos", "create"]:
            return self._create_repo(json.loads(body or b"{}"))
        if seg[:3] == ["api", "repos", "delete"]:
            payload = json.loads(body or b"{}")
            self._writable(payload.get("type") or "model", self._join(payload.get("organization"), payload["name"]))
            hub.repos.pop((payload.get("type") or "model", self._join(payload.get("organization"), payload["name"])))
            return self._send(200, {})
        if seg and seg[0] == "api" and len(seg) >= 4 and seg[1] in TYPES:
            return self._api_repo(method, TYPES[seg[1]], f"{seg[2]}/{seg[3]}", seg[4:], query, body)
        if seg and seg[0] == "lfs-upload" and method == "PUT":
            oid = seg[1]
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, "LFS object does not match its oid")
            hub.lfs_objects[oid] = body
            return self._send(200, {})
        repo_type = "model"
        if seg and seg[0] in ("datasets", "spaces"):
            repo_type, seg = TYPES[seg[0]], seg[1:]
        if len(seg) >= 5 and seg[1].endswith(".git") and seg[2:5] == ["info", "lfs", "objects"]:
            return self._lfs_batch(repo_type, f"{seg[0]}/{seg[1][:-4]}", json.loads(body))
        if len(seg) >= 5 and seg[2] == "resolve":
            return self._resolve(method, repo_type, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
        raise HubError(404, f"no route for {method} /{'/'.join(seg)}")

    @staticmethod
    def _join(organization: str | None, name: str) -> str:
        return f"{organization}/{name}" if organization else f"tester/{name}"

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        repo = self.hub.repos.get((repo_type, repo_id))
        user = self.hub.user_for(self._token())
        if repo is None or (repo.private and user is None):
            raise HubError(404 if user or not write else 401, f"Repository {repo_id} not found", "RepoNotFound")
        if write and user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return repo

    def _writable(self, repo_type: str, repo_id: str) -> Repo:
        return self._repo(repo_type, repo_id, write=True)

    def _commit_at(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Revision {revision} not found", "RevisionNotFound")
        return commit

    # -- endpoints --------------------------------------------------------------------------
    def _create_repo(self, payload: dict) -> None:
        if self.hub.user_for(self._token()) is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        repo_type = payload.get("type") or "model"
        repo_id = self._join(payload.get("organization"), payload["name"])
        url = f"{self.hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:
            return self._send(409, {"error": "You already created this repo", "url": url})
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = Repo(repo_id, repo_type, private)
        self.hub.new_commit(repo, "main", {".gitattributes": StoredFile(b"*.safetensors filter=lfs\n", False)},
                            "initial commit")
        self.hub.repos[(repo_type, repo_id)] = repo
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def _api_repo(self, method: str, repo_type: str, repo_id: str, rest: list[str], query: dict, body: bytes) -> None:
        action = rest[0] if rest else "revision"
        if action == "revision":
            repo = self._repo(repo_type, repo_id)
            commit = self._commit_at(repo, rest[1] if len(rest) > 1 else "main")
            return self._send(200, {
                "id": repo_id, "modelId": repo_id, "sha": commit.sha, "private": repo.private, "disabled": False,
                "gated": False, "downloads": 0, "likes": 0, "tags": [], "lastModified": "2026-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": p} for p in sorted(commit.files)]})
        if action == "tree":
            repo = self._repo(repo_type, repo_id)
            commit = self._commit_at(repo, rest[1])
            prefix = "/".join(rest[2:])
            return self._send(200, self._tree(commit, prefix, query.get("recursive") in ("1", "true", "True")))
        if action == "paths-info":
            repo = self._repo(repo_type, repo_id)
            commit = self._commit_at(repo, rest[1])
            wanted = parse_qs(body.decode()).get("paths", []) if body and not body.startswith(b"{") else \
                json.loads(body or b"{}").get("paths", [])
            entries = [e for e in self._tree(commit, "", True) if e["path"] in wanted]
            return self._send(200, entries)
        if action == "refs":
            repo = self._repo(repo_type, repo_id)
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s}
                        for n, s in repo.branches.items() if not n.startswith("refs/")]
            prs = [{"name": n, "ref": n, "targetCommit": s} for n, s in repo.branches.items() if n.startswith("refs/pr/")]
            return self._send(200, {"branches": branches, "tags": [], "converts": [], "pullRequests": prs})
        if action == "preupload":
            repo = self._writable(repo_type, repo_id)
            commit = repo.resolve(rest[1])
            files = []
            for item in json.loads(body)["files"]:
                lfs = not self.hub.xet_regular and (item["size"] >= LFS_THRESHOLD
                                                    or item["path"].endswith(LFS_SUFFIXES))
                existing = commit.files.get(item["path"]) if commit else None
                oid = (existing.sha256 if existing.lfs else existing.oid) if existing else None
                files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                              "shouldIgnore": False, "oid": oid})
            return self._send(200, {"files": files, "commitOid": commit.sha if commit else None})
        if action == "commit":
            return self._commit(self._writable(repo_type, repo_id), rest[1], query, body)
        if action == "discussions":
            return self._discussions(method, repo_type, repo_id, rest[1:], body)
        if action == "branch" and method == "POST":
            repo = self._writable(repo_type, repo_id)
            branch = "/".join(rest[1:])
            payload = json.loads(body or b"{}")
            if branch in repo.branches:
                raise HubError(409, f"Branch {branch} already exists")
            start = self._commit_at(repo, payload.get("startingPoint") or "main")
            repo.branches[branch] = start.sha
            return self._send(200, {})
        raise HubError(404, f"unknown action {action}")

    def _discussions(self, method: str, repo_type: str, repo_id: str, rest: list[str], body: bytes) -> None:
        """Pull requests only: `upload_folder(create_pr=True)` opens one, then commits to refs/pr/N."""
        if method == "POST" and not rest:
            repo = self._writable(repo_type, repo_id)
            payload = json.loads(body or b"{}")
            repo.pull_requests += 1
            num = repo.pull_requests
            repo.branches[f"refs/pr/{num}"] = repo.branches["main"]
            repo.titles = getattr(repo, "titles", {})
            repo.titles[num] = payload.get("title", "")
            return self._send(200, {"num": num})
        repo = self._repo(repo_type, repo_id)
        num = int(rest[0]) if rest and rest[0].isdigit() else 0
        if f"refs/pr/{num}" not in repo.branches:
            raise HubError(404, f"Discussion {num} not found")
        return self._send(200, {
            "num": num, "title": getattr(repo, "titles", {}).get(num, ""), "author": {"name": "tester"},
            "createdAt": "2026-01-01T00:00:00.000Z", "status": "draft", "isPullRequest": True,
            "repo": {"name": repo_id, "type": repo_type}, "events": [], "filesWithConflicts": [],
            "changes": {"base": "refs/heads/main"}, "diff": ""})

    def _tree(self, commit: Commit, prefix: str, recursive: bool) -> list[dict]:
        entries, folders = [], set()
        for path in sorted(commit.files):
            if prefix and not path.startswith(prefix.rstrip("/") + "/"):
                continue
            rel = path[len(prefix.rstrip("/")) + 1:] if prefix else path
            if "/" in rel and not recursive:
                folders.add((prefix.rstrip("/") + "/" if prefix else "") + rel.split("/")[0])
                continue
            if recursive:
                parts = path.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    folders.add("/".join(parts[:i]))
            stored = commit.files[path]
            entry = {"type": "file", "oid": stored.oid, "size": len(stored.data), "path": path}
            if stored.lfs:
                entry["lfs"] = {"oid": stored.sha256, "size": len(stored.data), "pointerSize": 134}
            entries.append(entry)
        return [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)] + entries

    def _lfs_batch(self, repo_type: str, repo_id: str, payload: dict) -> None:
        self._writable(repo_type, repo_id)
        objects = []
        for obj in payload.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})

    def _commit(self, repo: Repo, revision: str, query: dict, body: bytes) -> None:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        base = self._commit_at(repo, revision)
        parent = header.get("parentCommit")
        if parent and parent != base.sha:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(base.files)
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), False)
            elif key == "lfsFile":
                data = self.hub.lfs_objects.get(value["oid"])
                if data is None:
                    raise HubError(422, f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = StoredFile(data, True)
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(folder)}
        branch = revision
        pr_url = None
        if query.get("create_pr") in ("1", "true"):
            repo.pull_requests += 1
            branch = f"refs/pr/{repo.pull_requests}"
            repo.branches[branch] = base.sha
            pr_url = f"{self.hub.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}/discussions/{repo.pull_requests}"
        elif revision not in repo.branches:
            raise HubError(404, f"Branch {revision} not found", "RevisionNotFound")
        commit = self.hub.new_commit(repo, branch, files, header.get("summary", ""))
        url = f"{self.hub.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}/commit/{commit.sha}"
        self._send(200, {"commitOid": commit.sha, "commitUrl": url, "pullRequestUrl": pr_url})

    def _resolve(self, method: str, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        head = method == "HEAD"
        repo = self._repo(repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        stored = commit.files.get(path)
        if stored is None:
            raise HubError(404, f"Entry {path} not found", "EntryNotFound")
        data = stored.data
        etag = stored.sha256 if stored.lfs else stored.oid
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if stored.lfs:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match and not head:
            start = int(match.group(1) or 0)
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            part = data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(part) - 1}/{len(data)}"
            return self._send(206, raw=part, headers=headers)
        headers["Content-Length"] = str(len(data))
        self._send(200, raw=b"" if head else data, headers=headers, head=head)
