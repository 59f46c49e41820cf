"""A small Hub-protocol server for tests: the real `huggingface_hub` client pushes to and pulls from it.

Why it exists: the Hub can't be reached from the machines that test this project, no installable server does
both push and pull, and HTTP mocking can't intercept the client (httpx2, Rust `hf_xet`). So this speaks just
enough of the Hub's HTTP API (as `huggingface_hub` 2.4 uses it) for `create_repo`, `create_commit` /
`upload_folder` (regular files, LFS batch + PUT, pull requests, branches), `repo_info`, `list_repo_tree`,
`list_repo_refs`, `get_paths_info`, `hf_hub_download` and `snapshot_download`.

Stdlib only. State lives in memory: repos with refs (`main`, other branches, `refs/pr/N`) pointing at
commits, each commit holding a full snapshot of its files. Every request is recorded (method and path, never
headers or bodies, so no token lands in `requests`), and every uploaded byte is kept so tests can grep for
leaked secrets (`uploaded_contains`).

Xet: with `hf_xet` installed and `HF_HUB_DISABLE_XET` unset, the client sends every "lfs"-mode file to Xet
storage, which this server doesn't speak. `xet_regular=True` therefore answers "regular" for every file at
preupload (content travels base64 in the commit); `xet_regular=False` (clients run with HF_HUB_DISABLE_XET=1)
answers "lfs" for big or binary files, so the LFS batch + PUT path is exercised.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from hub_jobs import JobRunner   # pytest puts tests/ on sys.path (the folder has no __init__.py)

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space", "kernels": "kernel"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/", "kernel": "kernels/"}
LFS_MIN_SIZE = 10 * 1024 * 1024    # the Hub stores files from 10 MB up in LFS
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".png", ".jpg",
                ".zip", ".gz", ".parquet", ".arrow", ".npy")   # a few lines of the Hub's default .gitattributes
GITATTRIBUTES = b"".join(b"*%s filter=lfs diff=lfs merge=lfs -text\n" % s.encode() for s in LFS_SUFFIXES)
INVALID_TOKEN = "Invalid credentials in Authorization header"   # the client keys its 401 handling on this text
DATE = "2026-01-01T00:00:00.000Z"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: what the Hub reports as `oid` for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """File content plus how git stores it: inline (regular) or as an LFS pointer."""

    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
            self.sha256.encode(), len(self.data))

    @property
    def oid(self) -> str:
        """git id of what is in the git tree: the content, or for LFS files the pointer."""
        return git_blob_sha1(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        """What `/resolve` sends as ETag: git sha1 for regular files, sha256 for LFS files (as the Hub)."""
        return self.sha256 if self.lfs else self.oid


@dataclass
class Commit:
    sha: str
    parent: str | None
    message: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    refs: dict[str, str] = field(default_factory=dict)          # "main", "v1", "refs/pr/1" -> commit sha
    gated: bool = False     # set by a test: reads answer 403 GatedRepo, as for a user who has not accepted the terms
    commits: dict[str, Commit] = field(default_factory=dict)
    discussions: dict[int, dict] = field(default_factory=dict)  # num -> {"title", "is_pr"}

    @property
    def url_path(self) -> str:
        return URL_PREFIX[self.repo_type] + self.repo_id

    def resolve(self, revision: str) -> Commit | None:
        """A branch, `refs/heads/<branch>`, `refs/pr/N`, or a full commit sha."""
        name = revision[len("refs/heads/"):] if revision.startswith("refs/heads/") else revision
        sha = self.refs.get(name) or (name if name in self.commits else None)
        return self.commits.get(sha) if sha else None


class HubError(Exception):
    """An error answer; `code` goes to `X-Error-Code`, which the client maps to its exception classes."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Any = None     # an iterator of bytes, sent as it comes (server-sent events); then the connection closes


def json_response(payload, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


_REPO = r"(?P<type>models|datasets|spaces|kernels)/(?P<repo>[^/]+/[^/]+)"
_URL_REPO = r"/(?:(?P<type>datasets|spaces|kernels)/)?(?P<repo>[^/]+/[^/]+)"   # a model has no prefix
_REV = r"(?P<rev>refs/(?:pr|heads|tags|convert)/[^/]+|[^/]+)"    # quoted (refs%2Fpr%2F1) or not
# (method, path pattern on the still-quoted path, handler method); HEAD uses the GET routes
ROUTES: list[tuple[str, re.Pattern, str]] = [(m, re.compile(p), h) for m, p, h in [
    ("GET", r"/api/whoami-v2", "whoami"),
    ("GET", r"/api/agent-harnesses", "agent_harnesses"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("POST", r"/api/repos/create", "create_repo"),
    ("DELETE", r"/api/repos/delete", "delete_repo"),
    ("GET", rf"/api/{_REPO}(?:/revision/{_REV})?", "repo_info"),
    ("GET", rf"/api/{_REPO}/tree/{_REV}(?:/(?P<path>.*))?", "tree"),
    ("POST", rf"/api/{_REPO}/paths-info/{_REV}", "paths_info"),
    ("GET", rf"/api/{_REPO}/refs", "refs"),
    ("POST", rf"/api/{_REPO}/preupload/{_REV}", "preupload"),
    ("POST", rf"/api/{_REPO}/commit/{_REV}", "commit"),
    ("POST", rf"/api/{_REPO}/branch/{_REV}", "create_branch"),
    ("POST", rf"/api/{_REPO}/discussions", "open_discussion"),
    ("GET", rf"/api/{_REPO}/discussions/(?P<num>\d+)", "discussion"),
    ("POST", rf"{_URL_REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
    ("POST", rf"{_URL_REPO}\.git/info/lfs/objects/verify", "lfs_verify"),
    ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", "lfs_put"),
    ("GET", rf"{_URL_REPO}/resolve/{_REV}/(?P<path>.+)", "resolve"),
    ("DELETE", rf"/api/{_REPO}/branch/{_REV}", "delete_branch"),
    ("POST", r"/api/jobs/(?P<ns>[^/]+)", "create_job"),
    ("GET", r"/api/jobs/(?P<ns>[^/]+)/(?P<job>[0-9a-f]+)", "inspect_job"),
    ("GET", r"/api/jobs/(?P<ns>[^/]+)/(?P<job>[0-9a-f]+)/logs", "job_logs"),
    ("POST", r"/api/jobs/(?P<ns>[^/]+)/(?P<job>[0-9a-f]+)/cancel", "cancel_job"),
]]


class HubServer:
    """`HubServer(tokens={"hf_x"}).start()` returns the base URL; `.stop()` ends it; also a context manager.

    tokens: valid write tokens. None or empty: no auth at all (every caller is `username`). When set, writes
        and reads of private repos need `Authorization: Bearer <valid token>`; an unknown token gets 401 on
        any request, as on the Hub.
    read_tokens: valid tokens without write rights: writes answer 403.
    xet_regular: answer uploadMode "regular" for every file (see the module docstring).
    username: the namespace of repos created without an organization, and the whoami name.
    """

    def __init__(self, tokens=None, xet_regular: bool = True, *, read_tokens=(), username: str = "tester"):
        self.tokens, self.read_tokens = set(tokens or ()), set(read_tokens)
        self.xet_regular = xet_regular
        self.username = username
        self.repos: dict[tuple[str, str], Repo] = {}     # (repo_type, repo_id) -> Repo
        self.lfs_objects: dict[str, bytes] = {}          # sha256 -> bytes, from LFS PUTs
        self.requests: list[tuple[str, str]] = []        # (method, unquoted path without query)
        self.received: list[bytes] = []                  # raw request bodies
        self.uploads: list[bytes] = []                   # decoded file contents (base64 commit lines, LFS PUTs)
        self.errors: list[str] = []                      # tracebacks of requests the server failed to handle
        self.url = ""
        self.lock = threading.RLock()
        self._counter = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self.jobs = JobRunner(self)     # Jobs really run, as subprocesses (see hub_jobs.py)
        self.on_commit = None           # tests may watch commits: on_commit(repo, ref, commit), under the lock

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True).start()
        return self.url

    def stop(self) -> None:
        self.jobs.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "HubServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers for tests -------------------------------------------------------------------------
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """All files of a repo at a revision (branch, refs/pr/N or commit sha), path -> bytes."""
        commit = self.repo(repo_id, repo_type).resolve(revision)
        if commit is None:
            raise KeyError(f"{repo_id}: no revision {revision}")
        return {path: blob.data for path, blob in commit.files.items()}

    def file_bytes(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        return self.files(repo_id, revision, repo_type)[path]

    def is_lfs(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bool:
        return self.repo(repo_id, repo_type).resolve(revision).files[path].lfs

    def uploaded_contains(self, needle: bytes) -> bool:
        """Whether any bytes the client sent (raw bodies, or decoded file contents) contain `needle`."""
        return any(needle in chunk for chunk in (*self.received, *self.uploads))

    # -- state changes (called under the lock) -----------------------------------------------------
    def _commit(self, repo: Repo, ref: str, files: dict[str, Blob], message: str, parent: str | None) -> Commit:
        seed = json.dumps([repo.repo_id, parent, message, sorted((p, b.oid) for p, b in files.items()),
                           next(self._counter)]).encode()
        commit = Commit(hashlib.sha1(seed).hexdigest(), parent, message, files)
        repo.commits[commit.sha] = commit
        repo.refs[ref] = commit.sha
        return commit

    def _open_pr(self, repo: Repo, title: str, base: Commit) -> int:
        num = len(repo.discussions) + 1
        repo.discussions[num] = {"title": title, "is_pr": True}
        repo.refs[f"refs/pr/{num}"] = base.sha
        return num


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"   # keep-alive, as the client expects; so every answer has a Content-Length
    timeout = 60                    # idle keep-alive connections don't hold a thread forever

    def log_message(self, *args) -> None:
        pass

    def do_GET(self): self._dispatch("GET")                  # noqa: E704
    def do_HEAD(self): self._dispatch("HEAD")                # noqa: E704
    def do_POST(self): self._dispatch("POST")                # noqa: E704
    def do_PUT(self): self._dispatch("PUT")                  # noqa: E704
    def do_DELETE(self): self._dispatch("DELETE")            # noqa: E704

    # -- plumbing ----------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        """The whole request body, Content-Length or chunked (a streamed PUT may come either way)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():   # trailers, up to the blank line
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        body = self._read_body()   # always read it, even for errors, or the keep-alive stream desyncs
        with hub.lock:
            hub.requests.append((method, unquote(split.path)))
            if body:
                hub.received.append(body)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            response = self._route("GET" if method == "HEAD" else method, split.path, query, body)
        except HubError as err:
            headers = {"X-Error-Message": err.message, **({"X-Error-Code": err.code} if err.code else {})}
            response = json_response({"error": err.message}, err.status, headers)
        except (ValueError, KeyError, TypeError) as err:   # a malformed request: say so, remember it
            hub.errors.append(traceback.format_exc())
            response = json_response({"error": f"bad request: {err!r}"}, 400)
        except Exception:
            hub.errors.append(traceback.format_exc())
            response = json_response({"error": "internal error"}, 500)
        if response.stream is not None:
            self._send_stream(response)
            return
        self.send_response(response.status)
        headers = {"Content-Length": str(len(response.body)), **response.headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def _send_stream(self, response: Response) -> None:
        self.send_response(response.status)
        for key, value in {"Content-Type": "text/event-stream", "Connection": "close", **response.headers}.items():
            self.send_header(key, value)
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in response.stream:
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client stopped reading (Ctrl-C, detach)
        finally:
            getattr(response.stream, "close", lambda: None)()   # end the generator now, not at garbage collection

    def _route(self, method: str, path: str, query: dict, body: bytes) -> Response:
        for route_method, pattern, name in ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                if "type" in args:
                    args["type"] = TYPES[args["type"]]   # "datasets" -> "dataset"; absent means a model
                with self.hub.lock:
                    return getattr(self, name)(query=query, body=body, **args)
        raise HubError(404, f"Sorry, no route for {method} {path}")

    # -- auth --------------------------------------------------------------------------------------
    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if token and self.hub.tokens and token not in self.hub.tokens | self.hub.read_tokens:
            raise HubError(401, INVALID_TOKEN)
        return token

    def _authenticated(self) -> bool:
        return not self.hub.tokens or self._token() is not None

    def _need_write(self) -> None:
        if not self.hub.tokens:
            return
        token = self._token()
        if token is None:
            raise HubError(401, INVALID_TOKEN)
        if token in self.hub.read_tokens and token not in self.hub.tokens:
            raise HubError(403, "You don't have the rights to write with this token (read-only)")

    def _repo(self, type: str, repo: str, write: bool = False) -> Repo:
        """The repo, if the caller may see it (and write to it when `write`)."""
        found = self.hub.repos.get((type or "model", repo))
        authenticated = self._authenticated()
        if found is None or (found.private and not authenticated):
            # the Hub answers 401 to anonymous callers and 404 otherwise; both carry RepoNotFound
            raise HubError(404 if authenticated else 401, f"Repository {repo} not found", "RepoNotFound")
        if write:
            self._need_write()
        elif found.gated:
            raise HubError(403, f"Access to model {repo} is restricted and you are not in the authorized list.",
                           "GatedRepo")
        return found

    @staticmethod
    def _at(repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # -- account and repos -------------------------------------------------------------------------
    def whoami(self, **_) -> Response:
        token = self._token()
        if self.hub.tokens and token is None:
            raise HubError(401, INVALID_TOKEN)
        role = "read" if token in self.hub.read_tokens and token not in self.hub.tokens else "write"
        return json_response({"type": "user", "name": self.hub.username, "fullname": self.hub.username,
                              "orgs": [], "auth": {"type": "access_token",
                                                   "accessToken": {"displayName": "tests", "role": role}}})

    def agent_harnesses(self, **_) -> Response:
        return json_response({"standardEnvVars": [], "harnesses": {}})   # the client's agent registry

    def validate_yaml(self, body: bytes, **_) -> Response:
        json.loads(body)   # {"content": README text, "repoType": ...}; any YAML is accepted
        return json_response({"errors": [], "warnings": []})

    def create_repo(self, body: bytes, **_) -> Response:
        self._need_write()
        payload = json.loads(body)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.hub.username}/{payload['name']}"
        url = f"{self.hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:
            # the client reads `url` from this body too when exist_ok=True (KeyError otherwise)
            return json_response({"error": "You already created this repo", "url": url}, 409)
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = Repo(repo_type, repo_id, private)
        self.hub._commit(repo, "main", {".gitattributes": Blob(GITATTRIBUTES, False)}, "initial commit", None)
        self.hub.repos[(repo_type, repo_id)] = repo
        return json_response({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self, body: bytes, **_) -> Response:
        payload = json.loads(body)
        repo = self._repo(payload.get("type") or "model",
                          f"{payload.get('organization') or self.hub.username}/{payload['name']}", write=True)
        del self.hub.repos[(repo.repo_type, repo.repo_id)]
        return json_response({})

    def repo_info(self, type: str, repo: str, rev: str = "main", **_) -> Response:
        found = self._repo(type, repo)
        commit = self._at(found, rev)
        siblings = [{"rfilename": path, "size": len(blob.data), "blobId": blob.oid,
                     **({"lfs": {"sha256": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}}
                        if blob.lfs else {})} for path, blob in sorted(commit.files.items())]
        return json_response({
            "_id": hashlib.sha1(repo.encode()).hexdigest()[:24], "id": repo, "modelId": repo,
            "author": repo.split("/")[0], "sha": commit.sha, "private": found.private,
            "visibility": "private" if found.private else "public", "disabled": False, "gated": False,
            "downloads": 0, "likes": 0, "tags": [], "createdAt": DATE, "lastModified": DATE, "siblings": siblings})

    # -- listing -----------------------------------------------------------------------------------
    @staticmethod
    def _entries(commit: Commit) -> list[dict]:
        """Every file and folder of a commit, as tree entries (folders get a made-up but stable oid)."""
        folders: dict[str, list[str]] = {}
        entries = []
        for path, blob in sorted(commit.files.items()):
            parts = path.split("/")
            for i in range(1, len(parts)):
                folders.setdefault("/".join(parts[:i]), []).append(blob.oid)
            entry = {"type": "file", "oid": blob.oid, "size": len(blob.data), "path": path}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
            entries.append(entry)
        return [{"type": "directory", "oid": hashlib.sha1("".join(oids).encode()).hexdigest(), "size": 0,
                 "path": folder} for folder, oids in sorted(folders.items())] + entries

    def tree(self, type: str, repo: str, rev: str, query: dict, path: str = "", **_) -> Response:
        entries = self._entries(self._at(self._repo(type, repo), rev))
        prefix = path.strip("/")
        if prefix and not any(e["path"] == prefix and e["type"] == "directory" for e in entries):
            raise HubError(404, f"Tree {prefix} not found at {rev}", "EntryNotFound")
        recursive = query.get("recursive", "").lower() in ("1", "true")
        depth = prefix.count("/") + 1 if prefix else 0
        return json_response([e for e in entries if (not prefix or e["path"].startswith(prefix + "/"))
                              and (recursive or e["path"].count("/") == depth)])

    def paths_info(self, type: str, repo: str, rev: str, body: bytes, **_) -> Response:
        entries = self._entries(self._at(self._repo(type, repo), rev))
        form = json.loads(body) if body.startswith(b"{") else parse_qs(body.decode())
        wanted = {p.strip("/") for p in ([form["paths"]] if isinstance(form["paths"], str) else form["paths"])}
        return json_response([e for e in entries if e["path"] in wanted])

    def refs(self, type: str, repo: str, query: dict, **_) -> Response:
        found = self._repo(type, repo)
        info = [{"name": name, "ref": name if name.startswith("refs/") else f"refs/heads/{name}",
                 "targetCommit": sha} for name, sha in sorted(found.refs.items())]
        payload = {"branches": [r for r in info if not r["name"].startswith("refs/")], "tags": [], "converts": []}
        if query.get("include_prs"):
            payload["pullRequests"] = [r for r in info if r["name"].startswith("refs/pr/")]
        return json_response(payload)

    # -- writing -----------------------------------------------------------------------------------
    def preupload(self, type: str, repo: str, rev: str, body: bytes, query: dict, **_) -> Response:
        """Say how each file will travel, and give the oid of what's there now so the client skips unchanged
        files: its comparison uses sha256 for "lfs" answers and the git sha1 for "regular" ones."""
        found = self._repo(type, repo, write=True)
        current = found.resolve(rev)
        if current is None and not query.get("create_pr"):
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        answers = []
        for item in json.loads(body)["files"]:
            sample = base64.b64decode(item.get("sample", ""))
            lfs = not self.hub.xet_regular and (
                item["size"] >= LFS_MIN_SIZE or item["path"].endswith(LFS_SUFFIXES) or b"\0" in sample)
            existing = current.files.get(item["path"]) if current else None
            oid = None if existing is None else hashlib.sha256(existing.data).hexdigest() if lfs \
                else git_blob_sha1(existing.data)
            answers.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                            "shouldIgnore": False, "oid": oid})
        return json_response({"files": answers, "commitOid": current.sha if current else None})

    def lfs_batch(self, repo: str, body: bytes, type: str = "model", **_) -> Response:
        """Git LFS batch API: an upload action (PUT to /lfs-upload/<oid>, then verify) for each new object."""
        found = self._repo(type, repo, write=True)
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise HubError(400, "only uploads are supported")
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:   # already stored: no actions, the client skips it
                verify = f"{self.hub.url}/{found.url_path}.git/info/lfs/objects/verify"
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}", "header": {}},
                                    "verify": {"href": verify, "header": {}}}
            objects.append(entry)
        return json_response({"transfer": "basic", "objects": objects}, 200,
                             {"Content-Type": "application/vnd.git-lfs+json"})

    def lfs_put(self, oid: str, body: bytes, **_) -> Response:
        """The storage PUT (like a presigned S3 URL: the client sends no token); bytes must match the oid."""
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "uploaded bytes don't match the sha256 oid")
        self.hub.lfs_objects[oid] = body
        self.hub.uploads.append(body)
        return Response(200, headers={"ETag": f'"{oid}"'})

    def lfs_verify(self, repo: str, body: bytes, type: str = "model", **_) -> Response:
        self._repo(type, repo, write=True)
        obj = json.loads(body)
        if obj["oid"] not in self.hub.lfs_objects or len(self.hub.lfs_objects[obj["oid"]]) != obj["size"]:
            raise HubError(404, f"LFS object {obj['oid']} missing or of the wrong size")
        return json_response({})

    def commit(self, type: str, repo: str, rev: str, body: bytes, query: dict, **_) -> Response:
        """NDJSON commit: a `header` line, then `file` (base64), `lfsFile`, `deletedFile`, `deletedFolder`.
        With `?create_pr=1` the commit goes to a new `refs/pr/N` opened from the parent (or `rev`)."""
        found = self._repo(type, repo, write=True)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        parent_sha = header.get("parentCommit")
        if query.get("create_pr"):
            base = self._at(found, parent_sha or rev)
            ref = f"refs/pr/{self.hub._open_pr(found, header['summary'], base)}"
        else:
            if rev not in found.refs and not rev.startswith("refs/heads/"):
                raise HubError(404, f"Invalid rev id: {rev} (commits go to a branch or refs/pr/N)",
                               "RevisionNotFound")
            ref = rev.removeprefix("refs/heads/")
            base = self._at(found, ref)
            if parent_sha and parent_sha != base.sha:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(base.files)
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                data = base64.b64decode(value["content"]) if value.get("encoding", "base64") == "base64" \
                    else value["content"].encode()
                self.hub.uploads.append(data)
                files[value["path"]] = Blob(data, False)
            elif key == "lfsFile":
                if value["oid"] not in self.hub.lfs_objects:
                    raise HubError(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                files[value["path"]] = Blob(self.hub.lfs_objects[value["oid"]], True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: b for p, b in files.items() if not p.startswith(folder)}
            elif key != "header":
                raise HubError(400, f"unsupported commit operation {key}")
        commit = self.hub._commit(found, ref, files, header.get("summary", ""), base.sha)
        if self.hub.on_commit is not None:
            self.hub.on_commit(found, ref, commit)
        pr_url = None
        if query.get("create_pr"):
            pr_url = f"{self.hub.url}/{found.url_path}/discussions/{ref.rsplit('/', 1)[1]}"
        return json_response({"success": True, "commitOid": commit.sha, "pullRequestUrl": pr_url,
                              "commitUrl": f"{self.hub.url}/{found.url_path}/commit/{commit.sha}"})

    def create_branch(self, type: str, repo: str, rev: str, body: bytes, **_) -> Response:
        found = self._repo(type, repo, write=True)
        if rev in found.refs:
            raise HubError(409, f"Reference refs/heads/{rev} already exists")
        start = json.loads(body or b"{}").get("startingPoint") or "main"
        found.refs[rev] = self._at(found, start).sha
        return json_response({})

    def open_discussion(self, type: str, repo: str, body: bytes, **_) -> Response:
        """`upload_folder(create_pr=True)` with Xet on opens the PR here first, then commits to refs/pr/N."""
        found = self._repo(type, repo, write=True)
        payload = json.loads(body)
        if payload.get("pullRequest"):
            num = self.hub._open_pr(found, payload.get("title", ""), self._at(found, "main"))
        else:
            num = len(found.discussions) + 1
            found.discussions[num] = {"title": payload.get("title", ""), "is_pr": False}
        return json_response({"num": num, "url": f"{self.hub.url}/{found.url_path}/discussions/{num}"})

    def discussion(self, type: str, repo: str, num: str, **_) -> Response:
        found = self._repo(type, repo)
        info = found.discussions.get(int(num))
        if info is None:
            raise HubError(404, f"Discussion {num} not found")
        return json_response({
            "num": int(num), "title": info["title"], "author": {"name": self.hub.username}, "createdAt": DATE,
            "status": "draft" if info["is_pr"] else "open", "isPullRequest": info["is_pr"],
            "repo": {"name": found.repo_id, "type": found.repo_type}, "events": [], "filesWithConflicts": [],
            "changes": {"base": "refs/heads/main"}, "diff": ""})

    def delete_branch(self, type: str, repo: str, rev: str, **_) -> Response:
        found = self._repo(type, repo, write=True)
        if rev not in found.refs or rev == "main":
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        del found.refs[rev]
        return json_response({})

    # -- Jobs (run by hub_jobs.JobRunner) ----------------------------------------------------------
    def _job(self, ns: str, job: str):
        self._need_write()
        found = self.hub.jobs.jobs.get(job)
        if found is None or found.namespace != ns:
            raise HubError(404, f"Job {job} not found")
        return found

    def create_job(self, ns: str, body: bytes, **_) -> Response:
        self._need_write()
        spec = json.loads(body)
        for key in ("command", "flavor"):
            if key not in spec:
                raise HubError(400, f"Job spec without {key}")
        return json_response(self.hub.jobs.submit(ns, spec).info(self.hub.url))

    def inspect_job(self, ns: str, job: str, **_) -> Response:
        return json_response(self._job(ns, job).info(self.hub.url))

    def job_logs(self, ns: str, job: str, query: dict, **_) -> Response:
        found = self._job(ns, job)
        tail = int(query["tail"]) if query.get("tail") else None
        return Response(200, stream=self.hub.jobs.stream(found.id, tail))

    def cancel_job(self, ns: str, job: str, **_) -> Response:
        self.hub.jobs.cancel(self._job(ns, job).id)
        return json_response({})

    # -- downloads ---------------------------------------------------------------------------------
    def resolve(self, repo: str, rev: str, path: str, type: str = "model", **_) -> Response:
        """File bytes with the headers `hf_hub_download` reads: X-Repo-Commit, ETag (plus X-Linked-Etag and
        X-Linked-Size for LFS files), Content-Length; `Range` gives a 206 (resumed downloads)."""
        commit = self._at(self._repo(type, repo), rev)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"Entry {path} not found at {rev}", "EntryNotFound")
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{blob.etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.etag}"', "X-Linked-Size": str(len(blob.data))})
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and self.command != "HEAD":
            size = len(blob.data)
            start, end = match.groups()
            first = int(start) if start else max(size - int(end or 0), 0)
            last = min(int(end), size - 1) if start and end else size - 1
            if first >= size:
                raise HubError(416, f"Range {first}- is past the end ({size} bytes)")
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            return Response(206, blob.data[first:last + 1], headers)
        return Response(200, blob.data, headers)
