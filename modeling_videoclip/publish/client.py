"""Talking to the Hub: the credential check, retries with backoff, one-commit uploads, and error mapping to an
[`UploadError`] with an exit code; no message ever quotes the token (`scrub`)."""

from __future__ import annotations

import functools
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..common.downloads import Log, T
from ..common.errors import ExitCode, UploadError, first_line
from .folder import MARKER_FILE

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
    """Connection failures and timeouts, also those of the HTTP libraries huggingface_hub may use (an error of one
    can only exist once it is imported)."""
    modules = [sys.modules[name] for name in ("httpx2", "httpx", "requests") if name in sys.modules]
    found = [getattr(module, a, None) for module in modules for a in ("TransportError", "ConnectionError", "Timeout")]
    return (ConnectionError, TimeoutError, *(cls for cls in found if isinstance(cls, type)))


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
    action: Callable[[], T], what: str, retries: int = 5, wait: float = 1.0, max_wait: float = 30.0,
    log: Log = print, sleep: Callable[[float], None] = time.sleep,
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
        token = "the Hugging Face token (HF_TOKEN or `hf auth login`) was rejected"
        return UploadError(f"authentication failed{where} (HTTP 401): {token}", ExitCode.AUTH)
    if status == 403:
        denied = "this token may not write to that repository or namespace"
        return UploadError(f"permission denied{where} (HTTP 403): {denied}", ExitCode.FORBIDDEN)
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
    """Checks, before any slow work, that a token is configured and accepted; returns the account name, or None
    when the Hub could not say. Only what makes publishing impossible raises (`UploadError`: `AUTH`, `NETWORK`)."""
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
    folder: Path, repo_id: str, private: bool = False, revision: str | None = None, commit_message: str | None = None,
    retries: int = 5, retry_wait: float = 1.0, log: Log = print,
) -> PublishResult:
    """Creates the repo and the branch (if missing) and uploads `folder` in ONE commit; no commit when nothing
    changed (`committed` False). Every Hub call is retried on transient failures, the commit as a whole
    (`upload_folder` skips files the repo holds, so a retry after a lost reply makes no second commit).

    Raises:
        UploadError: 401 (`AUTH`), 403 (`FORBIDDEN`), no network (`NETWORK`), other Hub errors (`HUB_ERROR`).
    """
    from huggingface_hub import HfApi

    api = HfApi()
    revision = revision or "main"
    retrying = functools.partial(call_with_retries, retries=retries, wait=retry_wait, log=log)
    try:
        repo_url = retrying(lambda: api.create_repo(repo_id, private=private, exist_ok=True), "creating the repo")
        repo_id = repo_url.repo_id
        if revision != "main":
            retrying(lambda: api.create_branch(repo_id, branch=revision, exist_ok=True), f"creating branch {revision}")
        head = retrying(lambda: api.repo_info(repo_id, revision=revision).sha, "reading the repo head")
        info = retrying(
            lambda: api.upload_folder(
                repo_id=repo_id, folder_path=str(folder), revision=revision, commit_message=commit_message,
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
