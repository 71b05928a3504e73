"""The local Hub's HTTP layer: routing, request bodies, responses, and the injected network faults."""

from __future__ import annotations

import io
import json
import socket
import struct
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from .storage import HubError

if TYPE_CHECKING:
    from .hub import LocalHub

#: URL segments naming a repo type: ``/api/{plural}/...`` and ``/{prefix}/{ns}/{name}/resolve/...``.
API_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX_SEGMENTS = {"datasets": "dataset", "spaces": "space"}

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
    def json(cls, data: Any, status: int = 200, content_type: str = "application/json") -> Response:
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
        return Route(
            "lfs_upload", "handle_lfs_upload", {"repo_type": repo_type, "repo_id": f"{namespace}/{name}", "oid": oid}
        )
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
        return Route(
            "resolve",
            "handle_resolve",
            {"repo_type": repo_type, "repo_id": repo_id, "revision": segments[3], "path": path},
        )
    return None


# ----------------------------------------------------------------------------------------------
# The HTTP layer
# ----------------------------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hub: LocalHub


class Handler(BaseHTTPRequestHandler):
    """Parses requests, applies auth and injected faults, calls the LocalHub route handlers."""

    protocol_version = "HTTP/1.1"
    server: Server
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
                raise HubError(
                    404, f"Local test hub: no route for {method} {path}", extra={"route": f"{method} {path}"}
                )
            if kind != "lfs_upload":  # LFS uploads carry a signed URL instead of the token, like S3.
                hub._check_auth(self.headers.get("Authorization"), kind)
            handler: Callable[..., Response] = getattr(hub, route.handler)
            response = handler(request=Request(method, self.headers, body, query, self), **route.args)
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
            response = self.server.hub.handle_resolve(
                request=Request("GET", self.headers, b"", query, self), **route.args
            )
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
    return Response(
        status=error.status, headers={"Content-Type": "application/json", **headers}, body=json.dumps(body).encode()
    )


@dataclass
class Request:
    """What a route handler may look at."""

    method: str
    headers: Any
    body: bytes
    query: dict[str, str]
    handler: Handler

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as error:
            raise HubError(400, f"Request body is not valid JSON: {error}") from error

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")
