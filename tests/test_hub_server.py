"""Tests of the local Hub-protocol server, driven by the real huggingface_hub / transformers clients.

Client code runs in subprocesses (huggingface_hub reads HF_ENDPOINT etc. at import time and this test
process is offline); each client script prints one JSON line that the test checks, and the test also
checks the server's side (stored files, commits, request log).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hub_server import LocalHub, git_blob_sha1, hub_env, run_hub_client

BIG_SIZE = 11 * 1024 * 1024  # over the Hub's 10 MB LFS threshold

CLIENT_PRELUDE = """
import json, os, sys
from pathlib import Path
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
api = HfApi()
args = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}

def error_summary(error):
    response = getattr(error, "response", None)
    return {"type": type(error).__name__, "status": getattr(response, "status_code", None), "message": str(error)}
"""


def run_client(
    code: str, env: dict[str, str], args: dict[str, Any] | None = None, check: bool = True
) -> dict[str, Any]:
    """Run client code (after CLIENT_PRELUDE); return the JSON object it printed on its last line."""
    result = run_hub_client(CLIENT_PRELUDE + code, env, args=[json.dumps(args or {})], check=check)
    lines = result.stdout.strip().splitlines()
    assert lines, f"client printed nothing (exit {result.returncode})\n{result.stderr}"
    output = json.loads(lines[-1])
    output["_returncode"] = result.returncode
    output["_stderr"] = result.stderr
    return output


def make_folder(root: Path, big: bool = True) -> dict[str, bytes]:
    """A folder to upload: a small text file, a small binary by LFS pattern, optionally a >10 MB binary."""
    files = {
        "README.md": b"---\nlicense: mit\n---\n# Test repo\n",
        "config.json": json.dumps({"hidden_size": 8}).encode(),
        "weights/small.safetensors": os.urandom(4096),
    }
    if big:
        files["weights/big.bin"] = os.urandom(BIG_SIZE)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def http(
    hub: LocalHub, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A raw request from this process (no proxy), returning (status, headers, body) even for errors."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(hub.url + path, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# ------------------------------------------------------------------------------------------------
# Round trips with huggingface_hub
# ------------------------------------------------------------------------------------------------

UPLOAD_AND_DOWNLOAD = """
first = api.create_repo(args["repo_id"])
second = api.create_repo(args["repo_id"], exist_ok=True)
try:
    api.create_repo(args["repo_id"])
    duplicate = None
except HfHubHTTPError as error:
    duplicate = error_summary(error)
info = api.upload_folder(repo_id=args["repo_id"], folder_path=args["folder"], commit_message="add files")
again = api.upload_folder(repo_id=args["repo_id"], folder_path=args["folder"], commit_message="same files")
downloads = {name: Path(hf_hub_download(args["repo_id"], name)).read_bytes().hex() for name in args["names"]}
snapshot = snapshot_download(args["repo_id"])
snapshot_files = {str(p.relative_to(snapshot)): p.read_bytes().hex() for p in Path(snapshot).rglob("*") if p.is_file()}
print(json.dumps({
    "urls": [str(first), str(second)], "duplicate": duplicate,
    "oid": info.oid, "again_oid": again.oid, "commit_url": info.commit_url,
    "files": api.list_repo_files(args["repo_id"]),
    "downloads": downloads, "snapshot": snapshot_files,
}))
"""


def test_upload_folder_with_lfs_then_download(local_hub: LocalHub, tmp_path: Path) -> None:
    files = make_folder(tmp_path / "folder")
    repo_id = "test-user/roundtrip"
    out = run_client(
        UPLOAD_AND_DOWNLOAD,
        hub_env(local_hub),
        {"repo_id": repo_id, "folder": str(tmp_path / "folder"), "names": sorted(files)},
    )

    assert out["urls"] == [f"{local_hub.url}/{repo_id}"] * 2
    assert out["duplicate"]["status"] == 409
    assert out["files"] == [".gitattributes", *sorted(files)]
    for name, content in files.items():
        assert bytes.fromhex(out["downloads"][name]) == content, name
        assert bytes.fromhex(out["snapshot"][name]) == content, name
        assert local_hub.read_file(repo_id, name) == content
    # One commit on top of the initial one; the identical second upload_folder was a no-op.
    assert local_hub.count("commit") == 1
    assert out["again_oid"] == out["oid"] == local_hub.branches(repo_id)["main"]
    assert out["commit_url"] == f"{local_hub.url}/{repo_id}/commit/{out['oid']}"
    assert [c.title for c in local_hub.commits(repo_id)] == ["add files", "initial commit"]
    # Big and pattern-matched binaries went through LFS (batch + PUT), text files inline.
    assert (
        local_hub.file_entry(repo_id, "weights/big.bin").lfs_sha256
        == hashlib.sha256(files["weights/big.bin"]).hexdigest()
    )
    assert local_hub.file_entry(repo_id, "weights/small.safetensors").is_lfs
    assert not local_hub.file_entry(repo_id, "config.json").is_lfs
    assert local_hub.file_entry(repo_id, "config.json").blob_oid == git_blob_sha1(files["config.json"])
    assert local_hub.count("lfs_upload", status=200) == 2
    assert local_hub.count("validate_yaml") >= 1  # README.md metadata is validated before the commit
    assert local_hub.unknown_routes == [] and local_hub.server_errors == []


BRANCHES_AND_REVISIONS = """
repo_id, repo_type = args["repo_id"], args["repo_type"]
api.create_repo(repo_id, repo_type=repo_type)
main = api.upload_file(path_or_fileobj=b"v1", path_in_repo="data/value.txt", repo_id=repo_id, repo_type=repo_type)
api.upload_file(
    path_or_fileobj=bytes(range(256)) * 4, path_in_repo="data/table.parquet", repo_id=repo_id, repo_type=repo_type
)
api.create_branch(repo_id, branch="dev", repo_type=repo_type)
dev = api.upload_file(
    path_or_fileobj=b"v2", path_in_repo="data/value.txt", repo_id=repo_id, repo_type=repo_type, revision="dev"
)
def read(revision):
    return Path(hf_hub_download(repo_id, "data/value.txt", repo_type=repo_type, revision=revision)).read_text()
refs = api.list_repo_refs(repo_id, repo_type=repo_type)
snapshot = Path(snapshot_download(repo_id, repo_type=repo_type, revision="dev"))
print(json.dumps({
    "main_oid": main.oid, "dev_oid": dev.oid,
    "by_name": {"main": read("main"), "dev": read("dev")},
    "by_commit": {"main_oid": read(main.oid), "dev_oid": read(dev.oid)},
    "snapshot_dev": sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file()),
    "branches": sorted((b.name, b.target_commit) for b in refs.branches),
    "dev_commits": [c.title for c in api.list_repo_commits(repo_id, repo_type=repo_type, revision="dev")],
    "info_sha": api.repo_info(repo_id, repo_type=repo_type, revision="dev").sha,
    "tree_top": sorted(f.path for f in api.list_repo_tree(repo_id, repo_type=repo_type)),
    "exists": [api.file_exists(repo_id, name, repo_type=repo_type) for name in ("data/value.txt", "nope.txt")],
}))
"""


@pytest.mark.parametrize("repo_type", ["model", "dataset"])
def test_branches_and_revisions(local_hub: LocalHub, repo_type: str) -> None:
    repo_id = f"test-user/branches-{repo_type}"
    out = run_client(BRANCHES_AND_REVISIONS, hub_env(local_hub), {"repo_id": repo_id, "repo_type": repo_type})

    assert out["by_name"] == {"main": "v1", "dev": "v2"}
    assert out["by_commit"] == {"main_oid": "v1", "dev_oid": "v2"}
    assert out["snapshot_dev"] == [".gitattributes", "data/table.parquet", "data/value.txt"]
    main_head = local_hub.branches(repo_id, repo_type)["main"]
    assert out["branches"] == sorted([["dev", out["dev_oid"]], ["main", main_head]])
    assert out["dev_commits"][0].startswith("Upload data/value.txt") and len(out["dev_commits"]) == 4
    assert out["info_sha"] == out["dev_oid"]
    assert out["tree_top"] == [".gitattributes", "data"]
    assert out["exists"] == [True, False]
    assert local_hub.file_entry(repo_id, "data/table.parquet", repo_type).is_lfs  # by .gitattributes pattern
    assert local_hub.read_file(repo_id, "data/value.txt", repo_type, revision="main") == b"v1"
    assert local_hub.read_file(repo_id, "data/value.txt", repo_type, revision=out["dev_oid"]) == b"v2"
    if repo_type == "dataset":
        prefixes = ("/api/datasets/", "/datasets/", "/api/repos/", "/__lfs_upload/dataset/")
        assert [path for _, path in local_hub.requests if not path.startswith(prefixes)] == []
    assert local_hub.unknown_routes == [] and local_hub.server_errors == []


# ------------------------------------------------------------------------------------------------
# Faults
# ------------------------------------------------------------------------------------------------

UPLOAD_ONCE = """
api.create_repo(args["repo_id"], exist_ok=True)
try:
    info = api.upload_folder(repo_id=args["repo_id"], folder_path=args["folder"], commit_message="upload")
except Exception as error:
    print(json.dumps({"error": error_summary(error)}))
    sys.exit(3)
print(json.dumps({"oid": info.oid}))
"""


@pytest.mark.parametrize("fault", ["http_500", "dropped_connection"])
def test_failed_commit_is_not_retried_and_leaves_nothing_half_committed(
    local_hub: LocalHub, tmp_path: Path, fault: str
) -> None:
    """huggingface_hub POSTs the commit once (no backoff): the failure surfaces; a re-run completes."""
    files = make_folder(tmp_path / "folder", big=False)
    repo_id = "test-user/commit-fault"
    env = hub_env(local_hub)
    args = {"repo_id": repo_id, "folder": str(tmp_path / "folder")}
    if fault == "http_500":
        local_hub.fail_next("commit", status=500)
    else:
        local_hub.drop_connection_next("commit")

    failed = run_client(UPLOAD_ONCE, env, args, check=False)

    assert failed["_returncode"] == 3
    if fault == "http_500":
        assert failed["error"]["type"] == "HfHubHTTPError" and failed["error"]["status"] == 500
        assert "Injected failure (500) on commit" in failed["error"]["message"]
    else:
        assert failed["error"]["type"] in ("RemoteProtocolError", "WriteError", "ReadError")
    assert local_hub.count("commit") == 1  # not retried
    assert local_hub.list_files(repo_id) == [".gitattributes"]
    assert len(local_hub.commits(repo_id)) == 1
    assert (tmp_path / "folder" / "config.json").read_bytes() == files["config.json"]

    rerun = run_client(UPLOAD_ONCE, env, args)

    assert rerun["oid"] == local_hub.branches(repo_id)["main"]
    assert local_hub.list_files(repo_id) == [".gitattributes", *sorted(files)]
    assert len(local_hub.commits(repo_id)) == 2
    # The LFS object uploaded before the failed commit is reused: the batch answers without an upload action.
    assert local_hub.count("lfs_upload") == 1 and local_hub.count("lfs_batch") == 2


def test_commit_applied_but_response_lost_then_rerun_is_a_no_op(local_hub: LocalHub, tmp_path: Path) -> None:
    """The commit lands but the client sees a network error; re-running finds nothing to change."""
    files = make_folder(tmp_path / "folder", big=False)
    repo_id = "test-user/lost-response"
    env = hub_env(local_hub)
    args = {"repo_id": repo_id, "folder": str(tmp_path / "folder")}
    local_hub.lose_response_next("commit")

    failed = run_client(UPLOAD_ONCE, env, args, check=False)

    assert failed["_returncode"] == 3 and failed["error"]["type"] == "RemoteProtocolError"
    assert local_hub.list_files(repo_id) == [".gitattributes", *sorted(files)]
    head = local_hub.branches(repo_id)["main"]

    rerun = run_client(UPLOAD_ONCE, env, args)

    assert rerun["oid"] == head == local_hub.branches(repo_id)["main"]  # no second commit
    assert local_hub.count("commit") == 1 and len(local_hub.commits(repo_id)) == 2


TRANSIENT_UPLOAD_AND_DOWNLOAD = """
api.create_repo(args["repo_id"])
info = api.upload_folder(repo_id=args["repo_id"], folder_path=args["folder"])
path = hf_hub_download(args["repo_id"], "weights/big.bin")
print(json.dumps({"oid": info.oid, "sha256": __import__("hashlib").sha256(Path(path).read_bytes()).hexdigest()}))
"""


def test_transient_failures_are_retried(local_hub: LocalHub, tmp_path: Path) -> None:
    """preupload (500), the LFS PUT (connection reset mid-upload) and the file GET (reset mid-download) recover."""
    files = make_folder(tmp_path / "folder")
    repo_id = "test-user/transient"
    local_hub.fail_next("preupload", status=500)
    local_hub.drop_connection_next("lfs_upload")
    local_hub.drop_connection_next("resolve", method="GET")

    out = run_client(
        TRANSIENT_UPLOAD_AND_DOWNLOAD, hub_env(local_hub), {"repo_id": repo_id, "folder": str(tmp_path / "folder")}
    )

    assert local_hub.pending_faults() == {}
    assert out["sha256"] == hashlib.sha256(files["weights/big.bin"]).hexdigest()
    assert local_hub.count("preupload", status=500) == 1 and local_hub.count("preupload", status=200) == 1
    assert local_hub.count("lfs_upload", status=None) == 1 and local_hub.count("lfs_upload", status=200) == 2
    # The cut GET is retried. (http_get writes 10 MB chunks, so a cut at 5.5 MB restarts from byte 0;
    # Range requests themselves are checked in test_resolve_headers_errors_and_ranges.)
    gets = [r.status for r in local_hub.request_records if r.method == "GET" and r.path.endswith("/big.bin")]
    assert gets == [None, 200]
    assert local_hub.count("commit") == 1
    assert local_hub.read_file(repo_id, "weights/big.bin") == files["weights/big.bin"]


RETRY_MATRIX = """
def attempt(call):
    try:
        call()
        return "ok"
    except HfHubHTTPError as error:
        return error.response.status_code
repo_id = args["repo_id"]
print(json.dumps({
    "create_repo": attempt(lambda: api.create_repo(repo_id)),
    "create_repo_again": attempt(lambda: api.create_repo(repo_id)),
    "repo_info": attempt(lambda: api.repo_info(repo_id)),
    "list_repo_files": attempt(lambda: api.list_repo_files(repo_id)),
    "whoami": attempt(lambda: api.whoami()),
    "upload_lfs_file": attempt(
        lambda: api.upload_file(path_or_fileobj=bytes(100), path_in_repo="w.dat", repo_id=repo_id)
    ),
}))
"""


def test_which_client_calls_retry_a_500(local_hub: LocalHub) -> None:
    """Each call below meets one injected 500. huggingface_hub 2.4 retries the calls that go through
    `http_backoff` (tree listing, LFS batch and PUT, preupload) and not those made with a plain session
    request (create_repo, repo_info, whoami, and the commit POST itself: see the commit fault test)."""
    for kind in ("create_repo", "repo_info", "tree", "whoami", "lfs_upload"):
        local_hub.fail_next(kind, status=500)

    out = run_client(RETRY_MATRIX, hub_env(local_hub), {"repo_id": "test-user/retries"})

    assert {
        key: out[key]
        for key in ("create_repo", "create_repo_again", "repo_info", "list_repo_files", "whoami", "upload_lfs_file")
    } == {
        "create_repo": 500,  # not retried; nothing created ...
        "create_repo_again": "ok",  # ... so a second call creates it
        "repo_info": 500,
        "list_repo_files": "ok",  # retried
        "whoami": 500,
        "upload_lfs_file": "ok",  # the LFS PUT is retried
    }
    assert local_hub.pending_faults() == {}
    assert local_hub.count("tree", status=500) == 1 and local_hub.count("tree", status=200) == 1
    assert local_hub.count("lfs_upload", status=500) == 1 and local_hub.count("lfs_upload", status=200) == 1
    assert local_hub.file_entry("test-user/retries", "w.dat").is_lfs  # small but binary (NUL bytes) => LFS


DOWNLOAD_TWICE = """
content = "x" * args["size"]
api.create_repo(args["repo_id"])
api.upload_file(path_or_fileobj=content.encode(), path_in_repo="big.txt", repo_id=args["repo_id"])
results = []
for attempt in range(2):
    try:
        results.append(Path(hf_hub_download(args["repo_id"], "big.txt")).read_text() == content)
    except Exception as error:
        results.append(error_summary(error))
print(json.dumps({"results": results}))
"""


def test_connection_reset_mid_download_is_not_resumed_by_hf_hub_download(local_hub: LocalHub) -> None:
    """Documents huggingface_hub 2.4: http_get resumes after a truncated body (see the test above) but a
    TCP reset surfaces as httpx ReadError, which it does not catch; calling again then succeeds."""
    local_hub.drop_connection_next("resolve", method="GET", reset=True)

    out = run_client(DOWNLOAD_TWICE, hub_env(local_hub), {"repo_id": "test-user/reset", "size": 200_000})

    first, second = out["results"]
    assert first["type"] == "ReadError" and "reset" in first["message"].lower()
    assert second is True


AUTH_CHECKS = """
results = {}
for label, token in [("wrong", None), ("missing", False), ("right", args["right"])]:
    client = HfApi(token=token)
    try:
        client.create_repo(args["repo_id"], exist_ok=True)
        results[label] = {"ok": True, "whoami": client.whoami()["name"]}
    except Exception as error:
        results[label] = error_summary(error)
print(json.dumps(results))
"""


def test_wrong_or_missing_token_gets_a_clear_401(local_hub: LocalHub) -> None:
    local_hub.require_token("hf_right_token")

    out = run_client(
        AUTH_CHECKS,
        hub_env(local_hub, token="hf_wrong_token"),
        {"repo_id": "test-user/private", "right": "hf_right_token"},
    )

    assert out["wrong"]["status"] == 401 and "Invalid credentials in Authorization header" in out["wrong"]["message"]
    assert out["missing"]["status"] == 401
    assert out["right"] == {"ok": True, "whoami": "test-user"}
    assert "hf_wrong_token" not in out["wrong"]["message"]  # huggingface_hub does not echo tokens
    assert local_hub.count("create_repo", status=401) == 2 and local_hub.count("create_repo", status=200) == 1


READ_ONLY = """
url = api.create_repo(args["repo_id"], exist_ok=True)
try:
    api.upload_file(path_or_fileobj=b"mine now", path_in_repo="hack.txt", repo_id=args["repo_id"])
    result = None
except HfHubHTTPError as error:
    result = error_summary(error)
print(json.dumps({"url": str(url), "upload": result,
                  "readable": Path(hf_hub_download(args["repo_id"], ".gitattributes")).stat().st_size > 0}))
"""


def test_read_only_repo_answers_403(local_hub: LocalHub) -> None:
    repo_id = "someone-else/locked"
    local_hub.create_repo(repo_id, read_only=True)

    out = run_client(READ_ONLY, hub_env(local_hub), {"repo_id": repo_id})

    assert out["url"] == f"{local_hub.url}/{repo_id}"  # exist_ok works on a repo one may not write
    assert out["upload"]["status"] == 403 and "403 Forbidden" in out["upload"]["message"]
    assert out["readable"] is True
    assert local_hub.list_files(repo_id) == [".gitattributes"] and len(local_hub.commits(repo_id)) == 1


# ------------------------------------------------------------------------------------------------
# transformers push_to_hub / from_pretrained
# ------------------------------------------------------------------------------------------------

PUSH_AND_LOAD_TINY_BERT = """
import tempfile
import torch
from transformers import BertConfig, BertModel
torch.manual_seed(0)
config = BertConfig(
    vocab_size=99, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=64,
)
model = BertModel(config).eval()
info = model.push_to_hub(args["repo_id"], commit_message="tiny bert")
# Load into an empty cache: every byte comes back from the server.
loaded = BertModel.from_pretrained(args["repo_id"], cache_dir=tempfile.mkdtemp()).eval()
reference, state = model.state_dict(), loaded.state_dict()
ids = torch.arange(10).unsqueeze(0)
with torch.no_grad():
    same_output = torch.equal(model(input_ids=ids).last_hidden_state, loaded(input_ids=ids).last_hidden_state)
print(json.dumps({
    "commit": info.oid, "keys": len(reference),
    "missing": sorted(set(reference) ^ set(state)),
    "mismatched": sorted(k for k in reference if k in state and not torch.equal(reference[k], state[k])),
    "same_output": same_output,
}))
"""


def test_transformers_push_to_hub_and_from_pretrained_round_trip(local_hub: LocalHub) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    repo_id = "test-user/tiny-bert"

    out = run_client(PUSH_AND_LOAD_TINY_BERT, hub_env(local_hub), {"repo_id": repo_id})

    assert out["keys"] > 0 and out["missing"] == [] and out["mismatched"] == []
    assert out["same_output"] is True
    assert local_hub.count("commit") == 1 and out["commit"] == local_hub.branches(repo_id)["main"]
    assert {"config.json", "model.safetensors"} <= set(local_hub.list_files(repo_id))
    assert local_hub.file_entry(repo_id, "model.safetensors").is_lfs
    assert ("GET", f"/{repo_id}/resolve/{out['commit']}/model.safetensors") in local_hub.requests
    assert local_hub.unknown_routes == [] and local_hub.server_errors == []


# ------------------------------------------------------------------------------------------------
# Protocol details, checked with raw HTTP from this process
# ------------------------------------------------------------------------------------------------


def commit_body(summary: str, *operations: dict[str, Any], parent: str | None = None) -> bytes:
    header: dict[str, Any] = {"summary": summary, "description": ""}
    if parent:
        header["parentCommit"] = parent
    lines = [{"key": "header", "value": header}, *operations]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def file_op(path: str, content: bytes) -> dict[str, Any]:
    import base64

    return {
        "key": "file",
        "value": {"path": path, "content": base64.b64encode(content).decode(), "encoding": "base64"},
    }


def test_commit_is_atomic_and_checks_parent(local_hub: LocalHub) -> None:
    repo_id = "test-user/atomic"
    local_hub.create_repo(repo_id)
    initial = local_hub.branches(repo_id)["main"]
    commit_path = f"/api/models/{repo_id}/commit/main"

    missing_lfs = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "0" * 64, "size": 3}}
    status, _, body = http(local_hub, "POST", commit_path, commit_body("bad", file_op("a.txt", b"a"), missing_lfs))
    assert status == 400 and "was not uploaded" in json.loads(body)["error"]
    assert local_hub.list_files(repo_id) == [".gitattributes"]  # a.txt from the same commit is not visible

    status, _, body = http(local_hub, "POST", commit_path, commit_body("ok", file_op("a.txt", b"a"), parent=initial))
    assert status == 200 and json.loads(body)["commitOid"] == local_hub.branches(repo_id)["main"]

    status, _, _ = http(local_hub, "POST", commit_path, commit_body("stale", file_op("b.txt", b"b"), parent=initial))
    assert status == 412 and local_hub.list_files(repo_id) == [".gitattributes", "a.txt"]

    status, _, body = http(local_hub, "POST", commit_path + "?create_pr=1", commit_body("pr", file_op("c.txt", b"c")))
    assert status == 400 and "not supported" in json.loads(body)["error"]

    delete = {"key": "deletedFile", "value": {"path": "nope.txt"}}
    status, headers, _ = http(local_hub, "POST", commit_path, commit_body("del", delete))
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound"
    assert len(local_hub.commits(repo_id)) == 2


def test_resolve_headers_errors_and_ranges(local_hub: LocalHub) -> None:
    repo_id = "test-user/resolve"
    local_hub.create_repo(repo_id)
    content = b"0123456789"
    http(local_hub, "POST", f"/api/models/{repo_id}/commit/main", commit_body("add", file_op("dir/f.txt", content)))
    head = local_hub.branches(repo_id)["main"]

    status, headers, _ = http(local_hub, "HEAD", f"/{repo_id}/resolve/main/dir/f.txt")
    assert status == 200 and headers["X-Repo-Commit"] == head
    assert headers["ETag"] == f'"{git_blob_sha1(content)}"' and headers["Content-Length"] == "10"
    status, headers, body = http(
        local_hub, "GET", f"/{repo_id}/resolve/{head}/dir/f.txt", headers={"Range": "bytes=4-"}
    )
    assert status == 206 and body == b"456789" and headers["Content-Range"] == "bytes 4-9/10"

    for path, code in [
        ("/test-user/absent/resolve/main/x", "RepoNotFound"),
        (f"/{repo_id}/resolve/no-branch/dir/f.txt", "RevisionNotFound"),
        (f"/{repo_id}/resolve/main/absent.txt", "EntryNotFound"),
        (f"/datasets/{repo_id}/resolve/main/dir/f.txt", "RepoNotFound"),  # it is a model repo
    ]:
        status, headers, _ = http(local_hub, "HEAD", path)
        assert (status, headers.get("X-Error-Code")) == (404, code), path
    assert headers.get("X-Repo-Commit") is None

    status, headers, _ = http(local_hub, "HEAD", f"/{repo_id}/resolve/main/absent.txt")
    assert headers["X-Repo-Commit"] == head  # lets the client cache the non-existence


def test_unknown_routes_are_404_and_logged(local_hub: LocalHub) -> None:
    status, _, body = http(local_hub, "GET", "/api/spaces-hardware")
    assert status == 404 and json.loads(body)["route"] == "GET /api/spaces-hardware"
    assert local_hub.unknown_routes == [("GET", "/api/spaces-hardware")]
    assert local_hub.requests[-1] == ("GET", "/api/spaces-hardware")


def test_lfs_batch_and_upload_verify_content(local_hub: LocalHub) -> None:
    repo_id = "test-user/lfs"
    local_hub.create_repo(repo_id)
    content = os.urandom(1000)
    oid = hashlib.sha256(content).hexdigest()
    batch = json.dumps(
        {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": 1000}], "hash_algo": "sha256"}
    ).encode()
    status, _, body = http(local_hub, "POST", f"/{repo_id}.git/info/lfs/objects/batch", batch)
    assert status == 200
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    path = href[len(local_hub.url) :]

    tampered = content[:-1] + bytes([content[-1] ^ 1])  # always differs (b"x" was the last byte 1 time in 256)
    status, _, _ = http(local_hub, "PUT", path, tampered)
    assert status == 400 and local_hub.lfs_object_ids(repo_id) == []
    status, _, _ = http(local_hub, "PUT", path.replace("sig=", "sig=0"), content)
    assert status == 403
    status, _, _ = http(local_hub, "PUT", path, content)
    assert status == 200 and local_hub.lfs_object_ids(repo_id) == [oid]

    status, _, body = http(local_hub, "POST", f"/{repo_id}.git/info/lfs/objects/batch", batch)
    assert status == 200 and json.loads(body)["objects"] == [{"oid": oid, "size": 1000}]  # present: no action
