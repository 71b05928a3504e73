"""End-to-end tests of ``upload.py`` (and ``modeling_videoclip.publish``) against the local Hub-protocol server.

Everything that talks to the Hub runs in a subprocess whose environment comes from ``hub_env`` (huggingface_hub
reads ``HF_ENDPOINT`` at import time; this process is offline). Loading checks run in a fresh process in which
``modeling_videoclip`` cannot be imported (``publish/reload_check.py``'s blocker), so only the remote code in the
repo can be used.

Checkpoints are the real torchmultimodal layouts, written from the reference model (``benchmarks/reference.py``)
with a tiny DistilBERT text tower (bert-base-uncased's 30522-token vocabulary, width 32, 2 layers) so files stay
small; the matching ``VideoCLIPConfig`` is given to ``upload.py`` with ``--config``. S3D cannot shrink.

To keep the suite fast, the expensive steps (conversion + fresh-process reload check, the pushes, one loader
process for all downloads) run once per module in fixtures; later runs reuse the verified output folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hub_server import LocalHub, hub_env
from tiny_videoclip import bert_vocab_path
from transformers import DistilBertConfig

import upload
from benchmarks.reference import build_reference_videoclip, randomize_batch_norm_stats
from modeling_videoclip import VideoCLIPConfig
from modeling_videoclip.common import downloads, models
from modeling_videoclip.common.constants import (
    MUGEN_CHECKPOINT_URL,
    MUGEN_LIGHTNING_CHECKPOINT_URL,
    PRETRAINED_VIDEO_ENCODER_URL,
)
from modeling_videoclip.common.errors import ExitCode, VideoCLIPError
from modeling_videoclip.publish import card, client, folder, pipeline, reload_check, variants

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent
UPLOAD = REPO_ROOT / "upload.py"
REPO = "test/videoclip-mugen"
CAPTION_IDS = [101, 14757, 2368, 14523, 3031, 1037, 18283, 1012, 102]  # "Mugen jumps onto a ledge." (reference note)
HUB_FILES = {
    "README.md",
    "config.json",
    "configuration_videoclip.py",
    "model.safetensors",
    "modeling_videoclip.py",
    "pipeline_videoclip.py",
    "processing_videoclip.py",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "video_processing_videoclip.py",
}

#: The folder of ``reload_check``: the one PYTHONPATH entry of a fresh-process loader.
RELOAD_CHECK_DIR = str(Path(reload_check.__file__).parent)
#: Starts every fresh-process loader: the real blocker makes the package (and upload.py) unimportable there.
BLOCK_PACKAGE = r'''
import sys
import reload_check
reload_check.block_package()
try:
    import modeling_videoclip
    raise SystemExit("modeling_videoclip is importable")
except ModuleNotFoundError:
    pass
'''


# ------------------------------------------------------------------------------------------------------------------
# Helpers and module fixtures
# ------------------------------------------------------------------------------------------------------------------


def run_upload(
    local: LocalHub | None, *args: str, token: str | None = "hf_test_dummy", cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``python upload.py ...`` in a subprocess (against `local` when given) with fast retries."""
    env = hub_env(local, token=token) if local is not None else {**os.environ}
    command = [sys.executable, str(UPLOAD), "--no-progress", "--retry-wait", "0.05", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=400)


def output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def error_line(result: subprocess.CompletedProcess | str) -> str:
    text = result if isinstance(result, str) else result.stderr
    lines = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, f"expected exactly one error line:\n{text}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file (the marker included)."""
    return {
        p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _api_get(local: LocalHub, path: str) -> dict:
    request = urllib.request.Request(local.url + path, headers={"Authorization": "Bearer hf_test_dummy"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


class _FileServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve_directory(directory: Path) -> tuple[_FileServer, str, list[str]]:
    """A plain HTTP file server on 127.0.0.1 (stands in for the S3 bucket); returns it, its URL and a request log."""
    log: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def do_GET(self):  # noqa: N802
            log.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = _FileServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", log


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Reference-model checkpoints in the real layouts, the matching config, and the reference model itself."""
    root = tmp_path_factory.mktemp("assets")
    text_config = DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=37)
    torch.manual_seed(0)
    reference = build_reference_videoclip(text_config).eval()
    randomize_batch_norm_stats(reference)
    state = reference.state_dict()
    torch.save(state, root / "videoclip_mugen.pt")
    lightning = {
        "state_dict": {
            **{f"model.{k}": v for k, v in state.items()},
            "contrastive_loss.logit_scale": torch.tensor(2.5),
        },
        "epoch": 3,
        "global_step": 1200,
    }
    torch.save(lightning, root / "videoclip_lightning_mugen.pt")
    torch.save({**lightning, "hyper_parameters": argparse.Namespace(lr=1e-3)}, root / "lightning_with_objects.pt")
    VideoCLIPConfig(text_config=text_config.to_dict()).to_json_file(root / "tiny_config.json")
    return SimpleNamespace(root=root, reference=reference, config=root / "tiny_config.json", vocab=bert_vocab_path())


@pytest.fixture(scope="module")
def module_hub():
    with LocalHub() as server:
        yield server


@pytest.fixture(scope="module")
def published(assets, module_hub, tmp_path_factory):
    """upload.py run twice against one repo: main (checkpoint downloaded over HTTP), then branch ``dev``."""
    work = tmp_path_factory.mktemp("published")
    server, base_url, requests = serve_directory(assets.root)
    try:
        common = ["--config", str(assets.config), "--tokenizer", assets.vocab, "--cache-dir", str(work / "cache")]
        checkpoint = f"{base_url}/videoclip_mugen.pt"
        out = work / "videoclip-mugen"
        main_args = ["--checkpoint", checkpoint, *common, "--output-dir", str(out), "--repo-id", REPO, "--private"]
        main = run_upload(module_hub, *main_args)
        assert main.returncode == 0, output(main)
        main_snapshot = snapshot(out)
        main_head = module_hub.branches(REPO)["main"]
        dev_args = ["--checkpoint", checkpoint, *common, "--output-dir", str(out), "--repo-id", REPO]
        dev = run_upload(module_hub, *dev_args, "--revision", "dev")
        assert dev.returncode == 0, output(dev)
    finally:
        server.shutdown()
        server.server_close()
    return SimpleNamespace(
        out=out, main=main, main_args=main_args, dev=dev, main_snapshot=main_snapshot, main_head=main_head,
        downloads=list(requests), common=common, checkpoint=checkpoint,
    )


PUSHER = r'''
import json, sys
import torch
sys.path.insert(0, sys.argv[2])
from huggingface_hub import HfApi
from tiny_videoclip import CAPTIONS, tiny_model, tiny_processor
from modeling_videoclip.publish.reload_check import state_digest

processor = tiny_processor()
inputs = processor(text=CAPTIONS, return_tensors="pt")
result = {}
for revision, seed in (("main", 0), ("dev", 1)):
    model = tiny_model(seed=seed)
    if revision != "main":
        HfApi().create_branch("test/pushed", branch=revision, exist_ok=True)
    model.push_to_hub("test/pushed", revision=revision)
    processor.push_to_hub("test/pushed", revision=revision)
    with torch.no_grad():
        text = model.get_text_features(**inputs).pooler_output
    result[revision] = {"digest": state_digest(model), "text_embeds": text}
torch.save(result, sys.argv[1])
'''

LOADER = BLOCK_PACKAGE + r'''
import hashlib, json, re
import torch
from huggingface_hub import HfApi, hf_hub_download
from transformers import AutoModel, AutoProcessor

out_path, repo = sys.argv[1], sys.argv[2]
result = {}

# 1. The model card's usage code, exactly as published, loads the repo and runs.
readme = open(hf_hub_download(repo, "README.md")).read()
code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
scope = {}
exec(compile(code, "README.md", "exec"), scope)
model, processor, inputs, outputs = scope["model"], scope["processor"], scope["inputs"], scope["outputs"]
result["card"] = {
    "input_ids": inputs["input_ids"],
    "attention_mask": inputs["attention_mask"],
    "pixel_values_videos": inputs["pixel_values_videos"],
    "text_embeds": outputs.text_embeds,
    "video_embeds": outputs.video_embeds,
    "model_module": type(model).__module__,
    "processor_module": type(processor).__module__,
    "video_processor_module": type(processor.video_processor).__module__,
    "caption_ids": processor(text=["Mugen jumps onto a ledge."])["input_ids"][0].tolist(),
}

from pathlib import Path
from huggingface_hub import constants

def loaded_commit(repo_id, revision):
    """The commit the cache resolved `revision` to, and the files from_pretrained fetched from it."""
    folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    commit = (folder / "refs" / revision).read_text().strip()
    return commit, sorted(p.name for p in (folder / "snapshots" / commit).iterdir())

# 2. The branch upload.py wrote, by revision.
dev = AutoModel.from_pretrained(repo, revision="dev", trust_remote_code=True)
dev_commit, dev_files = loaded_commit(repo, "dev")
dev_readme = open(hf_hub_download(repo, "README.md", revision="dev")).read()
result["dev"] = {"commit": dev_commit, "files": dev_files, "readme_has_revision": 'revision="dev"' in dev_readme}

# 3. The push_to_hub round trip, main and dev.
from reload_check import state_digest
captions = json.loads(sys.argv[3])
for revision in ("main", "dev"):
    pushed = AutoModel.from_pretrained("test/pushed", revision=revision, trust_remote_code=True).eval()
    pushed_processor = AutoProcessor.from_pretrained("test/pushed", revision=revision, trust_remote_code=True)
    with torch.no_grad():
        text = pushed.get_text_features(**pushed_processor(text=captions, return_tensors="pt")).pooler_output
    result["pushed_" + revision] = {
        "digest": state_digest(pushed),
        "text_embeds": text,
        "commit": loaded_commit("test/pushed", revision)[0],
        "module": type(pushed).__module__,
    }
torch.save(result, out_path)
'''


@pytest.fixture(scope="module")
def pushed(module_hub, tmp_path_factory):
    """``model.push_to_hub`` / ``processor.push_to_hub`` of two tiny models, to main and to branch ``dev``."""
    path = tmp_path_factory.mktemp("pushed") / "pushed.pt"
    result = subprocess.run(
        [sys.executable, "-c", PUSHER, str(path), str(TESTS_DIR)],
        env=hub_env(module_hub),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, output(result)
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def loaded(published, pushed, module_hub, tmp_path_factory):
    """One fresh process without the package that loads everything the other fixtures published."""
    from tiny_videoclip import CAPTIONS

    work = tmp_path_factory.mktemp("loader")
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(work / "loaded.pt"), REPO, json.dumps(CAPTIONS)],
        env={**hub_env(module_hub), "PYTHONPATH": RELOAD_CHECK_DIR},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, output(result)
    return torch.load(work / "loaded.pt", weights_only=True)


# ------------------------------------------------------------------------------------------------------------------
# Publishing and loading back
# ------------------------------------------------------------------------------------------------------------------


def test_upload_writes_complete_hub_folder_and_uploads_it_in_one_commit(published, module_hub):
    out = published.out
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == HUB_FILES | {folder.MARKER_FILE}

    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "videoclip" and config["architectures"] == ["VideoCLIPModel"]
    assert config["auto_map"] == {
        "AutoConfig": "configuration_videoclip.VideoCLIPConfig",
        "AutoModel": "modeling_videoclip.VideoCLIPModel",
    }
    processor_config = json.loads((out / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"] == "processing_videoclip.VideoCLIPProcessor"
    assert processor_config["video_processor"]["num_frames"] == 32
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 512

    # The checkpoint came over HTTP, once, through the cache.
    assert published.downloads == ["/videoclip_mugen.pt"]
    assert "Downloaded http://127.0.0.1" in published.main.stdout
    assert "Reload check passed" in published.main.stdout

    # Uploaded: one commit on top of the repo's initial commit, holding exactly the local bytes (no marker).
    main_commits = module_hub.commits(REPO, revision=published.main_head)
    assert len(main_commits) == 2
    assert set(module_hub.list_files(REPO, revision=published.main_head)) == HUB_FILES | {".gitattributes"}
    for name in HUB_FILES - {"README.md"}:
        assert module_hub.read_file(REPO, name, revision=published.main_head) == (out / name).read_bytes(), name
    assert module_hub.file_entry(REPO, "model.safetensors").is_lfs
    assert f"Uploaded to {module_hub.url}/{REPO}\n" in published.main.stdout
    head = published.main_head
    assert f"Commit {head}: {module_hub.url}/{REPO}/commit/{head}" in published.main.stdout
    assert not module_hub.server_errors and not module_hub.unknown_routes
    assert _api_get(module_hub, f"/api/models/{REPO}")["private"] is True
    for run in (published.main, published.dev):
        assert "hf_test_dummy" not in run.stdout + run.stderr  # the token never shows


def test_model_card_metadata_and_usage(published, module_hub):
    import yaml

    readme = module_hub.read_file(REPO, "README.md", revision=published.main_head).decode()
    metadata = yaml.safe_load(readme.split("---")[1])
    assert metadata["library_name"] == "transformers"
    assert metadata["license"] == "cc-by-nc-4.0"
    assert {"video-text-retrieval", "mugen", "videoclip"} <= set(metadata["tags"])
    assert metadata["datasets"] == ["mugen"]
    assert metadata["base_model"] == ["distilbert/distilbert-base-uncased"]
    # A local test checkpoint is not the published MUGEN file: its Recall@K must not be claimed.
    assert "model-index" not in metadata
    assert f'repo_id = "{REPO}"' in readme
    assert published.checkpoint in readme  # provenance names the source URL


def test_card_results_appear_for_the_official_checkpoint():
    """The published Recall@K are claimed in the metadata only for the checkpoint they were measured on
    (videoclip_lightning_mugen.pt, eval.yaml's protocol); a card of videoclip_mugen.pt shows them as that file's."""
    variant = variants.load_variant("videoclip-mugen")
    url = MUGEN_LIGHTNING_CHECKPOINT_URL
    measured = downloads.CheckpointFile(path=Path("x"), sha256="0" * 64, source=url, url=url)
    assert card.shows_results("auto", variant, measured)
    plain = downloads.CheckpointFile(path=Path("x"), sha256="0" * 64, source=MUGEN_CHECKPOINT_URL,
                                     url=MUGEN_CHECKPOINT_URL)
    assert not card.shows_results("auto", variant, plain)
    local = downloads.CheckpointFile(path=Path("x"), sha256="0" * 64, source="x.pt")
    assert not card.shows_results("auto", variant, local) and card.shows_results("yes", variant, local)

    import yaml

    config = variants.load_config(variant)
    text = card.render_model_card(variant, "org/videoclip-mugen", config, "provenance", include_results=True)
    metadata = yaml.safe_load(text.split("---")[1])
    assert metadata["pipeline_tag"] == "video-classification" and metadata["library_name"] == "transformers"
    (entry,) = metadata["model-index"]
    (result,) = entry["results"]  # both directions in one group: a Hub task id, the protocol as the config
    assert result["task"]["type"] == "video-classification"
    assert result["dataset"] == {"name": "MUGEN (full test set, manual annotations)", "type": "mugen",
                                 "config": "random-start", "split": "test"}
    values = {m["name"]: m["value"] for m in result["metrics"]}
    assert values == {
        "Recall@1 (text to video)": 8.26, "Recall@5 (text to video)": 22.34, "Recall@10 (text to video)": 31.68,
        "Recall@1 (video to text)": 10.79, "Recall@5 (video to text)": 25.70, "Recall@10 (video to text)": 34.60,
    }
    assert all(m["type"] == "recall" and m["args"]["k"] in (1, 5, 10) for m in result["metrics"])
    assert "| Text to video | 8.26 | 22.34 | 31.68 |" in text
    assert "videoclip_lightning_mugen.pt" in text and "random start frame per clip" in text
    assert '"zero-shot-video-classification", model="org/videoclip-mugen", trust_remote_code=True' in text
    assert "[org/videoclip-mugen-demo](https://huggingface.co/spaces/org/videoclip-mugen-demo)" in text

    unclaimed = card.render_model_card(variant, "org/videoclip-mugen", config, "provenance", include_results=False)
    assert "model-index" not in unclaimed.split("---")[1]
    assert "| Text to video | 8.26 | 22.34 | 31.68 |" in unclaimed and "These figures belong to" in unclaimed
    # The same figures, keyed as the retrieval metrics, for `videoclip evaluate`'s comparison.
    assert variants.published_results() == {
        "text_to_video/R@1": 8.26, "text_to_video/R@5": 22.34, "text_to_video/R@10": 31.68,
        "video_to_text/R@1": 10.79, "video_to_text/R@5": 25.70, "video_to_text/R@10": 34.60,
    }
    assert variants.published_results("videoclip-base") == {}


def test_fresh_process_loads_uploaded_model_and_processor_equal_to_reference(loaded, assets):
    card = loaded["card"]
    assert card["model_module"].startswith("transformers_modules.")
    assert card["processor_module"].startswith("transformers_modules.")
    assert card["video_processor_module"].startswith("transformers_modules.")
    assert card["caption_ids"] == CAPTION_IDS
    assert tuple(card["pixel_values_videos"].shape) == (1, 32, 3, 224, 224)

    reference = assets.reference
    with torch.no_grad():
        text = torch.nn.functional.normalize(reference.encoder_a(card["input_ids"]), dim=-1)
        video = torch.nn.functional.normalize(reference.encoder_b(card["pixel_values_videos"].transpose(1, 2)), dim=-1)
    torch.testing.assert_close(card["text_embeds"], text, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(card["video_embeds"], video, atol=1e-5, rtol=1e-4)


def test_upload_to_branch_and_load_by_revision(published, loaded, module_hub):
    branches = module_hub.branches(REPO)
    assert branches["main"] == published.main_head  # main untouched by the branch upload
    assert loaded["dev"]["commit"] == branches["dev"] != branches["main"]
    assert {"config.json", "model.safetensors", "modeling_videoclip.py"} <= set(loaded["dev"]["files"])
    assert loaded["dev"]["readme_has_revision"]
    assert "not re-verified" in published.dev.stdout  # only the card differs from the verified folder
    assert f"Uploaded to {module_hub.url}/{REPO}/tree/dev" in published.dev.stdout
    dev_commits = module_hub.commits(REPO, revision="dev")
    assert [c.id for c in dev_commits[1:]] == [c.id for c in module_hub.commits(REPO, revision=published.main_head)]


def test_push_to_hub_round_trip_of_model_and_processor(pushed, loaded, module_hub):
    assert pushed["main"]["digest"] != pushed["dev"]["digest"]
    for revision in ("main", "dev"):
        got = loaded[f"pushed_{revision}"]
        assert got["module"].startswith("transformers_modules.")
        assert got["digest"] == pushed[revision]["digest"]
        assert got["commit"] == module_hub.branches("test/pushed")[revision]
        torch.testing.assert_close(got["text_embeds"], pushed[revision]["text_embeds"], atol=1e-6, rtol=0)
    files = set(module_hub.list_files("test/pushed"))
    assert {"config.json", "model.safetensors", "modeling_videoclip.py", "processor_config.json"} <= files
    assert "tokenizer.json" in files


def test_second_upload_is_idempotent(published, module_hub, assets):
    before = snapshot(published.out)
    heads = module_hub.branches(REPO)
    creates = module_hub.count("create_repo")
    # The same command as the first upload (main), with the checkpoint now coming from the download cache.
    result = run_upload(module_hub, *published.main_args)
    assert result.returncode == 0, output(result)
    assert "Using cached download" in result.stdout
    assert "No changes: test/videoclip-mugen@main already holds these files; nothing committed" in result.stdout
    assert module_hub.branches(REPO) == heads  # no commit, not even an empty one
    assert module_hub.count("create_repo") == creates + 1 and module_hub.count("create_repo", 409) >= 1
    assert module_hub.count("commit", "any") == module_hub.count("commit", 200)
    after = snapshot(published.out)
    # The README goes back to the main-branch text (the dev run rewrote it); every other file is untouched.
    assert {k: v for k, v in after.items() if k not in ("README.md", folder.MARKER_FILE)} == {
        k: v for k, v in before.items() if k not in ("README.md", folder.MARKER_FILE)
    }
    assert after["README.md"][0] == published.main_snapshot["README.md"][0]


# ------------------------------------------------------------------------------------------------------------------
# Faults
# ------------------------------------------------------------------------------------------------------------------




def test_failed_uploads_stop_cleanly_transient_ones_are_retried_and_a_rerun_completes(published, local_hub, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(published.out, out)
    args = ["--checkpoint", published.checkpoint, *published.common, "--output-dir", str(out)]
    args += ["--repo-id", "someone/videoclip"]
    local_hub.create_repo("someone/videoclip", read_only=True)

    # 403: a repo this token may not write. The folder is written and verified, nothing reaches the repo.
    forbidden = run_upload(local_hub, *args)
    assert forbidden.returncode == ExitCode.FORBIDDEN, output(forbidden)
    assert error_line(forbidden).startswith("error: permission denied for someone/videoclip (HTTP 403)")
    written = snapshot(out)
    assert set(written) == HUB_FILES | {folder.MARKER_FILE}
    assert local_hub.list_files("someone/videoclip") == [".gitattributes"]

    # 401: a rejected token; stops before any work, never shows the token.
    local_hub.require_token("hf_the_right_token")
    unauthorized = run_upload(local_hub, *args, token="hf_wrong_secret_token")
    assert unauthorized.returncode == ExitCode.AUTH, output(unauthorized)
    assert error_line(unauthorized).startswith("error: authentication failed for someone/videoclip (HTTP 401)")
    assert "hf_wrong_secret_token" not in unauthorized.stdout + unauthorized.stderr
    assert "Converting" not in unauthorized.stdout and "Wrote" not in unauthorized.stdout

    assert local_hub.list_files("someone/videoclip") == [".gitattributes"]
    assert len(local_hub.commits("someone/videoclip")) == 1
    assert snapshot(out) == written  # failed uploads never touched the folder

    # The same command again, write access granted, and transient faults on the way: retried, then completes in
    # one commit; the folder is still untouched (identical files are kept).
    local_hub.set_read_only("someone/videoclip", read_only=False)
    local_hub.fail_next("preupload", 503)
    local_hub.drop_connection_next("lfs_upload")  # connection reset mid-upload of model.safetensors
    local_hub.fail_next("commit", 500)
    local_hub.drop_connection_next("commit")
    rerun = run_upload(local_hub, *args, token="hf_the_right_token")
    assert rerun.returncode == 0, output(rerun)
    assert local_hub.pending_faults() == {}
    # huggingface_hub retries the preupload and the LFS PUT itself; upload.py retries the commit (not retried there).
    assert "HTTP Error 503 thrown while requesting POST" in rerun.stderr and "Retrying in" in rerun.stderr
    assert "uploading: transient failure (RemoteProtocolError: Server disconnected" in rerun.stdout
    assert "uploading: transient failure (HTTP 500); retry 2/5" in rerun.stdout
    assert "hf_the_right_token" not in rerun.stdout + rerun.stderr
    assert snapshot(out) == written
    assert len(local_hub.commits("someone/videoclip")) == 2  # one commit with everything, no partial one
    assert set(local_hub.list_files("someone/videoclip")) == HUB_FILES | {".gitattributes"}
    assert local_hub.read_file("someone/videoclip", "model.safetensors") == (out / "model.safetensors").read_bytes()


# ------------------------------------------------------------------------------------------------------------------
# Checkpoint errors, output folder policy, downloads (in this process: no Hub involved)
# ------------------------------------------------------------------------------------------------------------------


def _main(capsys, *args: str) -> tuple[int, str, str]:
    code = upload.main(["--no-progress", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_explains_every_option(capsys):
    parser = upload.build_parser()
    for action in parser._actions:
        assert action.help and len(action.help) > 10, action.option_strings
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--checkpoint", "--output-dir", "--variant", "--tokenizer", "--repo-id", "--private", "--revision",
                   "--commit-message", "--allow-pickle", "--sha256", "--overwrite", "--config"):
        assert option in text
    assert MUGEN_CHECKPOINT_URL in "".join(text.split()) and "exit codes:" in text
    for code in ExitCode:  # the help lists the one enum
        assert re.search(rf"^  {int(code)} +\S", upload.EPILOG, re.MULTILINE), code
    # The options map onto UploadOptions by name, --verbose (upload.py's own) aside.
    dests = {action.dest for action in parser._actions} - {"help", "verbose"}
    assert dests == {field.name for field in dataclasses.fields(pipeline.UploadOptions)} - {"configs_dir"}


@pytest.mark.parametrize(
    "kind, code, message",
    [
        ("missing", ExitCode.CHECKPOINT_UNREADABLE, "does not exist"),
        ("garbage", ExitCode.CHECKPOINT_UNREADABLE, "not a torch.save file"),
        ("not_videoclip", ExitCode.CHECKPOINT_UNREADABLE, "not a torchmultimodal VideoCLIP checkpoint"),
        ("missing_key", ExitCode.KEY_MISMATCH, "does not match the VideoCLIP architecture (1 missing keys"),
        (
            "needs_pickle",
            ExitCode.NEEDS_PICKLE,
            "needs pickle to load; if you trust the file, re-run with --allow-pickle",
        ),
    ],
)
def test_bad_checkpoints_end_with_one_line_and_exit_code(kind, code, message, assets, tmp_path, capsys):
    path = tmp_path / f"{kind}.pt"
    if kind == "garbage":
        path.write_bytes(b"this is not a torch file")
    elif kind == "not_videoclip":
        torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    elif kind == "missing_key":
        state = torch.load(assets.root / "videoclip_mugen.pt", weights_only=True)
        del state["encoder_b.1.layer_norm.bias"]
        torch.save(state, path)
    elif kind == "needs_pickle":
        path = assets.root / "lightning_with_objects.pt"
    out = tmp_path / "out"
    args = ["--config", str(assets.config), "--tokenizer", assets.vocab, "--output-dir", str(out)]
    result = _main(capsys, "--checkpoint", str(path), *args)
    assert result[0] == code, result
    assert message in error_line(result[2])
    assert not out.exists()


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    """Only VideoCLIPErrors become one line; anything else propagates (Python prints it and exits 1)."""

    def broken(options, log):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "convert_and_publish", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        upload.main(["--output-dir", str(tmp_path / "o")])


def test_key_mismatch_suggests_config(assets, tmp_path, capsys):
    # The tiny checkpoint against the default (distilbert-base-uncased sized) config.
    args = ["--tokenizer", assets.vocab, "--output-dir", str(tmp_path / "o")]
    code, _, err = _main(capsys, "--checkpoint", str(assets.root / "videoclip_mugen.pt"), *args)
    assert code == ExitCode.KEY_MISMATCH
    line = error_line(err)
    assert "mis-shaped" in line and "--config" in line


def test_refuses_foreign_output_dir_unless_overwrite(assets, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    args = ["--checkpoint", str(tmp_path / "missing.pt"), "--output-dir", str(out), "--tokenizer", assets.vocab]
    code, _, err = _main(capsys, *args)
    assert code == ExitCode.OUTPUT_DIR and "--overwrite" in error_line(err)
    code, _, err = _main(capsys, *args, "--overwrite")
    assert code == ExitCode.CHECKPOINT_UNREADABLE  # past the folder check; a failed run leaves the folder as it was
    assert (out / "notes.txt").read_text() == "keep me" and sorted(os.listdir(out)) == ["notes.txt"]


def test_no_network_is_one_line_and_exit_code(assets, tmp_path, capsys):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: connections are refused
    args = ["--config", str(assets.config), "--output-dir", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]
    url = f"http://127.0.0.1:{port}/videoclip_mugen.pt"
    code, _, err = _main(capsys, "--checkpoint", url, "--tokenizer", assets.vocab, *args)
    assert code == ExitCode.NETWORK
    assert "no network connection" in error_line(err)
    # The default tokenizer comes from the Hub; this process is offline and its cache is empty: fails fast, before
    # the conversion.
    code, out, err = _main(capsys, "--checkpoint", str(assets.root / "videoclip_mugen.pt"), *args)
    assert code == ExitCode.NETWORK
    assert "cannot load the tokenizer 'distilbert/distilbert-base-uncased': no network connection" in error_line(err)
    assert "Converting" not in out and not (tmp_path / "o").exists()


def test_download_cache_and_verification(assets, tmp_path):
    server, url, log = serve_directory(assets.root)
    try:
        expected = hashlib.sha256((assets.root / "videoclip_mugen.pt").read_bytes()).hexdigest()
        def fetch(name: str, sha256: str | None = None):
            return downloads.fetch_checkpoint(f"{url}/{name}", tmp_path / "cache", sha256, False, lambda _: None)

        first = fetch("videoclip_mugen.pt")
        assert first.sha256 == expected
        assert first.path.read_bytes() == (assets.root / "videoclip_mugen.pt").read_bytes()
        again = fetch("videoclip_mugen.pt", sha256=expected)
        assert again.path == first.path and len(log) == 1  # served from the cache

        with pytest.raises(VideoCLIPError) as wrong:
            fetch("videoclip_lightning_mugen.pt", sha256="0" * 64)
        assert wrong.value.exit_code == ExitCode.DOWNLOAD_FAILED and "differs from the expected" in wrong.value.message
        assert not any(p.name == "videoclip_lightning_mugen.pt" for p in (tmp_path / "cache").rglob("*"))

        with pytest.raises(VideoCLIPError) as missing:
            fetch("nope.pt")
        assert missing.value.exit_code == ExitCode.DOWNLOAD_FAILED and "HTTP 404" in missing.value.message
    finally:
        server.shutdown()
        server.server_close()
    # The public files' digests are not known here (S3 unreachable); they are recorded as unknown, not invented.
    assert downloads.KNOWN_FILES[MUGEN_CHECKPOINT_URL] == downloads.KnownFile(size=None, sha256=None)


def test_reload_mismatch_stops_before_anything_is_installed(assets, tmp_path, capsys, monkeypatch):
    """A folder whose reload differs from the converted model (here: a weight altered after saving) is refused."""
    original = folder.write_folder

    def write_then_corrupt(folder, model, processor, card):
        from safetensors.torch import load_file, save_file

        files = original(folder, model, processor, card)
        weights = load_file(folder / "model.safetensors")
        weights["video_projection.layer_norm.bias"] += 0.5
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
        return files

    monkeypatch.setattr(pipeline, "write_folder", write_then_corrupt)
    out = tmp_path / "out"
    args = ["--config", str(assets.config), "--tokenizer", assets.vocab, "--output-dir", str(out)]
    code, _, err = _main(capsys, "--checkpoint", str(assets.root / "videoclip_mugen.pt"), *args)
    assert code == ExitCode.RELOAD_MISMATCH
    assert "the reloaded weights differ" in error_line(err) and "embeddings differ" in error_line(err)
    assert not out.exists()


# ------------------------------------------------------------------------------------------------------------------
# Units: retries, Lightning + pickle conversion, videoclip-base assembly
# ------------------------------------------------------------------------------------------------------------------


def _http_error(status: int):
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    response = httpx2.Response(status, request=httpx2.Request("POST", "http://hub/api/models/a/b/commit/main"))
    return HfHubHTTPError(f"{status} error", response=response)


def test_call_with_retries_backs_off_on_transient_errors_only():
    import httpx2

    sleeps: list[float] = []
    failures = [_http_error(500), httpx2.RemoteProtocolError("Server disconnected"), _http_error(503)]

    def flaky():
        if failures:
            raise failures.pop(0)
        return "done"

    assert client.call_with_retries(flaky, "x", retries=5, wait=0.5, log=lambda _: None, sleep=sleeps.append) == "done"
    assert sleeps == [0.5, 1.0, 2.0]

    for permanent in (_http_error(401), _http_error(403), ValueError("bug")):
        sleeps.clear()
        with pytest.raises(type(permanent)):
            client.call_with_retries(lambda: (_ for _ in ()).throw(permanent), "x", sleep=sleeps.append)
        assert sleeps == []
    with pytest.raises(type(_http_error(500))):
        def bad_gateway():
            raise _http_error(502)

        client.call_with_retries(bad_gateway, "x", retries=2, wait=1, log=lambda _: None, sleep=sleeps.append)
    assert sleeps == [1, 2]
    assert client.hub_error(_http_error(401), "a/b").exit_code == ExitCode.AUTH
    assert client.hub_error(_http_error(403), "a/b").exit_code == ExitCode.FORBIDDEN
    assert client.hub_error(httpx2.ConnectError("refused"), "a/b").exit_code == ExitCode.NETWORK
    exhausted = client.hub_error(_http_error(500), "a/b")
    assert exhausted.exit_code == ExitCode.HUB_ERROR and "HTTP 500" in exhausted.message


def test_lightning_checkpoint_with_objects_converts_with_allow_pickle(assets):
    config = variants.load_config(variants.load_variant("videoclip-mugen"), assets.config)
    checkpoint = downloads.fetch_checkpoint(str(assets.root / "lightning_with_objects.pt"), log=lambda _: None)
    with pytest.raises(VideoCLIPError) as refused:
        models.convert_checkpoint(checkpoint, config)
    assert refused.value.exit_code == ExitCode.NEEDS_PICKLE
    model = models.convert_checkpoint(checkpoint, config, allow_pickle=True)
    assert model.logit_scale.item() == 2.5
    converted = model.state_dict()
    for key, value in assets.reference.state_dict().items():
        for old, new in (("encoder_a.0.model.", "text_model."), ("encoder_a.1.", "text_projection."),
                         ("encoder_b.0.model.", "video_model."), ("encoder_b.1.", "video_projection.")):
            if key.startswith(old):
                assert torch.equal(converted[new + key[len(old):]], value), key


def test_videoclip_base_assembles_pretrained_encoders_with_fresh_projections(assets, tmp_path):
    from torchvision.models.video import S3D
    from transformers import DistilBertModel

    variant = variants.load_variant("videoclip-base", REPO_ROOT / "hub_configs")
    assert variant.default_checkpoint is None and variant.spec["default_video_encoder"] == PRETRAINED_VIDEO_ENCODER_URL
    config = variants.load_config(variant, assets.config)
    torch.manual_seed(3)
    text = DistilBertModel(config.text_config)
    text.save_pretrained(tmp_path / "distilbert")
    s3d = S3D()
    torch.save(s3d.state_dict(), tmp_path / "s3d.pth")
    video = downloads.fetch_checkpoint(str(tmp_path / "s3d.pth"), log=lambda _: None)

    distilbert = str(tmp_path / "distilbert")
    model = models.build_model("videoclip-base", config, text_encoder=distilbert, video_encoder=video, seed=7)
    assert torch.equal(model.text_model.embeddings.word_embeddings.weight, text.embeddings.word_embeddings.weight)
    features = model.video_model.features.state_dict()
    for key, value in s3d.state_dict().items():
        if key.startswith("features."):
            assert torch.equal(features[key[len("features."):]], value), key
    # The same path as `videoclip train --init videoclip-base`: the S3D file fetched by build_model itself.
    again = models.build_model("videoclip-base", config, text_encoder=distilbert, video_encoder=video.source, seed=7)
    assert torch.equal(model.text_projection.linear1.weight, again.text_projection.linear1.weight)  # seeded

    del_state = {k: v for k, v in s3d.state_dict().items() if not k.startswith("features.15")}
    del_path = tmp_path / "s3d_cut.pth"
    torch.save(del_state, del_path)
    with pytest.raises(VideoCLIPError) as mismatch:
        models.build_model("videoclip-base", config, text_encoder=distilbert, video_encoder=str(del_path))
    assert mismatch.value.exit_code == ExitCode.KEY_MISMATCH

    text = card.render_model_card(variant, "org/videoclip-base", config, "provenance", include_results=False)
    assert "model-index" not in text and "base_model:\n- distilbert/distilbert-base-uncased" in text
