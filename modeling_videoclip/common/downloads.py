"""Files from the network: cached, verified checkpoint downloads, and Hub loads that fail fast offline."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .constants import (
    MUGEN_CHECKPOINT_URL,
    MUGEN_LIGHTNING_CHECKPOINT_URL,
    PRETRAINED_VIDEO_ENCODER_URL,
    S3D_KINETICS400_URL,
    cache_root,
)
from .errors import DownloadError, ExitCode

T = TypeVar("T")
Log = Callable[[str], None]


@dataclass(frozen=True)
class KnownFile:
    """What is known in advance about a downloadable file; None where it is not known."""

    size: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None


#: Expected sizes / digests of the public files. The S3 checkpoints could not be reached when this was written: their
#: size and sha256 are unknown (None), so downloads are checked against the announced size and the sha256 printed.
KNOWN_FILES: dict[str, KnownFile] = {
    MUGEN_CHECKPOINT_URL: KnownFile(),
    MUGEN_LIGHTNING_CHECKPOINT_URL: KnownFile(),
    # torch.hub's convention, which torchvision follows (and checks on download): <name>-<first hex digits of the
    # sha256>.<ext>; torchmultimodal's MUGEN S3D file is named the same way.
    S3D_KINETICS400_URL: KnownFile(sha256_prefix="d76dad2f"),
    PRETRAINED_VIDEO_ENCODER_URL: KnownFile(sha256_prefix="b0e27f13"),
}


@dataclass
class CheckpointFile:
    """A checkpoint on local disk, where it came from and its sha256."""

    path: Path
    sha256: str
    source: str
    url: str | None = None

    @property
    def name(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name if self.url else self.path.name


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_checkpoint(
    source: str, cache_dir: str | os.PathLike | None = None, sha256: str | None = None, progress: bool = True,
    log: Log = print,
) -> CheckpointFile:
    """A local file path as is, or an http(s) URL downloaded into `cache_dir` (reused when it verifies).

    Args:
        cache_dir: the download cache. Defaults to ``cache_root() / "checkpoints"``.
        sha256: the expected sha256. Defaults to the digest in `KNOWN_FILES`, else unchecked (and printed).
        progress: show a tqdm progress bar while downloading. Defaults to True.

    Raises:
        DownloadError: a malformed `sha256` (`USAGE`), a missing file (`CHECKPOINT_UNREADABLE`), no network
            (`NETWORK`), an HTTP error or a size/sha256 mismatch (`DOWNLOAD_FAILED`).
    """
    expected = KNOWN_FILES.get(source, KnownFile())
    sha256 = (sha256 or expected.sha256 or "").lower() or None
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise DownloadError(f"--sha256 must be 64 hex digits, got {sha256!r}", ExitCode.USAGE)
    if urllib.parse.urlparse(source).scheme not in ("http", "https"):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DownloadError(f"checkpoint {source!r} does not exist (pass a file path or an http(s) URL)",
                                ExitCode.CHECKPOINT_UNREADABLE)
        digest = file_sha256(path)
        _check_digest(source, digest, sha256, expected)
        return CheckpointFile(path=path, sha256=digest, source=source)
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "checkpoints"
    filename = Path(urllib.parse.urlparse(source).path).name or "checkpoint.pt"
    target = cache_dir / hashlib.sha256(source.encode()).hexdigest()[:16] / filename
    sidecar = Path(str(target) + ".sha256")  # the digest of the download, so a cache hit need not re-hash it
    if target.is_file():
        fresh = sidecar.is_file() and sidecar.stat().st_mtime >= target.stat().st_mtime
        digest = sidecar.read_text().strip() if fresh else file_sha256(target)
        size_ok = expected.size is None or target.stat().st_size == expected.size
        prefix_ok = expected.sha256_prefix is None or digest.startswith(expected.sha256_prefix)
        if size_ok and prefix_ok and sha256 in (None, digest):
            log(f"Using cached download {target}")
            return CheckpointFile(path=target, sha256=digest, source=source, url=source)
        log(f"Cached {target} does not verify; downloading again")
        target.unlink()
    digest = _download(source, target, expected, progress)
    _check_digest(source, digest, sha256, expected, downloaded=target)
    sidecar.write_text(digest + "\n")
    log(f"Downloaded {source} ({target.stat().st_size} bytes, sha256 {digest})")
    return CheckpointFile(path=target, sha256=digest, source=source, url=source)


def _check_digest(source: str, digest: str, sha256: str | None, expected: KnownFile, downloaded: Path | None = None):
    if sha256 is not None and digest != sha256:
        problem = f"sha256 {digest} differs from the expected {sha256}"
    elif expected.sha256_prefix is not None and not digest.startswith(expected.sha256_prefix):
        problem = f"sha256 {digest} does not start with the expected {expected.sha256_prefix}"
    else:
        return
    if downloaded is not None:
        downloaded.unlink(missing_ok=True)
    raise DownloadError(f"checkpoint {source}: {problem}")


def _download(url: str, target: Path, expected: KnownFile, progress: bool, timeout: float = 60) -> str:
    """Streams `url` into `target` through a ``.incomplete`` file; returns the sha256. Verifies the size."""
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(str(target) + ".incomplete")
    digest, received, announced = hashlib.sha256(), 0, None
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "videoclip-hf-upload"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(partial, "wb") as handle:
            length = response.headers.get("Content-Length")
            announced = int(length) if length and length.isdigit() else None
            total = expected.size if announced is None else announced
            style = {"unit": "B", "unit_scale": True, "unit_divisor": 1024, "disable": not progress}
            with tqdm(total=total, desc=target.name, **style) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    handle.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise DownloadError(f"cannot download {url}: no network connection ({reason})", ExitCode.NETWORK) from error
    for what, want in (("announced", announced), ("expected", expected.size)):
        if want is not None and received != want:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"download of {url} is incomplete: got {received} bytes, {what} {want}")
    os.replace(partial, target)
    return digest.hexdigest()


def hub_reachable(timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the Hub endpoint (``HF_ENDPOINT``) opens within `timeout` seconds: a quick check,
    so that a machine without network fails in seconds instead of after huggingface_hub's retries. False in
    offline mode; assumed true behind an HTTP(S) proxy, which this probe cannot go through."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = urllib.parse.urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def from_hub_or_cache(load: Callable[..., T], source: str, what: str) -> T:
    """``load(source)`` for a local path or a reachable Hub, else ``load(source, local_files_only=True)``; raises
    `DownloadError` (`NETWORK`) when that cache misses too."""
    if Path(source).expanduser().exists() or hub_reachable():
        return load(source)
    try:
        return load(source, local_files_only=True)
    except (OSError, ValueError) as error:
        raise DownloadError(f"cannot load the {what} {source!r}: no network connection to the Hub and it is not in "
                            f"the local cache (pass a local folder or file instead)", ExitCode.NETWORK) from error


def looks_offline(error: BaseException) -> bool:
    """Whether a loader's error (or its cause) reads like a network failure rather than a bad input."""
    if isinstance(error, DownloadError) and error.exit_code == ExitCode.NETWORK:
        return True
    text = f"{error!r} {error.__cause__!r}".lower()
    return any(word in text for word in ("connect", "offline", "network", "resolve", "timed out", "timeout"))
