"""A local Hugging Face Hub-protocol server for tests (standard library only).

It speaks the subset of the Hub HTTP protocol that ``huggingface_hub`` 2.4 uses (with
``HF_HUB_DISABLE_XET=1``) for ``create_repo``, ``upload_folder``/``create_commit`` (regular and classic
LFS uploads), ``push_to_hub``, ``hf_hub_download``, ``snapshot_download``, ``from_pretrained``,
``list_repo_files``, ``repo_info``, branches and tags, for model, dataset and space repos. See
``../shared/reference/hub-protocol.md`` for the calls observed on this machine.

The server binds 127.0.0.1 on a free port and runs in a background thread. File contents live in a
temporary directory (regular blobs by git sha1, LFS objects by sha256); repository metadata (commits,
branches, tags) lives in memory behind one lock, so a commit becomes visible atomically or not at all.

Tests can inject faults (``fail_next``, ``drop_connection_next``, ``lose_response_next``), require a token
(``require_token``),
mark repos read-only (``set_read_only``), and inspect what happened (``requests``, ``count``,
``list_files``, ``read_file``, ``commits``).

huggingface_hub reads ``HF_ENDPOINT`` and friends at import time and the test process runs with
``HF_HUB_OFFLINE=1`` (see ``conftest.py``), so client code runs in subprocesses whose environment comes
from :func:`hub_env`; :func:`run_hub_client` is a small helper for that.

Not implemented: pull requests (``create_pr=True`` is refused with a 400), Xet storage, multipart LFS
uploads, pagination, gated repos, organisations/permissions beyond one token and read-only flags.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import io
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Sequence
from urllib.parse import parse_qs, quote, unquote, urlsplit

try:  # The server itself is stdlib only; pytest is needed only for the fixture.
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

# ----------------------------------------------------------------------------------------------
# Constants
# ----------------------------------------------------------------------------------------------

REPO_TYPES = ("model", "dataset", "space")
API_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
URL_PREFIX_SEGMENTS = {"datasets": "dataset", "spaces": "space"}

#: Files at least this large are stored in LFS, whatever their name (the real Hub's rule).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024

#: Every kind of route, usable with ``fail_next`` / ``drop_connection_next`` / ``count``.
ROUTE_KINDS = (
    "whoami",
    "create_repo",
    "delete_repo",
    "validate_yaml",
    "repo_info",
    "tree",
    "paths_info",
    "refs",
    "commits",
    "branch",
    "tag",
    "preupload",
    "lfs_batch",
    "lfs_upload",
    "commit",
    "resolve",
    "unknown",
)

DEFAULT_GITATTRIBUTES_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
    "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
)
DATASET_EXTRA_PATTERNS = (
    "*.mds", "*.mp3", "*.ogg", "*.wav", "*.mp4", "*.webm", "*.avi", "*.mkv", "*.jpg", "*.jpeg",
    "*.png", "*.gif", "*.webp",
)

_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
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


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# ----------------------------------------------------------------------------------------------
# Data model
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


@dataclass
class Response:
    """What a route handler answers: a status, headers and a body (bytes or a slice of a file)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file_path: Path | None = None
    file_start: int = 0
    file_length: int = 0

    @classmethod
    def json(cls, data: Any, status: int = 200, content_type: str = "application/json") -> "Response":
        return cls(status=status, headers={"Content-Type": content_type}, body=json.dumps(data).encode())

    @property
    def content_length(self) -> int:
        return self.file_length if self.file_path is not None else len(self.body)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it."""

    method: str
    path: str
    kind: str
    status: int | None


@dataclass(frozen=True)
class Route:
    """A matched route: its kind, the handler method name and its arguments."""

    kind: str
    handler: str
    args: dict[str, Any]


# ----------------------------------------------------------------------------------------------
# Routing
# ----------------------------------------------------------------------------------------------

_REPO_API_ACTIONS: dict[tuple[str, str], tuple[str, str]] = {
    # (action, method) -> (kind, handler)
    ("revision", "GET"): ("repo_info", "handle_repo_info"),
    ("tree", "GET"): ("tree", "handle_tree"),
    ("paths-info", "POST"): ("paths_info", "handle_paths_info"),
    ("refs", "GET"): ("refs", "handle_refs"),
    ("commits", "GET"): ("commits", "handle_commits"),
    ("branch", "POST"): ("branch", "handle_create_branch"),
    ("branch", "DELETE"): ("branch", "handle_delete_branch"),
    ("tag", "POST"): ("tag", "handle_create_tag"),
    ("tag", "DELETE"): ("tag", "handle_delete_tag"),
    ("preupload", "POST"): ("preupload", "handle_preupload"),
    ("commit", "POST"): ("commit", "handle_commit"),
}


def match_route(method: str, segments: list[str]) -> Route | None:
    """Map a request (method + unquoted path segments) to a route, or None when unknown."""
    fixed = {
        ("GET", ("api", "whoami-v2")): Route("whoami", "handle_whoami", {}),
        ("POST", ("api", "repos", "create")): Route("create_repo", "handle_create_repo", {}),
        ("DELETE", ("api", "repos", "delete")): Route("delete_repo", "handle_delete_repo", {}),
        ("POST", ("api", "validate-yaml")): Route("validate_yaml", "handle_validate_yaml", {}),
    }
    if (method, tuple(segments)) in fixed:
        return fixed[(method, tuple(segments))]
    if len(segments) >= 4 and segments[0] == "api" and segments[1] in API_PLURALS:
        return _match_repo_api(method, API_PLURALS[segments[1]], segments[2:])
    if len(segments) == 5 and segments[0] == "__lfs_upload" and method == "PUT":
        repo_type, namespace, name, oid = segments[1:]
        return Route("lfs_upload", "handle_lfs_upload", {"repo_type": repo_type, "repo_id": f"{namespace}/{name}", "oid": oid})
    return _match_git_route(method, segments)


def _match_repo_api(method: str, repo_type: str, rest: list[str]) -> Route | None:
    """``/api/{models|datasets|spaces}/{ns}/{name}[/{action}/...]``."""
    repo_id = f"{rest[0]}/{rest[1]}"
    tail = rest[2:]
    args: dict[str, Any] = {"repo_type": repo_type, "repo_id": repo_id}
    if not tail:
        return Route("repo_info", "handle_repo_info", {**args, "revision": None}) if method == "GET" else None
    action, params = tail[0], tail[1:]
    kind_handler = _REPO_API_ACTIONS.get((action, method))
    if kind_handler is None:
        return None
    kind, handler = kind_handler
    if action == "refs":
        return Route(kind, handler, args) if not params else None
    if not params:
        return None
    if action == "tree":
        # Revisions are quoted with safe="" by the client, so the revision is one segment.
        return Route(kind, handler, {**args, "revision": params[0], "path": "/".join(params[1:])})
    if action in ("branch", "tag") and method == "DELETE":
        return Route(kind, handler, {**args, "name": "/".join(params)})
    if action == "branch":
        return Route(kind, handler, {**args, "name": "/".join(params)})
    return Route(kind, handler, {**args, "revision": "/".join(params)})


def _match_git_route(method: str, segments: list[str]) -> Route | None:
    """``/[datasets/]{ns}/{name}/resolve/{rev}/{path}`` and ``/[datasets/]{ns}/{name}.git/info/lfs/objects/batch``."""
    repo_type = "model"
    if segments and segments[0] in URL_PREFIX_SEGMENTS:
        repo_type = URL_PREFIX_SEGMENTS[segments[0]]
        segments = segments[1:]
    if len(segments) == 6 and segments[1].endswith(".git") and segments[2:] == ["info", "lfs", "objects", "batch"]:
        if method != "POST":
            return None
        repo_id = f"{segments[0]}/{segments[1][: -len('.git')]}"
        return Route("lfs_batch", "handle_lfs_batch", {"repo_type": repo_type, "repo_id": repo_id})
    if len(segments) >= 5 and segments[2] == "resolve" and method in ("GET", "HEAD"):
        repo_id = f"{segments[0]}/{segments[1]}"
        path = "/".join(segments[4:])
        return Route("resolve", "handle_resolve", {"repo_type": repo_type, "repo_id": repo_id, "revision": segments[3], "path": path})
    return None


# ----------------------------------------------------------------------------------------------
# The HTTP layer
# ----------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hub: "LocalHub"


class _Handler(BaseHTTPRequestHandler):
    """Parses requests, applies auth and injected faults, calls the LocalHub route handlers."""

    protocol_version = "HTTP/1.1"
    server: _Server
    _body_done = False

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        return

    # -- request parsing ----------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        segments = [unquote(segment) for segment in split.path.split("/")[1:]]
        query = {key: values[-1] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
        route = match_route(method, segments)
        kind = route.kind if route else "unknown"
        index = hub._log_request(method, split.path, kind)
        status = self._answer(method, split.path, route, kind, query)
        hub._set_request_status(index, status)

    def _answer(self, method: str, path: str, route: Route | None, kind: str, query: dict[str, str]) -> int | None:
        """Run one request to completion; returns the status sent (None when the connection was dropped)."""
        hub = self.server.hub
        self._body_done = False
        streams_body = kind == "lfs_upload"
        reset = hub._take_fault(hub._drops, kind, method)
        if reset is not None:
            self._drop_connection(method, route, query, reset)
            return None
        try:
            body = b"" if streams_body else self._read_body()
        except ConnectionError:
            self._reset_socket(reset=False)
            return None
        try:
            injected = hub._take_fault(hub._failures, kind, method)
            if injected is not None:
                raise HubError(injected, f"Injected failure ({injected}) on {kind} by the local test hub")
            if route is None:
                hub._log_unknown(method, path)
                raise HubError(404, f"Local test hub: no route for {method} {path}", extra={"route": f"{method} {path}"})
            if kind != "lfs_upload":  # LFS uploads carry a signed URL instead of the token, like S3.
                hub._check_auth(self.headers.get("Authorization"), kind)
            handler: Callable[..., Response] = getattr(hub, route.handler)
            response = handler(request=_Request(method, self.headers, body, query, self), **route.args)
        except ConnectionError:  # the client went away in the middle of its body
            self._reset_socket(reset=False)
            return None
        except HubError as error:
            self._discard_body()
            response = _error_response(error)
        except Exception as error:  # a bug in the server: answer 500 and remember it
            self._discard_body()
            hub._log_server_error(f"{method} {path}: {error!r}\n{traceback.format_exc()}")
            response = _error_response(HubError(500, f"Local test hub internal error: {error!r}"))
        if hub._take_fault(hub._lost_responses, kind, method) is not None:
            self._reset_socket(reset=False)
            return None
        self._send(response, head_only=(method == "HEAD"))
        return response.status

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None else None

    def _is_chunked(self) -> bool:
        return "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()

    def _read_body(self) -> bytes:
        return b"".join(self.iter_body())

    def _discard_body(self) -> None:
        """Read what is left of the body so the connection can serve the next request."""
        if self._body_done:
            return
        try:
            for _ in self.iter_body():
                pass
        except ConnectionError:
            self.close_connection = True

    def iter_body(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the request body (Content-Length or chunked), once. Raises ConnectionError when it ends early."""
        if self._body_done:
            raise RuntimeError("the request body was already read")
        self._body_done = True
        if self._is_chunked():
            yield from self._iter_chunked()
            return
        remaining = self._content_length() or 0
        while remaining > 0:
            chunk = self.rfile.read(min(chunk_size, remaining))
            if not chunk:
                raise ConnectionError("client closed the connection before sending the whole body")
            remaining -= len(chunk)
            yield chunk

    def _iter_chunked(self) -> Iterator[bytes]:
        while True:
            size_line = self.rfile.readline(65537)
            if not size_line:
                raise ConnectionError("client closed the connection in a chunked body")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            data = self.rfile.read(size)
            if len(data) < size:
                raise ConnectionError("client closed the connection in a chunked body")
            self.rfile.readline(65537)
            yield data

    # -- responses ----------------------------------------------------------------------------

    def _send(self, response: Response, head_only: bool) -> None:
        self.send_response(response.status)
        headers = {"Content-Type": "application/json", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(response.content_length))
        self.end_headers()
        if head_only:
            return
        if response.file_path is None:
            self.wfile.write(response.body)
            return
        with open(response.file_path, "rb") as file:
            file.seek(response.file_start)
            _copy_exactly(file, self.wfile, response.file_length)

    def _drop_connection(self, method: str, route: Route | None, query: dict[str, str], reset: bool) -> None:
        """Simulate a network failure: half the body in, or half the response out, then close or reset."""
        length = self._content_length()
        if length:
            self.rfile.read(max(1, min(length // 2, 1 << 20)))
        elif method == "GET" and route is not None and route.kind == "resolve":
            self._send_half_response(route, query)
        self._reset_socket(reset)

    def _send_half_response(self, route: Route, query: dict[str, str]) -> None:
        try:
            response = self.server.hub.handle_resolve(request=_Request("GET", self.headers, b"", query, self), **route.args)
        except HubError:
            return
        if response.file_path is None or response.file_length < 2:
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(response.file_length))
        self.end_headers()
        with open(response.file_path, "rb") as file:
            file.seek(response.file_start)
            _copy_exactly(file, self.wfile, response.file_length // 2)
        self.wfile.flush()

    def _reset_socket(self, reset: bool) -> None:
        """Close the connection now: with a TCP reset (RST) when ``reset``, else a plain close (FIN)."""
        self.close_connection = True
        try:
            if not reset:
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            # SO_LINGER 0 + close (no shutdown, which would send a FIN first) makes the kernel send a RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
        except OSError:
            pass
        finally:
            if reset:  # http.server still flushes/closes these after the request: give it harmless stand-ins
                self.rfile, self.wfile = io.BytesIO(), io.BytesIO()


def _copy_exactly(source: BinaryIO, target: Any, length: int, chunk_size: int = 1 << 20) -> None:
    remaining = length
    while remaining > 0:
        chunk = source.read(min(chunk_size, remaining))
        if not chunk:
            break
        target.write(chunk)
        remaining -= len(chunk)


def _error_response(error: HubError) -> Response:
    headers = {"X-Error-Message": error.message.encode("latin-1", "replace").decode("latin-1").replace("\n", " ")}
    if error.error_code:
        headers["X-Error-Code"] = error.error_code
    headers.update(error.headers)
    body = {"error": error.message, **error.extra}
    return Response(status=error.status, headers={"Content-Type": "application/json", **headers}, body=json.dumps(body).encode())


@dataclass
class _Request:
    """What a route handler may look at."""

    method: str
    headers: Any
    body: bytes
    query: dict[str, str]
    handler: _Handler

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as error:
            raise HubError(400, f"Request body is not valid JSON: {error}") from error

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")


# ----------------------------------------------------------------------------------------------
# The hub
# ----------------------------------------------------------------------------------------------


class LocalHub:
    """A Hub-protocol server on 127.0.0.1 with inspectable state and fault injection.

    Use as ``with LocalHub() as hub: ...`` or ``hub.start()`` / ``hub.stop()``; the base URL is ``hub.url``.
    """

    def __init__(self, username: str = "test-user") -> None:
        self.username = username
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._failures: dict[str, list[tuple[str | None, int]]] = {}
        self._drops: dict[str, list[tuple[str | None, bool]]] = {}
        self._lost_responses: dict[str, list[tuple[str | None, bool]]] = {}
        self._required_token: str | None = None
        self._records: list[RequestRecord] = []
        self._unknown: list[tuple[str, str]] = []
        self._server_errors: list[str] = []
        self._secret = secrets.token_bytes(16)
        self._counter = itertools.count()
        self._root: Path | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._extra_dirs: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "LocalHub":
        """Create the storage directory and serve on a free port in a background thread."""
        if self._server is not None:
            return self
        self._root = Path(tempfile.mkdtemp(prefix="local-hub-"))
        server = _Server(("127.0.0.1", 0), _Handler)
        server.hub = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="local-hub")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delete all stored data."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for path in [self._root, *self._extra_dirs]:
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        self._root = None
        self._extra_dirs = []

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:34567`` (use as ``HF_ENDPOINT``)."""
        if self._server is None:
            raise RuntimeError("LocalHub is not started")
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def make_temp_dir(self, prefix: str = "local-hub-client-") -> str:
        """A temporary directory deleted when the hub stops (used for client ``HF_HOME``)."""
        path = tempfile.mkdtemp(prefix=prefix)
        self._extra_dirs.append(path)
        return path

    # -- test controls ------------------------------------------------------------------------

    def fail_next(self, route_kind: str, status: int = 500, times: int = 1, method: str | None = None) -> None:
        """Answer the next ``times`` requests of ``route_kind`` (only ``method`` ones if given) with HTTP
        ``status``; nothing of those requests is applied."""
        self._check_kind(route_kind)
        with self._lock:
            self._failures.setdefault(route_kind, []).extend([(method, status)] * times)

    def drop_connection_next(self, route_kind: str, times: int = 1, method: str | None = None, reset: bool = False) -> None:
        """Cut the connection of the next ``times`` requests of ``route_kind`` (only ``method`` ones if given).

        With a request body, half of it is read first (mid-upload); for a file GET, the headers and half
        of the file are sent first (mid-download); otherwise nothing is answered. Nothing of the request
        is applied. The socket is closed (the client sees a truncated response / "server disconnected")
        or, with ``reset=True``, reset with a TCP RST (the client sees "connection reset by peer").
        """
        self._check_kind(route_kind)
        with self._lock:
            self._drops.setdefault(route_kind, []).extend([(method, reset)] * times)

    def lose_response_next(self, route_kind: str, times: int = 1, method: str | None = None) -> None:
        """Apply the next ``times`` requests of ``route_kind`` normally, then close the connection instead of
        answering: e.g. a commit that succeeded although the client saw a network error."""
        self._check_kind(route_kind)
        with self._lock:
            self._lost_responses.setdefault(route_kind, []).extend([(method, True)] * times)

    def pending_faults(self) -> dict[str, int]:
        """Faults not yet triggered, by route kind."""
        with self._lock:
            counts: dict[str, int] = {}
            for table in (self._failures, self._drops, self._lost_responses):
                for kind, queue in table.items():
                    if queue:
                        counts[kind] = counts.get(kind, 0) + len(queue)
            return counts

    def require_token(self, token: str | None) -> None:
        """Accept only ``Authorization: Bearer <token>`` (401 otherwise); None accepts anyone again."""
        with self._lock:
            self._required_token = token

    def set_read_only(self, repo_id: str, repo_type: str = "model", read_only: bool = True) -> None:
        """Make writes to this repo (commit, preupload, LFS, branches, delete) answer 403."""
        with self._lock:
            self._get_repo(repo_type, repo_id).read_only = read_only

    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False, read_only: bool = False) -> str:
        """Create a repo directly (test set-up, e.g. someone else's repo); returns its URL."""
        with self._lock:
            repo = self._new_repo(repo_type, repo_id, private)
            repo.read_only = read_only
            return f"{self.url}/{repo.url_path}"

    # -- inspection ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request so far as ``(method, path)`` (path without query string)."""
        with self._lock:
            return [(record.method, record.path) for record in self._records]

    @property
    def request_records(self) -> list[RequestRecord]:
        """Every request so far with its route kind and answered status (None: connection dropped)."""
        with self._lock:
            return list(self._records)

    def count(self, route_kind: str, status: int | None | str = "any") -> int:
        """Number of requests of ``route_kind`` (optionally only those answered with ``status``)."""
        with self._lock:
            return sum(1 for r in self._records if r.kind == route_kind and (status == "any" or r.status == status))

    def clear_requests(self) -> None:
        with self._lock:
            self._records.clear()

    @property
    def unknown_routes(self) -> list[tuple[str, str]]:
        """Requests that matched no route (answered 404): a sign of a missing route."""
        with self._lock:
            return list(self._unknown)

    @property
    def server_errors(self) -> list[str]:
        """Unexpected exceptions raised by route handlers (answered 500)."""
        with self._lock:
            return list(self._server_errors)

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def list_files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[str]:
        """Sorted file paths at ``revision`` (branch, tag or commit id)."""
        with self._lock:
            return sorted(self._commit_at(repo_type, repo_id, revision).tree)

    def read_file(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> bytes:
        """Content of ``path`` at ``revision``."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            entry = self._commit_at(repo_type, repo_id, revision).tree.get(path)
            if entry is None:
                raise KeyError(f"{path} not in {repo_type} {repo_id}@{revision}")
            return self._blob_path(repo, entry).read_bytes()

    def file_entry(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> TreeEntry:
        """Tree entry (size, git oid, LFS sha256) of ``path`` at ``revision``."""
        with self._lock:
            return self._commit_at(repo_type, repo_id, revision).tree[path]

    def commits(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[Commit]:
        """History reachable from ``revision``, newest first (includes the initial commit)."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            return repo.history(self._resolve(repo, revision))

    def branches(self, repo_id: str, repo_type: str = "model") -> dict[str, str]:
        """Branch name -> head commit id."""
        with self._lock:
            return dict(self._get_repo(repo_type, repo_id).branches)

    def lfs_object_ids(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """sha256 of every LFS object stored for the repo (committed or not)."""
        with self._lock:
            lfs_dir = self._get_repo(repo_type, repo_id).storage / "lfs"
            return sorted(path.name for path in lfs_dir.iterdir())

    # -- internals: bookkeeping -----------------------------------------------------------------

    @staticmethod
    def _check_kind(route_kind: str) -> None:
        if route_kind not in ROUTE_KINDS:
            raise ValueError(f"Unknown route kind {route_kind!r}; expected one of {ROUTE_KINDS}")

    def _log_request(self, method: str, path: str, kind: str) -> int:
        with self._lock:
            self._records.append(RequestRecord(method, path, kind, None))
            return len(self._records) - 1

    def _set_request_status(self, index: int, status: int | None) -> None:
        with self._lock:
            record = self._records[index]
            self._records[index] = RequestRecord(record.method, record.path, record.kind, status)

    def _log_unknown(self, method: str, path: str) -> None:
        with self._lock:
            self._unknown.append((method, path))
        print(f"[local-hub] no route for {method} {path}", file=sys.stderr)

    def _log_server_error(self, text: str) -> None:
        with self._lock:
            self._server_errors.append(text)
        print(f"[local-hub] internal error: {text}", file=sys.stderr)

    def _take_fault(self, table: dict[str, list[tuple[str | None, Any]]], kind: str, method: str) -> Any:
        """Pop and return the first pending fault for this kind and method (None when there is none)."""
        with self._lock:
            queue = table.get(kind, [])
            for index, (wanted_method, value) in enumerate(queue):
                if wanted_method is None or wanted_method.upper() == method:
                    del queue[index]
                    return value
            return None

    def _check_auth(self, authorization: str | None, kind: str) -> None:
        match = _BEARER.match(authorization or "")
        token = match.group(1) if match else None
        required = self._required_token
        if token is None and (required is not None or kind == "whoami"):
            raise HubError(401, "Authorization header is missing: this endpoint needs a token")
        if required is not None and token != required:
            raise HubError(401, "Invalid credentials in Authorization header")

    # -- internals: storage -------------------------------------------------------------------

    def _repo_storage(self, repo_type: str, repo_id: str) -> Path:
        assert self._root is not None, "LocalHub is not started"
        path = self._root / "repos" / repo_type / repo_id / secrets.token_hex(4)
        (path / "blobs").mkdir(parents=True)
        (path / "lfs").mkdir()
        (path / "incoming").mkdir()
        return path

    def _new_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        _validate_repo_id(repo_id)
        if (repo_type, repo_id) in self._repos:
            raise HubError(409, f"You already created this {repo_type} repo", extra={"url": self._repo_url(repo_type, repo_id)})
        repo = Repo(repo_id, repo_type, private, _now_iso(), self._repo_storage(repo_type, repo_id))
        gitattributes = default_gitattributes(repo_type)
        tree = {".gitattributes": self._store_regular(repo, gitattributes)}
        initial = self._make_commit(None, "initial commit", "", tree)
        repo.commits[initial.id] = initial
        repo.branches["main"] = initial.id
        self._repos[(repo_type, repo_id)] = repo
        return repo

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.url}/{URL_PREFIXES[repo_type]}{repo_id}"

    def _get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", error_code="RepoNotFound")
        return repo

    def _readable_repo(self, request: _Request, repo_type: str, repo_id: str) -> Repo:
        repo = self._get_repo(repo_type, repo_id)
        if repo.private and not _BEARER.match(request.headers.get("Authorization") or ""):
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", error_code="RepoNotFound")
        return repo

    def _writable_repo(self, request: _Request, repo_type: str, repo_id: str) -> Repo:
        repo = self._readable_repo(request, repo_type, repo_id)
        if repo.read_only:
            raise HubError(403, f"You don't have the rights to write to {repo_type} repo {repo_id}")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> str:
        commit_id = repo.resolve(revision)
        if commit_id is None:
            raise HubError(404, f"Invalid rev id: {revision}", error_code="RevisionNotFound")
        return commit_id

    def _commit_at(self, repo_type: str, repo_id: str, revision: str) -> Commit:
        repo = self._get_repo(repo_type, repo_id)
        return repo.commits[self._resolve(repo, revision)]

    def _blob_path(self, repo: Repo, entry: TreeEntry) -> Path:
        if entry.lfs_sha256 is not None:
            return repo.storage / "lfs" / entry.lfs_sha256
        return repo.storage / "blobs" / entry.blob_oid

    def _store_regular(self, repo: Repo, content: bytes) -> TreeEntry:
        oid = git_blob_sha1(content)
        path = repo.storage / "blobs" / oid
        if not path.exists():
            _atomic_write(path, content)
        return TreeEntry(size=len(content), blob_oid=oid)

    def _lfs_entry(self, repo: Repo, sha256: str, size: int | None) -> TreeEntry:
        path = repo.storage / "lfs" / sha256
        if not _SHA256_HEX.match(sha256) or not path.exists():
            raise HubError(400, f"LFS object {sha256} was not uploaded to this repo; upload it before committing")
        actual = path.stat().st_size
        if size is not None and size != actual:
            raise HubError(400, f"LFS object {sha256} has size {actual}, not {size}")
        pointer = lfs_pointer(sha256, actual)
        return TreeEntry(size=actual, blob_oid=git_blob_sha1(pointer), lfs_sha256=sha256, pointer_size=len(pointer))

    def _make_commit(self, parent: str | None, title: str, message: str, tree: Mapping[str, TreeEntry]) -> Commit:
        digest = hashlib.sha1()
        digest.update(json.dumps([parent, title, message, time.time_ns(), next(self._counter)]).encode())
        for path in sorted(tree):
            digest.update(f"{path}\0{tree[path].blob_oid}\n".encode())
        return Commit(digest.hexdigest(), parent, title, message, _now_iso(), dict(tree))

    # -- internals: JSON shapes -----------------------------------------------------------------

    def _tree_item(self, path: str, entry: TreeEntry) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "file", "oid": entry.blob_oid, "size": entry.size, "path": path}
        if entry.is_lfs:
            item["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        return item

    @staticmethod
    def _folder_item(path: str, tree: Mapping[str, TreeEntry]) -> dict[str, Any]:
        digest = hashlib.sha1(path.encode())
        for child in sorted(p for p in tree if p.startswith(path + "/")):
            digest.update(f"{child}\0{tree[child].blob_oid}\n".encode())
        return {"type": "directory", "oid": digest.hexdigest(), "size": 0, "path": path}

    def _repo_info_json(self, repo: Repo, commit: Commit, with_blobs: bool) -> dict[str, Any]:
        siblings = []
        for path in sorted(commit.tree):
            sibling: dict[str, Any] = {"rfilename": path}
            entry = commit.tree[path]
            if with_blobs:
                sibling.update(size=entry.size, blobId=entry.blob_oid)
                if entry.is_lfs:
                    sibling["lfs"] = {"size": entry.size, "sha256": entry.lfs_sha256, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.id,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return info

    # -- route handlers: account and repos -----------------------------------------------------

    def handle_whoami(self, request: _Request) -> Response:
        return Response.json(
            {
                "type": "user",
                "id": hashlib.sha1(self.username.encode()).hexdigest()[:24],
                "name": self.username,
                "fullname": "Local Test User",
                "isPro": False,
                "canPay": False,
                "emailVerified": True,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "local-test", "role": "write"}},
            }
        )

    def handle_create_repo(self, request: _Request) -> Response:
        payload = request.json()
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            raise HubError(400, "create_repo needs a 'name'")
        namespace = payload.get("organization") or self.username
        repo_type = payload.get("type") or "model"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        with self._lock:
            repo = self._new_repo(repo_type, f"{namespace}/{name}", private)
        return Response.json({"url": self._repo_url(repo.repo_type, repo.repo_id), "name": repo.repo_id, "id": repo.repo_id})

    def handle_delete_repo(self, request: _Request) -> Response:
        payload = request.json()
        namespace = payload.get("organization") or self.username
        repo_type = payload.get("type") or "model"
        repo_id = f"{namespace}/{payload.get('name')}"
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            del self._repos[(repo_type, repo_id)]
        shutil.rmtree(repo.storage, ignore_errors=True)
        return Response.json({})

    def handle_validate_yaml(self, request: _Request) -> Response:
        content = request.json().get("content", "")
        if isinstance(content, str) and content.startswith("---") and "\n---" not in content[3:]:
            return Response.json({"errors": [{"message": "Metadata block is not closed by '---'"}], "warnings": []}, status=400)
        return Response.json({"errors": [], "warnings": []})

    def handle_repo_info(self, request: _Request, repo_type: str, repo_id: str, revision: str | None) -> Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, revision or "main")]
            return Response.json(self._repo_info_json(repo, commit, with_blobs=request.flag("blobs")))

    # -- route handlers: listing ---------------------------------------------------------------

    def handle_tree(self, request: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
        path = path.strip("/")
        recursive = request.flag("recursive")
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit_id = self._resolve(repo, revision)
            tree = repo.commits[commit_id].tree
        prefix = f"{path}/" if path else ""
        below = sorted(p for p in tree if p.startswith(prefix))
        if path and not below:
            raise HubError(404, f"Path {path} not found at {revision}", error_code="EntryNotFound", headers={"X-Repo-Commit": commit_id})
        folders: set[str] = set()
        files: list[str] = []
        for file_path in below:
            relative = file_path[len(prefix):]
            parts = relative.split("/")
            if recursive:
                folders.update(prefix + "/".join(parts[:i]) for i in range(1, len(parts)))
                files.append(file_path)
            elif len(parts) > 1:
                folders.add(prefix + parts[0])
            else:
                files.append(file_path)
        items = [self._folder_item(folder, tree) for folder in sorted(folders)]
        items += [self._tree_item(file_path, tree[file_path]) for file_path in files]
        return Response.json(items)

    def handle_paths_info(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> Response:
        content_type = request.headers.get("Content-Type") or ""
        if "json" in content_type:
            paths = request.json().get("paths", [])
        else:
            paths = parse_qs(request.body.decode(), keep_blank_values=True).get("paths", [])
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            tree = repo.commits[self._resolve(repo, revision)].tree
        items = []
        for path in paths:
            path = path.strip("/")
            if path in tree:
                items.append(self._tree_item(path, tree[path]))
            elif any(p.startswith(path + "/") for p in tree):
                items.append(self._folder_item(path, tree))
        return Response.json(items)

    def handle_refs(self, request: _Request, repo_type: str, repo_id: str) -> Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in sorted(repo.branches.items())]
            tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in sorted(repo.tags.items())]
        data: dict[str, Any] = {"branches": branches, "converts": [], "tags": tags}
        if request.flag("include_prs"):
            data["pullRequests"] = []
        return Response.json(data)

    def handle_commits(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            history = repo.history(self._resolve(repo, revision))
        items = [
            {
                "id": commit.id,
                "title": commit.title,
                "message": commit.message,
                "date": commit.date,
                "authors": [{"user": self.username, "avatar": None}],
            }
            for commit in history
        ]
        return Response.json(items)

    # -- route handlers: branches and tags -----------------------------------------------------

    def handle_create_branch(self, request: _Request, repo_type: str, repo_id: str, name: str) -> Response:
        starting_point = request.json().get("startingPoint")
        _validate_ref_name(name)
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if name in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{name}")
            repo.branches[name] = self._resolve(repo, starting_point or "main")
        return Response.json({})

    def handle_delete_branch(self, request: _Request, repo_type: str, repo_id: str, name: str) -> Response:
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if name == "main":
                raise HubError(403, "The default branch cannot be deleted")
            if name not in repo.branches:
                raise HubError(404, f"Invalid rev id: {name}", error_code="RevisionNotFound")
            del repo.branches[name]
        return Response.json({})

    def handle_create_tag(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> Response:
        tag = request.json().get("tag")
        if not isinstance(tag, str) or not tag:
            raise HubError(400, "create_tag needs a 'tag'")
        _validate_ref_name(tag)
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if tag in repo.tags:
                raise HubError(409, f"Tag already exists: {tag}")
            repo.tags[tag] = self._resolve(repo, revision)
        return Response.json({})

    def handle_delete_tag(self, request: _Request, repo_type: str, repo_id: str, name: str) -> Response:
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if repo.tags.pop(name, None) is None:
                raise HubError(404, f"Invalid rev id: {name}", error_code="RevisionNotFound")
        return Response.json({})

    # -- route handlers: uploads ---------------------------------------------------------------

    def handle_preupload(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> Response:
        if request.flag("create_pr"):
            raise HubError(400, "Pull requests (create_pr=True) are not supported by the local test hub")
        files = request.json().get("files")
        if not isinstance(files, list):
            raise HubError(400, "preupload needs a 'files' list")
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            tree = repo.commits[self._resolve(repo, revision)].tree
            lfs_patterns = self._lfs_patterns(repo, tree)
        answers = []
        for item in files:
            path = _validate_path(item.get("path"))
            sample = base64.b64decode(item.get("sample") or "")
            mode = _upload_mode(path, int(item.get("size") or 0), sample, lfs_patterns)
            existing = tree.get(path)
            answers.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": existing.etag if existing else None})
        return Response.json({"files": answers, "commitOid": self._resolve(repo, revision)})

    def _lfs_patterns(self, repo: Repo, tree: Mapping[str, TreeEntry]) -> list[str]:
        entry = tree.get(".gitattributes")
        if entry is None:
            return []
        text = self._blob_path(repo, entry).read_text(errors="replace")
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.split()]

    def handle_lfs_batch(self, request: _Request, repo_type: str, repo_id: str) -> Response:
        payload = request.json()
        if payload.get("operation") != "upload":
            raise HubError(400, f"Only the 'upload' LFS operation is supported, not {payload.get('operation')!r}")
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid")), obj.get("size")
            if not _SHA256_HEX.match(oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": oid, "size": size if isinstance(size, int) else 0, "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            stored = repo.storage / "lfs" / oid
            if stored.exists() and stored.stat().st_size == size:
                objects.append({"oid": oid, "size": size})  # already present: no upload action
                continue
            href = f"{self.url}/__lfs_upload/{repo_type}/{quote(repo_id)}/{oid}?size={size}&sig={self._sign(repo_type, repo_id, oid, size)}"
            objects.append({"oid": oid, "size": size, "authenticated": True, "actions": {"upload": {"href": href, "expires_in": 3600}}})
        return Response.json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, content_type="application/vnd.git-lfs+json")

    def _sign(self, repo_type: str, repo_id: str, oid: str, size: int) -> str:
        message = f"{repo_type}/{repo_id}/{oid}/{size}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def handle_lfs_upload(self, request: _Request, repo_type: str, repo_id: str, oid: str) -> Response:
        size_text, signature = request.query.get("size", ""), request.query.get("sig", "")
        if not size_text.isdigit() or not hmac.compare_digest(signature, self._sign(repo_type, repo_id, oid, int(size_text))):
            raise HubError(403, "Invalid or missing LFS upload signature")
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
        size = int(size_text)
        incoming = repo.storage / "incoming" / f"{oid}.{secrets.token_hex(4)}"
        digest, received = hashlib.sha256(), 0
        try:
            with open(incoming, "wb") as file:
                for chunk in request.handler.iter_body():
                    digest.update(chunk)
                    received += len(chunk)
                    file.write(chunk)
            if received != size or digest.hexdigest() != oid:
                raise HubError(400, f"LFS upload rejected: got {received} bytes with sha256 {digest.hexdigest()}, expected {size} bytes with sha256 {oid}")
            os.replace(incoming, repo.storage / "lfs" / oid)
        finally:
            incoming.unlink(missing_ok=True)
        return Response(status=200, headers={"ETag": f'"{oid}"'})

    def handle_commit(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> Response:
        if request.flag("create_pr"):
            raise HubError(400, "Pull requests (create_pr=True) are not supported by the local test hub")
        header, operations = _parse_commit_payload(request.body)
        with self._lock:
            repo = self._writable_repo(request, repo_type, repo_id)
            if revision not in repo.branches:
                if repo.resolve(revision) is not None:
                    raise HubError(400, f"Can only commit to a branch, not to {revision}")
                raise HubError(404, f"Invalid rev id: {revision}", error_code="RevisionNotFound")
            head = repo.branches[revision]
            parent = header.get("parentCommit")
            if parent and not head.startswith(parent):
                raise HubError(412, f"A commit has happened since {parent}: {revision} is at {head}. Please refresh and try again.")
            tree = dict(repo.commits[head].tree)
            for key, value in operations:
                self._apply_operation(repo, tree, key, value)
            commit = self._make_commit(head, str(header.get("summary") or ""), str(header.get("description") or ""), tree)
            repo.commits[commit.id] = commit
            repo.branches[revision] = commit.id  # the only step that makes the commit visible
        return Response.json(
            {
                "success": True,
                "commitOid": commit.id,
                "commitUrl": f"{self._repo_url(repo_type, repo_id)}/commit/{commit.id}",
                "commitMessage": commit.title,
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _apply_operation(self, repo: Repo, tree: dict[str, TreeEntry], key: str, value: dict[str, Any]) -> None:
        path = _validate_path(value.get("path"), allow_folder=(key == "deletedFolder"))
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, f"Unsupported encoding {value.get('encoding')!r} for {path}")
            tree[path] = self._store_regular(repo, base64.b64decode(value.get("content") or ""))
        elif key == "lfsFile":
            if value.get("algo", "sha256") != "sha256":
                raise HubError(400, f"Unsupported LFS algo {value.get('algo')!r}")
            tree[path] = self._lfs_entry(repo, str(value.get("oid")), value.get("size"))
        elif key == "deletedFile":
            if tree.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", error_code="EntryNotFound")
        elif key == "deletedFolder":
            prefix = path.rstrip("/") + "/"
            doomed = [p for p in tree if p.startswith(prefix)]
            if not doomed:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", error_code="EntryNotFound")
            for doomed_path in doomed:
                del tree[doomed_path]
        else:
            raise HubError(400, f"Unknown commit operation {key!r}")

    # -- route handlers: downloads -------------------------------------------------------------

    def handle_resolve(self, request: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit_id = self._resolve(repo, revision)
            entry = repo.commits[commit_id].tree.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path} at {revision}", error_code="EntryNotFound", headers={"X-Repo-Commit": commit_id})
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": commit_id,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
        }
        if entry.is_lfs:
            headers["X-Linked-Etag"] = f'"{entry.lfs_sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        start, length, status = _parse_range(request.headers.get("Range"), entry.size)
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{entry.size}"
        return Response(status=status, headers=headers, file_path=self._blob_path(repo, entry), file_start=start, file_length=length)


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def _atomic_write(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def _validate_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", part) for part in parts):
        raise HubError(400, f"Invalid repo id {repo_id!r}: expected 'namespace/name'")


def _validate_ref_name(name: str) -> None:
    if not name or name.startswith(("/", "refs/")) or ".." in name or any(c in name for c in " ~^:?*[\\"):
        raise HubError(400, f"Invalid reference name {name!r}")


def _validate_path(path: Any, allow_folder: bool = False) -> str:
    if not isinstance(path, str) or not path:
        raise HubError(400, "Missing file path")
    if allow_folder:
        path = path.rstrip("/")
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _upload_mode(path: str, size: int, sample: bytes, lfs_patterns: list[str]) -> str:
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


def _parse_commit_payload(body: bytes) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
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


def _parse_range(range_header: str | None, size: int) -> tuple[int, int, int]:
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
        raise HubError(416, f"Range {range_header!r} not satisfiable for {size} bytes", headers={"Content-Range": f"bytes */{size}"})
    return start, end - start + 1, 206


# ----------------------------------------------------------------------------------------------
# Client-side helpers for tests
# ----------------------------------------------------------------------------------------------

_CLIENT_ENV_TO_DROP = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HF_XET_CACHE",
    "TRANSFORMERS_CACHE",
    "HF_DATASETS_CACHE",
    "HF_MODULES_CACHE",
)


def hub_env(local_hub: LocalHub, token: str | None = "hf_test_dummy", hf_home: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Environment for a subprocess whose huggingface_hub talks to ``local_hub``.

    ``HF_ENDPOINT`` points at the server, Xet is disabled (classic LFS), ``HF_TOKEN`` is ``token`` (unset
    when None), ``HF_HOME`` is ``hf_home`` or a fresh temporary folder, and offline switches and cache
    overrides inherited from the test process are removed.
    """
    env = {key: value for key, value in os.environ.items() if key not in _CLIENT_ENV_TO_DROP}
    env.update(
        HF_ENDPOINT=local_hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HOME=str(hf_home) if hf_home is not None else local_hub.make_temp_dir("local-hub-hf-home-"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def run_hub_client(
    code: str,
    env: Mapping[str, str],
    args: Sequence[str] = (),
    timeout: float = 180,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code *args`` with ``env``; with ``check``, fail loudly (showing its output) on a non-zero exit."""
    command = [sys.executable, "-c", code, *args]
    result = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"hub client exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    return result


if pytest is not None:

    @pytest.fixture
    def local_hub() -> Iterator[LocalHub]:
        """A started :class:`LocalHub`, stopped (and its data deleted) after the test."""
        hub = LocalHub().start()
        try:
            yield hub
        finally:
            if hub.unknown_routes:
                print(f"[local-hub] unknown routes requested: {hub.unknown_routes}", file=sys.stderr)
            hub.stop()
