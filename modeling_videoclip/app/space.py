"""The app laid out as a Hugging Face Space: ``app.py`` (`space_app`), a copy of the package, ``space.json`` (the
model), ``requirements.txt`` (the package's dependencies) and a ``README.md`` with the Space front matter
(``sdk: gradio``, and ``models:`` linking the model). Publish it with
``hf upload ORG/SPACE_NAME DIR . --repo-type space``."""

from __future__ import annotations

import json
import os
import shutil
from importlib import metadata
from pathlib import Path

from ..common.errors import CommandError, ExitCode, writing

PACKAGE_DISTRIBUTION = "videoclip-hf"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # modeling_videoclip/
SPACE_FILES = ("README.md", "app.py", "requirements.txt", "space.json")
#: The Space's card metadata (Hub docs: "Spaces configuration reference"); `sdk_version` and `models` are added.
SPACE_METADATA = {
    "title": "VideoCLIP", "emoji": "🎬", "colorFrom": "indigo", "colorTo": "blue", "sdk": "gradio",
    "app_file": "app.py", "pinned": False, "license": "bsd-3-clause",
    "short_description": "Video-text retrieval and zero-shot video classification",
}


def space_requirements() -> list[str]:
    """The package's install requirements (no extras), from its installed metadata. Gradio is not among them: a
    ``sdk: gradio`` Space installs the front matter's ``sdk_version`` itself."""
    return [requirement for requirement in metadata.requires(PACKAGE_DISTRIBUTION) or [] if ";" not in requirement]


def space_readme(model_id: str) -> str:
    """The Space's README: the front matter (`SPACE_METADATA`, Gradio's version, the model) and what it shows."""
    import gradio

    fields = {**SPACE_METADATA, "sdk_version": gradio.__version__, "models": [model_id]}
    front_matter = "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items())
    return (f"---\n{front_matter}\n---\n\n# VideoCLIP\n\n[{model_id}](https://huggingface.co/{model_id}) in the "
            "browser: search a pool of MUGEN clips with text, rank texts for a video, and classify an uploaded "
            "video into your own labels (the `zero-shot-video-classification` pipeline of the model's remote code).\n")


def write_space(folder: str | os.PathLike, model_id: str, weights: str = "auto", overwrite: bool = False) -> Path:
    """Writes the Space into `folder` (created; a non-empty one only with `overwrite`) and returns it.

    Args:
        folder: the Space folder.
        model_id: the model the Space serves and links (a Hub id).
        weights: the app's `AppOptions.weights` (used only if the model cannot be loaded). Defaults to "auto".
        overwrite: replace the Space files and package copy in a non-empty `folder`. Defaults to False.

    Raises:
        CommandError: (`USAGE`) `folder` is a file, or non-empty without `overwrite`; or it cannot be written.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not overwrite)):
        raise CommandError(f"--write-space {folder} exists and is not an empty folder; choose another or pass "
                           f"--overwrite", ExitCode.USAGE)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        package = folder / PACKAGE_DIR.name
        if package.exists():
            shutil.rmtree(package)
        shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copyfile(Path(__file__).with_name("space_app.py"), folder / "app.py")
        (folder / "space.json").write_text(json.dumps({"model": model_id, "weights": weights}) + "\n")
        (folder / "requirements.txt").write_text("\n".join(space_requirements()) + "\n")
        (folder / "README.md").write_text(space_readme(model_id), encoding="utf-8")
    return folder


__all__ = ["SPACE_FILES", "space_readme", "space_requirements", "write_space"]
