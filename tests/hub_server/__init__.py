"""A local Hugging Face Hub-protocol server for tests (standard library only, plus pytest for the fixture).

It speaks the subset of the Hub HTTP protocol that ``huggingface_hub`` 2.4 uses (with ``HF_HUB_DISABLE_XET=1``)
for ``create_repo``, ``upload_folder``/``create_commit`` (regular and classic LFS uploads), ``push_to_hub``,
``hf_hub_download``, ``snapshot_download``, ``from_pretrained``, ``list_repo_files``, ``repo_info``, branches
and tags, for model, dataset and space repos.

* `storage`: files, commits and repos, the Hub's LFS rules, request validation;
* `server`: the HTTP layer (routing, bodies, responses, injected network faults);
* `routes`: the route handlers;
* `hub`: `LocalHub`, which serves on 127.0.0.1 (a free port, a background thread), keeps file contents in a
  temporary directory (regular blobs by git sha1, LFS objects by sha256) and repository metadata in memory
  behind one lock, so a commit becomes visible atomically or not at all.

Tests inject faults (``fail_next``, ``drop_connection_next``, ``lose_response_next``), require a token
(``require_token``), mark repos read-only (``set_read_only``), and inspect what happened (``requests``,
``count``, ``list_files``, ``read_file``, ``commits``).

huggingface_hub reads ``HF_ENDPOINT`` and friends at import time and the test process runs with
``HF_HUB_OFFLINE=1`` (see ``conftest.py``), so client code runs in subprocesses whose environment comes from
`hub_env`; `run_hub_client` runs one.

Not implemented: pull requests (``create_pr=True`` is refused with a 400), Xet storage, multipart LFS uploads,
pagination, gated repos, organisations/permissions beyond one token and read-only flags.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence

import pytest

from .hub import LocalHub
from .storage import Commit, TreeEntry, git_blob_sha1

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


def hub_env(
    local_hub: LocalHub, token: str | None = "hf_test_dummy", hf_home: str | os.PathLike[str] | None = None
) -> dict[str, str]:
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
    """Runs ``python -c code *args`` with ``env``; with ``check``, fails loudly (showing its output) on a non-zero
    exit."""
    command = [sys.executable, "-c", code, *args]
    result = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"hub client exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


@pytest.fixture
def local_hub() -> Iterator[LocalHub]:
    """A started `LocalHub`, stopped (and its data deleted) after the test."""
    hub = LocalHub().start()
    try:
        yield hub
    finally:
        if hub.unknown_routes:
            print(f"[local-hub] unknown routes requested: {hub.unknown_routes}", file=sys.stderr)
        hub.stop()


__all__ = ["Commit", "LocalHub", "TreeEntry", "git_blob_sha1", "hub_env", "local_hub", "run_hub_client"]
