"""Talking to the Hub: the credential check, retries with backoff, one-commit uploads, and error mapping.

Every failure becomes an [`UploadError`] with an exit code; no message ever quotes the token (`scrub`).
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..common.errors import ExitCode, UploadError, first_line
from .folder import MARKER_FILE

T = TypeVar("T")
Log = Callable[[str], None]

TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
NO_TOKEN = "no Hugging Face token found: set HF_TOKEN or run `hf auth login`"


@dataclass
class PublishResult:
    """Where the folder went."""

    repo_id: str
    url: str
    revision: str
    commit_id: str
    commit_url: str | None
    committed: bool


def scrub(text: str) -> str:
    """`text` with the configured Hugging Face token, if any, replaced by ``<token>``."""
    from huggingface_hub import get_token

    token = get_token()
    return text.replace(token, "<token>") if token and len(token) >= 4 else text


def _transport_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name in ("httpx2", "httpx", "requests"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        for attr in ("TransportError", "ConnectionError", "Timeout"):
            if isinstance(getattr(module, attr, None), type):
                types.append(getattr(module, attr))
    return tuple(types)


def _status_of(error: BaseException) -> int | None:
    return getattr(getattr(error, "response", None), "status_code", None)


def _short_error(error: BaseException) -> str:
    status = _status_of(error)
    return f"HTTP {status}" if status else f"{type(error).__name__}: {first_line(error)}"


def is_transient(error: BaseException) -> bool:
    """Worth retrying: a connection failure or timeout, or HTTP 408/429/5xx (see `TRANSIENT_STATUS`)."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(error, HfHubHTTPError):
        return _status_of(error) in TRANSIENT_STATUS
    return isinstance(error, _transport_error_types())


def call_with_retries(
    action: Callable[[], T],
    what: str,
    retries: int = 5,
    wait: float = 1.0,
    max_wait: float = 30.0,
    log: Log = print,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Runs `action`, retrying transient failures (`is_transient`) up to `retries` times with exponential backoff
    starting at `wait` seconds (capped at `max_wait`). Other errors, and the last transient one, propagate."""
    attempt = 0
    while True:
        try:
            return action()
        except Exception as error:
            if attempt >= retries or not is_transient(error):
                raise
            attempt += 1
            delay = min(max_wait, wait * 2 ** (attempt - 1))
            log(f"{what}: transient failure ({_short_error(error)}); retry {attempt}/{retries} in {delay:.3g}s")
            sleep(delay)


def hub_error(error: BaseException, repo_id: str | None) -> UploadError | None:
    """Maps a huggingface_hub / transport error to an [`UploadError`] (never quoting the token); None for any
    other exception, a bug that keeps its traceback."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalTokenNotFoundError, OfflineModeIsEnabled

    where = f" for {repo_id}" if repo_id else ""
    status = _status_of(error)
    if isinstance(error, UploadError):
        return error
    if isinstance(error, LocalTokenNotFoundError):
        return UploadError(NO_TOKEN, ExitCode.AUTH)
    if status == 401:
        return UploadError(
            f"authentication failed{where} (HTTP 401): the Hugging Face token (HF_TOKEN or `hf auth login`) was "
            f"rejected",
            ExitCode.AUTH,
        )
    if status == 403:
        return UploadError(
            f"permission denied{where} (HTTP 403): this token may not write to that repository or namespace",
            ExitCode.FORBIDDEN,
        )
    if isinstance(error, OfflineModeIsEnabled):
        return UploadError("cannot reach the Hub: HF_HUB_OFFLINE is set", ExitCode.NETWORK)
    if status is None and isinstance(error, _transport_error_types()):
        reason = _short_error(error)
        return UploadError(f"cannot reach the Hub{where}: no network connection ({reason})", ExitCode.NETWORK)
    if status is None and not isinstance(error, (HfHubHTTPError, HFValidationError)):
        return None
    detail = f"HTTP {status}: {first_line(error)}" if status else first_line(error)
    return UploadError(f"the Hub refused the upload{where}: {detail}", ExitCode.HUB_ERROR)


def check_credentials(repo_id: str, log: Log = print) -> str | None:
    """Checks, before any slow work, that a token is configured and accepted.

    Only what makes publishing impossible stops here (no token, HTTP 401, no network); any other answer is left
    to the upload, which maps every Hub error.

    Returns:
        The account name, or None when the Hub could not say.

    Raises:
        UploadError: `AUTH` or `NETWORK`.
    """
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        raise UploadError(NO_TOKEN, ExitCode.AUTH)
    try:
        user = call_with_retries(lambda: HfApi().whoami(), "checking the token", retries=2, log=log)
    except Exception as error:
        mapped = hub_error(error, repo_id)
        if mapped is None:
            raise
        if mapped.exit_code in (ExitCode.AUTH, ExitCode.NETWORK):
            raise mapped from error
        log(f"could not check the token ({mapped.message}); trying the upload anyway")
        return None
    name = user.get("name", "?")
    log(f"Hub token accepted (account {name})")
    return name


def publish_folder(
    folder: Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    retries: int = 5,
    retry_wait: float = 1.0,
    log: Log = print,
) -> PublishResult:
    """Creates the repo (if missing) and the branch (if missing) and uploads `folder` in ONE commit.

    Every Hub call is retried on transient failures; the commit is retried as a whole (`upload_folder` is
    idempotent: files the repo already holds are skipped, so a retry after a lost reply makes no second commit).
    When nothing changed, no commit is made and the current head is returned (`committed` False).

    Raises:
        UploadError: 401 (`AUTH`), 403 (`FORBIDDEN`), no network (`NETWORK`), other Hub errors (`HUB_ERROR`).
    """
    from huggingface_hub import HfApi

    api = HfApi()
    revision = revision or "main"

    def retrying(action: Callable[[], T], what: str) -> T:
        return call_with_retries(action, what, retries=retries, wait=retry_wait, log=log)

    try:
        repo_url = retrying(lambda: api.create_repo(repo_id, private=private, exist_ok=True), "creating the repo")
        repo_id = repo_url.repo_id
        if revision != "main":
            retrying(lambda: api.create_branch(repo_id, branch=revision, exist_ok=True), f"creating branch {revision}")
        head = retrying(lambda: api.repo_info(repo_id, revision=revision).sha, "reading the repo head")
        info = retrying(
            lambda: api.upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                revision=revision,
                commit_message=commit_message,
                ignore_patterns=[MARKER_FILE, MARKER_FILE + ".tmp"],
            ),
            "uploading",
        )
    except Exception as error:
        mapped = hub_error(error, repo_id)
        if mapped is None:
            raise
        raise mapped from error
    url = str(repo_url) if revision == "main" else f"{repo_url}/tree/{urllib.parse.quote(revision, safe='')}"
    committed = info.oid != head
    return PublishResult(repo_id, url, revision, info.oid, info.commit_url if committed else None, committed)
