"""Remote code: a saved model + processor load through the Auto classes in a fresh Python process in which
the package is neither installed nor importable, with bit-identical outputs."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from tiny_videoclip import CAPTIONS, random_videos, tiny_model, tiny_processor
from transformers import AutoConfig, AutoModel, AutoProcessor, AutoVideoProcessor

import modeling_videoclip
from modeling_videoclip.publish import reload_check

CODE_FILES = {
    "configuration_videoclip.py",
    "modeling_videoclip.py",
    "pipeline_videoclip.py",
    "processing_videoclip.py",
    "video_processing_videoclip.py",
}

# Runs with reload_check's folder as the only PYTHONPATH entry; its real blocker hides the package.
FRESH_PROCESS = """
import sys
import reload_check
reload_check.block_package()
try:
    import modeling_videoclip
    raise SystemExit("package still importable")
except ModuleNotFoundError:
    pass

import numpy as np, torch
from transformers import AutoModel, AutoProcessor
folder, inputs_path, outputs_path = sys.argv[1:4]
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
data = np.load(inputs_path)
inputs = processor(text=[str(t) for t in data["texts"]], videos=list(data["videos"]))
with torch.no_grad():
    out = model(**inputs, return_loss=True)
assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
torch.save({"pixel_values_videos": inputs["pixel_values_videos"], "input_ids": inputs["input_ids"],
            "logits": out.logits_per_text, "text_embeds": out.text_embeds, "video_embeds": out.video_embeds,
            "loss": out.loss}, outputs_path)
"""


def test_saved_folder_has_code_and_auto_map(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    tiny_processor().save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert CODE_FILES <= files
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= files
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "videoclip"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_videoclip.VideoCLIPConfig",
        "AutoModel": "modeling_videoclip.VideoCLIPModel",
    }
    for name in CODE_FILES:  # only relative imports between the code files
        source = (tmp_path / name).read_text()
        assert "import modeling_videoclip" not in source and "from modeling_videoclip" not in source


def test_auto_classes_are_registered_locally(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    tiny_processor().save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), modeling_videoclip.VideoCLIPConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), modeling_videoclip.VideoCLIPModel)
    assert isinstance(AutoProcessor.from_pretrained(tmp_path), modeling_videoclip.VideoCLIPProcessor)
    assert isinstance(AutoVideoProcessor.from_pretrained(tmp_path), modeling_videoclip.VideoCLIPVideoProcessor)


def test_fresh_process_loads_remote_code_bit_identically(tmp_path):
    model, processor = tiny_model(), tiny_processor()
    folder = tmp_path / "videoclip"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    videos = random_videos(2, frames=20, size=240)
    np.savez(tmp_path / "inputs.npz", texts=np.array(CAPTIONS[:2]), videos=np.stack(videos))
    env = {**os.environ, "PYTHONPATH": str(Path(reload_check.__file__).parent)}
    env.update(HF_HOME=str(tmp_path / "empty-hf-home"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), str(tmp_path / "inputs.npz"), str(tmp_path / "out.pt")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = torch.load(tmp_path / "out.pt", weights_only=True)
    inputs = processor(text=CAPTIONS[:2], videos=videos)
    with torch.no_grad():
        local = model(**inputs, return_loss=True)
    assert torch.equal(remote["pixel_values_videos"], inputs["pixel_values_videos"])
    assert torch.equal(remote["input_ids"], inputs["input_ids"])
    for key, value in (("logits", local.logits_per_text), ("text_embeds", local.text_embeds),
                       ("video_embeds", local.video_embeds), ("loss", local.loss)):
        assert torch.equal(remote[key], value), key


def test_reload_check_imports_nothing_from_the_package():
    """The fresh process runs publish/reload_check.py as a top-level module: it must stand alone."""
    tree = ast.parse(Path(reload_check.__file__).read_text())
    modules = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    modules += ["." * node.level + (node.module or "") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in modules if name.startswith((".", "modeling_videoclip"))], modules
