"""How to install exactly the hf-finetune that is running, for workflows and cards that others will run.

A bare ``pip install hf-finetune`` would install whatever the public index serves under that name
(today nobody's, tomorrow anybody's) next to the user's Hub token. So what we write down is the
install that produced this process, read from its PEP 610 record (``direct_url.json``):

- from an index (no record): ``hf-finetune==X.Y.Z``;
- from a VCS: ``hf-finetune @ git+URL@<commit>``;
- from an archive URL: ``hf-finetune @ URL`` (with its hash when recorded);
- from a local tree or file (editable or not): none; there is nothing others could install, so the
  caller must be told a spec (``--install-spec``) or say it has none.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from urllib.parse import urlsplit

DIST = "hf-finetune"
# what our messages show where the user must put their own repository and commit: never written as is
PLACEHOLDER = f"{DIST}[embedded] @ git+https://github.com/ORG/REPO@COMMIT"
PLACEHOLDER_MARKS = ("ORG/REPO", "@COMMIT", "<commit")
VCS_SCHEMES = ("git+", "hg+", "svn+", "bzr+")


def _installed() -> metadata.Distribution | None:
    # An `*.egg-info` in a source checkout on sys.path is not an install: prefer what an installer wrote.
    for dist in metadata.distributions(name=DIST):
        if dist.read_text("INSTALLER"):
            return dist
    return None


def install_spec(extras: str = "") -> str | None:
    """The pip requirement that installs this very hf-finetune, or None for a local install."""
    dist = _installed()
    if dist is None:
        return None
    name = f"{DIST}[{extras}]" if extras else DIST
    record = dist.read_text("direct_url.json")
    if not record:
        return f"{name}=={dist.version}"
    try:
        direct = json.loads(record)
    except json.JSONDecodeError:
        return None
    url = str(direct.get("url", ""))
    if "vcs_info" in direct:
        vcs = direct["vcs_info"]
        if url.startswith("file:") or not vcs.get("commit_id"):
            return None
        return f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs['commit_id']}"
    if "archive_info" in direct and not url.startswith("file:"):
        hashes = direct["archive_info"].get("hashes") or {}
        fragment = f"#sha256={hashes['sha256']}" if "sha256" in hashes else ""
        return f"{name} @ {url}{fragment}"
    return None   # a local directory or file: nothing anyone else can install


def local_source() -> str | None:
    """The local tree or wheel file this hf-finetune was installed from (editable or not), else None."""
    from urllib.parse import unquote, urlparse

    dist = _installed()
    record = dist.read_text("direct_url.json") if dist is not None else None
    if not record:
        return None
    try:
        url = str(json.loads(record).get("url", ""))
    except json.JSONDecodeError:
        return None
    return unquote(urlparse(url).path) if url.startswith("file:") else None


def is_placeholder(spec: str) -> bool:
    return any(mark in spec for mark in PLACEHOLDER_MARKS)


# a user name or password before the host (`https://user:TOKEN@github.com/...`), and tokens by their known prefixes
# (Hugging Face, GitHub classic and fine-grained, GitLab), wherever they stand in the spec
URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]*)@")
TOKEN_SHAPES = re.compile(r"hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}")


def without_credentials(spec: str) -> str | None:
    """``spec`` with its credentials masked, when it carries any (user info in a URL, a token-shaped
    string); None when it carries none. What is written into a workflow or a card is readable by anyone
    who can read it, so a spec that needs credentials must get them from a secret instead."""
    masked = TOKEN_SHAPES.sub("***", URL_USERINFO.sub(lambda m: m["scheme"] + "***@", spec))
    return masked if masked != spec else None


def unpinned(spec: str) -> tuple[str, str] | None:
    """(why, a pinned form) when the pip requirement ``spec`` may install another build at each run: a bare
    name or a version range (whatever the index serves then), a VCS URL without a commit (whatever the
    branch holds then); None when it names one build (``==X.Y.Z``, a commit, an archive file)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(spec)
        name = req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "")
        url = req.url
    except InvalidRequirement:
        if not spec.startswith(VCS_SCHEMES):
            return None   # not a requirement we can read (a local path, pip options): nothing to say
        name, url = DIST, spec
    if url:
        if not url.startswith(VCS_SCHEMES):
            return None   # an archive file
        path = urlsplit(url.split("+", 1)[1]).path
        ref = path.rsplit("@", 1)[1] if "@" in path else ""
        if re.fullmatch(r"[0-9a-fA-F]{7,40}", ref):
            return None
        base = url.split("#", 1)[0]
        base = base[:base.rindex("@")] if ref else base
        why = f"its ref {ref!r} is a branch or tag, which can move" if ref else "it names no commit"
        return why + ", so each run installs whatever the repository holds then", f"{name} @ {base}@<commit sha>"
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return None
    why = "it names no version" if not specs else f"{str(req.specifier)!r} is a range of versions"
    return why + ", so each run installs whatever the package index serves then", f"{name}=={_version(req.name)}"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "X.Y.Z"
