"""`LocalHub`: the server's lifecycle, test controls (faults, tokens, read-only repos), inspection and storage."""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .routes import RouteHandlers
from .server import ROUTE_KINDS, Handler, Request, RequestRecord, Server
from .storage import (
    BEARER,
    REPO_TYPES,
    SHA256_HEX,
    URL_PREFIXES,
    Commit,
    HubError,
    Repo,
    TreeEntry,
    atomic_write,
    default_gitattributes,
    git_blob_sha1,
    lfs_pointer,
    now_iso,
    validate_repo_id,
)


class LocalHub(RouteHandlers):
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
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._extra_dirs: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalHub:
        """Create the storage directory and serve on a free port in a background thread."""
        if self._server is not None:
            return self
        self._root = Path(tempfile.mkdtemp(prefix="local-hub-"))
        server = Server(("127.0.0.1", 0), Handler)
        server.hub = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="local-hub"
        )
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

    def __enter__(self) -> LocalHub:
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

    def drop_connection_next(
        self, route_kind: str, times: int = 1, method: str | None = None, reset: bool = False
    ) -> None:
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

    def create_repo(
        self, repo_id: str, repo_type: str = "model", private: bool = False, read_only: bool = False
    ) -> str:
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
        match = BEARER.match(authorization or "")
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
        validate_repo_id(repo_id)
        if (repo_type, repo_id) in self._repos:
            raise HubError(
                409, f"You already created this {repo_type} repo", extra={"url": self._repo_url(repo_type, repo_id)}
            )
        repo = Repo(repo_id, repo_type, private, now_iso(), self._repo_storage(repo_type, repo_id))
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

    def _readable_repo(self, request: Request, repo_type: str, repo_id: str) -> Repo:
        repo = self._get_repo(repo_type, repo_id)
        if repo.private and not BEARER.match(request.headers.get("Authorization") or ""):
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", error_code="RepoNotFound")
        return repo

    def _writable_repo(self, request: Request, repo_type: str, repo_id: str) -> Repo:
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
            atomic_write(path, content)
        return TreeEntry(size=len(content), blob_oid=oid)

    def _lfs_entry(self, repo: Repo, sha256: str, size: int | None) -> TreeEntry:
        path = repo.storage / "lfs" / sha256
        if not SHA256_HEX.match(sha256) or not path.exists():
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
        return Commit(digest.hexdigest(), parent, title, message, now_iso(), dict(tree))
