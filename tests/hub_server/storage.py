"""The local Hub's repository model: files, commits and repos, the Hub's LFS rules, and request validation."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO_TYPES = ("model", "dataset", "space")
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}

#: Files at least this large are stored in LFS, whatever their name (the real Hub's rule).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024


DEFAULT_GITATTRIBUTES_PATTERNS = (
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs.*",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "saved_model/**/*",
    "*.tar.*",
    "*.tar",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
)
DATASET_EXTRA_PATTERNS = (
    "*.mds",
    "*.mp3",
    "*.ogg",
    "*.wav",
    "*.mp4",
    "*.webm",
    "*.avi",
    "*.mkv",
    "*.jpg",
    "*.jpeg",
    "*.png",
    "*.gif",
    "*.webp",
)

BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")


def default_gitattributes(repo_type: str) -> bytes:
    """The ``.gitattributes`` the Hub puts in the initial commit of a new repo."""
    patterns: tuple[str, ...] = DEFAULT_GITATTRIBUTES_PATTERNS
    if repo_type == "dataset":
        patterns = patterns + DATASET_EXTRA_PATTERNS
    lines = [f"{pattern} filter=lfs diff=lfs merge=lfs -text" for pattern in patterns]
    return ("\n".join(lines) + "\n").encode()


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file committed in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# ----------------------------------------------------------------------------------------------

# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeEntry:
    """One file in a commit's tree. ``blob_oid`` is the git sha1 (of the pointer for LFS files)."""

    size: int
    blob_oid: str
    lfs_sha256: str | None = None
    pointer_size: int | None = None

    @property
    def is_lfs(self) -> bool:
        return self.lfs_sha256 is not None

    @property
    def etag(self) -> str:
        """The ETag the Hub serves: sha256 for LFS files, git sha1 otherwise."""
        return self.lfs_sha256 or self.blob_oid


@dataclass(frozen=True)
class Commit:
    """An immutable commit: its full file tree plus metadata."""

    id: str
    parent: str | None
    title: str
    message: str
    date: str
    tree: Mapping[str, TreeEntry]


@dataclass
class Repo:
    """A repository: commits by id, branch and tag heads, flags."""

    repo_id: str
    repo_type: str
    private: bool
    created_at: str
    storage: Path
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    read_only: bool = False

    @property
    def url_path(self) -> str:
        return URL_PREFIXES[self.repo_type] + self.repo_id

    def resolve(self, revision: str) -> str | None:
        """Commit id for a branch name, tag name or full commit id; None when unknown."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if _COMMIT_ID.match(revision) and revision in self.commits:
            return revision
        return None

    def history(self, commit_id: str) -> list[Commit]:
        """Commits reachable from ``commit_id``, newest first."""
        out: list[Commit] = []
        current: str | None = commit_id
        while current is not None:
            commit = self.commits[current]
            out.append(commit)
            current = commit.parent
        return out


class HubError(Exception):
    """An error answered to the client as JSON with ``X-Error-Code``/``X-Error-Message``."""

    def __init__(
        self,
        status: int,
        message: str,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def atomic_write(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def validate_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", part) for part in parts):
        raise HubError(400, f"Invalid repo id {repo_id!r}: expected 'namespace/name'")


def validate_ref_name(name: str) -> None:
    if not name or name.startswith(("/", "refs/")) or ".." in name or any(c in name for c in " ~^:?*[\\"):
        raise HubError(400, f"Invalid reference name {name!r}")


def validate_path(path: Any, allow_folder: bool = False) -> str:
    if not isinstance(path, str) or not path:
        raise HubError(400, "Missing file path")
    if allow_folder:
        path = path.rstrip("/")
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def upload_mode(path: str, size: int, sample: bytes, lfs_patterns: list[str]) -> str:
    """'lfs' for big files, files matched by .gitattributes LFS patterns, and binary files."""
    if size == 0:
        return "regular"
    if size >= LFS_SIZE_THRESHOLD or b"\x00" in sample:
        return "lfs"
    name = path.rsplit("/", 1)[-1]
    for pattern in lfs_patterns:
        target = path if "/" in pattern else name
        if fnmatch.fnmatchcase(target, pattern.replace("**/", "*")):
            return "lfs"
    return "regular"


def parse_commit_payload(body: bytes) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Split the NDJSON commit body into its header and its operations."""
    header: dict[str, Any] | None = None
    operations: list[tuple[str, dict[str, Any]]] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise HubError(400, f"Commit payload line {number} is not JSON: {error}") from error
        key, value = item.get("key"), item.get("value")
        if not isinstance(value, dict):
            raise HubError(400, f"Commit payload line {number} has no 'value' object")
        if key == "header":
            header = value
        else:
            operations.append((str(key), value))
    if header is None:
        raise HubError(400, "Commit payload has no header line")
    if not header.get("summary"):
        raise HubError(400, "Commit summary (message) is empty")
    return header, operations


def parse_range(range_header: str | None, size: int) -> tuple[int, int, int]:
    """(start, length, status) for an optional ``Range: bytes=...`` header (one range only)."""
    if not range_header:
        return 0, size, 200
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header)
    if match is None or match.groups() == ("", ""):
        raise HubError(416, f"Unsupported Range header {range_header!r}", headers={"Content-Range": f"bytes */{size}"})
    first, last = match.groups()
    if first == "":
        start = max(0, size - int(last))
        end = size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise HubError(
            416,
            f"Range {range_header!r} not satisfiable for {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end - start + 1, 206
