"""The output folder: written into staging, reloaded in a fresh process (`verify_folder`), and only then moved into
place (`install_folder`). A marker file (`MARKER_FILE`) identifies a folder as ``upload.py``'s and records what was
verified, so that an unchanged folder is neither rewritten nor re-verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..common.downloads import file_sha256
from ..common.errors import ExitCode, UploadError
from ..modeling_videoclip import VideoCLIPModel
from ..processing_videoclip import VideoCLIPProcessor
from . import reload_check

MARKER_FILE = ".videoclip_upload.json"  # identifies the folder as ours and records what was verified; never uploaded
VERIFY_TEXTS = ("Mugen jumps onto a ledge.", "A snail kills Mugen.")
VERIFY_FRAMES = 16  # frames of the verification clip: the least S3D takes comfortably, to keep the check fast


def read_marker(output_dir: Path) -> dict[str, Any] | None:
    """The marker of a previous ``upload.py`` output in `output_dir`, or None."""
    try:
        marker = json.loads((output_dir / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return marker if isinstance(marker, dict) and marker.get("tool") == "upload.py" else None


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool) -> None:
    """Refuses (`UploadError`, `OUTPUT_DIR`) a file, and, unless `overwrite`, a folder holding anything but a
    previous ``upload.py`` output."""
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise UploadError(f"--output-dir {path} exists and is not a folder", ExitCode.OUTPUT_DIR)
    present = relative_files(path) if path.exists() and not overwrite else []
    if not present:
        return
    marker = read_marker(path)
    foreign = sorted(set(present) - set(marker.get("files", {}) if marker else ()) - {MARKER_FILE})
    if marker is None or foreign:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise UploadError(f"--output-dir {path} is not empty and was not written by upload.py (e.g. {shown}); choose "
                          f"an empty folder or pass --overwrite to replace its contents", ExitCode.OUTPUT_DIR)


def relative_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


def write_folder(folder: Path, model: VideoCLIPModel, processor: VideoCLIPProcessor, card: str) -> dict[str, str]:
    """Writes the Hub folder; returns ``{relative path: sha256}`` of every file."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "README.md").write_text(card, encoding="utf-8")
    return {name: file_sha256(folder / name) for name in relative_files(folder)}


def verify_folder(
    folder: Path, model: VideoCLIPModel, processor: VideoCLIPProcessor, atol: float = 1e-5, timeout: float = 600
) -> dict[str, Any]:
    """Reloads `folder` in a fresh process that cannot import this package (`publish.reload_check`) and compares
    it with `model` and `processor`: weights' digest, video-processor settings, processed inputs, and embeddings
    (within `atol`). Returns what the marker records: ``{"max_abs_diff": ..., "model_module": ...}``.

    Raises:
        UploadError: (`RELOAD_MISMATCH`) the reload fails, differs, or takes over `timeout` seconds.
    """
    video = torch.from_numpy(np.random.default_rng(1234).integers(0, 256, (VERIFY_FRAMES + 4, 96, 128, 3), np.uint8))
    options = {"texts": list(VERIFY_TEXTS), "num_frames": VERIFY_FRAMES}
    with tempfile.TemporaryDirectory(prefix="videoclip-verify-") as scratch:
        torch.save({"video": video}, Path(scratch, "inputs.pt"))
        env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
        env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(Path(scratch, "modules")), TOKENIZERS_PARALLELISM="false")
        env["PYTHONPATH"] = str(Path(reload_check.__file__).parent)  # reload_check alone; it blocks the package
        command = [sys.executable, "-m", "reload_check", str(folder.resolve()), "inputs.pt", "outputs.pt"]
        process = subprocess.Popen(
            [*command, json.dumps(options)], cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, errors="replace",
        )
        try:
            expected = reload_check.model_outputs(model, processor, video, **options)  # meanwhile, here
            log_text = process.communicate(timeout=timeout)[1]
        except subprocess.TimeoutExpired as error:
            message = f"reloading the written folder timed out after {timeout:.0f}s"
            raise UploadError(message, ExitCode.RELOAD_MISMATCH) from error
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            last = (log_text.strip().splitlines() or ["no output"])[-1]
            raise UploadError(f"reloading the written folder with AutoModel/AutoProcessor(trust_remote_code=True) "
                              f"failed: {last}", ExitCode.RELOAD_MISMATCH, details=log_text)
        reloaded = torch.load(Path(scratch, "outputs.pt"), weights_only=True)
    return {"max_abs_diff": _compare_reload(reloaded, expected, atol), "model_module": reloaded["model_module"]}


def _compare_reload(reloaded: Mapping[str, Any], expected: Mapping[str, Any], atol: float) -> float:
    """The largest embedding difference; raises `UploadError` (`RELOAD_MISMATCH`) listing every difference."""
    problems = []
    if not reloaded["model_module"].startswith("transformers_modules."):
        problems.append(f"the model class came from {reloaded['model_module']}, not from the folder's remote code")
    if reloaded["state_digest"] != expected["state_digest"]:
        problems.append("the reloaded weights differ from the converted ones")
    if _comparable(reloaded["video_processor"]) != _comparable(expected["video_processor"]):
        problems.append("the reloaded video-processor settings differ")
    for key in ("input_ids", "attention_mask", "pixel_values_videos"):
        if reloaded[key].shape != expected[key].shape or not torch.equal(reloaded[key], expected[key]):
            problems.append(f"the reloaded processor gives other {key}")
    diff = max(
        float((reloaded[key] - expected[key]).abs().max()) if reloaded[key].shape == expected[key].shape else np.inf
        for key in ("text_embeds", "video_embeds")
    )
    if not diff <= atol:
        problems.append(f"embeddings differ by up to {diff:.3g} (> {atol})")
    if problems:
        raise UploadError("the written folder does not reproduce the converted model: " + "; ".join(problems),
                          ExitCode.RELOAD_MISMATCH)
    return diff


def _comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    ignored = {"auto_map", "processor_class", "_processor_class"}
    return json.loads(json.dumps({k: v for k, v in settings.items() if k not in ignored}, sort_keys=True, default=str))


def environment_fingerprint() -> dict[str, str]:
    """Versions that decide whether a folder verified earlier would still load the same way."""
    import transformers

    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__}


def reusable_verification(output_dir: Path, files: Mapping[str, str]) -> dict[str, Any] | None:
    """The recorded verification of `output_dir` if it holds exactly `files` (same bytes; the model card, which
    `from_pretrained` does not read, may differ) and was verified with the current library versions; else None."""

    def loadable(files: Mapping[str, str]) -> dict[str, str]:
        return {name: sha for name, sha in files.items() if name != "README.md"}

    marker = read_marker(output_dir)
    if not marker or marker.get("state") != "complete" or not marker.get("verification"):
        return None
    if loadable(marker.get("files", {})) != loadable(files) or marker.get("environment") != environment_fingerprint():
        return None
    present = {name: file_sha256(output_dir / name) for name in relative_files(output_dir) if name != MARKER_FILE}
    return marker["verification"] if loadable(present) == loadable(files) else None


def install_folder(staging: Path, output_dir: Path, files: Mapping[str, str], verification: Mapping[str, Any]) -> None:
    """Moves the verified `staging` files into `output_dir`: identical files are left untouched, changed and new
    ones replaced, files of a previous output (or, with ``--overwrite``, anything else) that are no longer
    produced are removed. The marker says ``installing`` until the folder is complete."""
    output_dir.mkdir(parents=True, exist_ok=True)
    old = set(relative_files(output_dir)) - {MARKER_FILE}

    def unchanged(name: str, sha: str) -> bool:
        path = output_dir / name
        return path.is_file() and not path.is_symlink() and file_sha256(path) == sha

    changed = [name for name, sha in files.items() if not unchanged(name, sha)]
    stale = sorted(old - set(files))
    marker = read_marker(output_dir) or {}
    if not changed and not stale and marker.get("state") == "complete" and marker.get("files") == dict(files):
        return  # already exactly this output: touch nothing
    _write_marker(output_dir, "installing", {**{name: "" for name in old}, **files}, verification)
    for name in changed:
        (output_dir / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, output_dir / name)
    for name in stale:
        (output_dir / name).unlink(missing_ok=True)
    for path in sorted((p for p in output_dir.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(path.iterdir()):
            path.rmdir()
    _write_marker(output_dir, "complete", files, verification)


def _write_marker(output_dir: Path, state: str, files: Mapping[str, str], verification: Mapping[str, Any]) -> None:
    marker = {"tool": "upload.py", "state": state, "files": dict(files), "verification": dict(verification)}
    marker["environment"] = environment_fingerprint()
    temporary = output_dir / (MARKER_FILE + ".tmp")
    temporary.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, output_dir / MARKER_FILE)
