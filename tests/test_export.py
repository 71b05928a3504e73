"""`videoclip export-onnx`: the text tower exported through the CLI runs in onnxruntime with the PyTorch embeddings
at batch sizes and lengths other than the export's. The video tower (S3D: ~40 s to export on 2 cores) is exported
and checked the same way by the benchmarks (``python -m benchmarks --only onnx``), not here."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from tiny_videoclip import save_tiny, tiny_model, tiny_processor

from modeling_videoclip import cli
from modeling_videoclip.cli.export import ONNX_TOLERANCE, onnx_session
from modeling_videoclip.common.errors import ExitCode


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    return save_tiny(tmp_path_factory.mktemp("tiny-videoclip"))


@pytest.fixture(scope="module")
def exported(tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    code = cli.main(["export-onnx", tiny_dir, str(out), "--towers", "text"])
    return code, out


def test_export_onnx_text_tower_matches_pytorch(exported, capsys):
    code, out = exported
    assert code == 0
    assert sorted(path.name for path in out.iterdir()) == ["text.onnx"]  # self-contained: no external data file
    graph = onnx.load(out / "text.onnx").graph
    assert [node.name for node in graph.input] == ["input_ids", "attention_mask"]
    assert [node.name for node in graph.output] == ["text_embeds"]
    for node in graph.input:  # batch and sequence symbolic, not the export example's 2 x n
        assert all(dim.dim_param for dim in node.type.tensor_type.shape.dim)

    model, processor = tiny_model(), tiny_processor()
    captions = ["Mugen jumps.", "A snail kills Mugen and Mugen climbs up a ladder.", "Mugen collects a coin.",
                "Mugen walks to the right.", "A bee."]
    inputs = processor(text=captions, return_tensors="pt")
    feeds = {name: inputs[name].numpy() for name in ("input_ids", "attention_mask")}
    (embeds,) = onnx_session(out / "text.onnx").run(None, feeds)
    with torch.inference_mode():
        expected = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
    assert embeds.shape == (5, 256)
    assert np.abs(embeds - expected.numpy()).max() <= ONNX_TOLERANCE


def test_export_onnx_never_overwrites_without_the_flag(exported, tiny_dir, capsys):
    _, out = exported
    before = (out / "text.onnx").stat().st_mtime_ns
    assert cli.main(["export-onnx", tiny_dir, str(out), "--towers", "text"]) == ExitCode.USAGE
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "text.onnx").stat().st_mtime_ns == before
    assert cli.main(["export-onnx", tiny_dir, str(out / "text.onnx")]) == ExitCode.USAGE  # a file, not a folder
