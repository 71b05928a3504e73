"""`videoclip train --lora`: LoRA adapters (peft) on both towers train alone, save as adapter files that load onto
the base model, merge into a plain VideoCLIP folder, and resume from a checkpoint identically.

One tiny run (2 steps, batches of 2, a checkpoint after each) serves every test; S3D cannot shrink, so clips are
16 frames of 224x224 (tiny_videoclip)."""

from __future__ import annotations

import argparse

import datasets
import pytest
import torch
from peft import PeftModel
from tiny_videoclip import CAPTIONS, TINY_NUM_FRAMES, random_videos, tiny_config, tiny_processor
from transformers import AutoModel, TrainingArguments

from modeling_videoclip import VideoCLIPModel
from modeling_videoclip.common.errors import CommandError
from modeling_videoclip.training import LoraOptions, VideoCLIPTrainArguments, add_train_arguments, apply_lora, train

VIDEO_MODULE = "features.15.branch1.1.0.0"  # a (1,3,3) convolution of S3D's last Inception block: a cheap backward
LORA = dict(lora=True, lora_rank=4, lora_alpha=8.0, lora_video_modules=VIDEO_MODULE)


def base_model() -> VideoCLIPModel:
    torch.manual_seed(0)
    return VideoCLIPModel(tiny_config(projection_dropout=0.0))


def dataset() -> datasets.Dataset:
    features = datasets.Features({"text": datasets.Value("string"),
                                  "video": datasets.Array4D((TINY_NUM_FRAMES, 224, 224, 3), "uint8")})
    rows = {"text": CAPTIONS, "video": random_videos(4, frames=TINY_NUM_FRAMES, size=224, seed=3)}
    return datasets.Dataset.from_dict(rows, features=features).with_format("numpy", columns=["video"],
                                                                          output_all_columns=True)


def training_args(output_dir, **overrides) -> TrainingArguments:
    values = dict(output_dir=str(output_dir), per_device_train_batch_size=2, learning_rate=1e-2, max_steps=2,
                  lr_scheduler_type="constant", logging_steps=1, save_strategy="steps", save_steps=1,
                  eval_strategy="no", report_to="none", dataloader_num_workers=0, use_cpu=True, disable_tqdm=True,
                  seed=0)
    return TrainingArguments(**{**values, **overrides})


def losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def outputs(model, processor):
    inputs = processor(text=CAPTIONS[:2], videos=random_videos(1, frames=TINY_NUM_FRAMES, size=224, seed=9))
    with torch.no_grad():
        return model.eval()(**inputs)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    model = base_model()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    trainer = train(VideoCLIPTrainArguments(**LORA, merge=True), training_args(root / "run"),
                    train_dataset=dataset(), model=model, processor=tiny_processor())
    return {"root": root, "trainer": trainer, "before": before}


def test_only_the_adapters_train(lora_run):
    peft_model = lora_run["trainer"].model
    assert isinstance(peft_model, PeftModel)
    after = peft_model.base_model.model.state_dict()
    adapters = {name for name in after if "lora_" in name}
    assert any(name.startswith("text_model.") for name in adapters)
    assert any(name.startswith(f"video_model.{VIDEO_MODULE}.") for name in adapters)
    base = {name.replace(".base_layer", ""): tensor for name, tensor in after.items() if name not in adapters}
    assert base.keys() == lora_run["before"].keys()
    changed = [name for name in base if not torch.equal(base[name], lora_run["before"][name])]
    assert not changed, changed[:5]  # BatchNorm statistics included
    lora_b = [name for name in adapters if "lora_B" in name]
    assert lora_b and all(after[name].abs().sum() > 0 for name in lora_b)  # B starts at zero
    trainable = {name for name, parameter in peft_model.named_parameters() if parameter.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)


def test_saved_adapters_load_onto_the_base_model_and_merge_into_a_plain_folder(lora_run):
    output = lora_run["root"] / "run"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in output.iterdir()}
    assert not (output / "model.safetensors").exists()
    processor = tiny_processor()
    trained = outputs(lora_run["trainer"].model, processor)
    reloaded = outputs(PeftModel.from_pretrained(base_model(), output), processor)
    assert torch.equal(reloaded.logits_per_video, trained.logits_per_video)
    merged_model = AutoModel.from_pretrained(output / "merged")
    assert type(merged_model) is VideoCLIPModel
    assert not any("lora_" in name for name in merged_model.state_dict())
    merged = outputs(merged_model, processor)
    for key in ("logits_per_video", "text_embeds", "video_embeds"):
        assert torch.allclose(getattr(merged, key), getattr(trained, key), atol=1e-5), key
    assert (output / "merged" / "processor_config.json").is_file()


def test_resume_from_an_adapter_checkpoint_continues_identically(lora_run):
    full = lora_run["trainer"]
    torch.manual_seed(5)  # a fresh base model: resuming restores the adapters, optimizer, RNG and data order
    resumed = train(VideoCLIPTrainArguments(**LORA), training_args(lora_run["root"] / "resumed", save_strategy="no"),
                    train_dataset=dataset(), model=base_model(), processor=tiny_processor(),
                    resume_from_checkpoint=str(lora_run["root"] / "run" / "checkpoint-1"))
    assert len(losses(full)) == 2 and losses(resumed)[1:] == losses(full)[1:]
    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(full_state[name], resumed_state[name]) for name in full_state if "lora_" in name)


def test_options_and_their_errors():
    parser = add_train_arguments(argparse.ArgumentParser())
    defaults = parser.parse_args(["--output-dir", "x", "--lora"])
    assert (defaults.lora, defaults.lora_rank, defaults.lora_alpha, defaults.lora_dropout) == (True, 8, 8.0, 0.0)
    assert (defaults.lora_text_modules, defaults.lora_video_modules, defaults.merge) == ("q_lin,v_lin", "", False)
    with pytest.raises(CommandError, match="names no Linear/Conv3d module of the video tower"):
        apply_lora(base_model(), LoraOptions(video_modules=("no_such_conv",)))
    with pytest.raises(CommandError, match="adapts nothing"):
        apply_lora(base_model(), LoraOptions(text_modules=()))
    with pytest.raises(CommandError, match="cannot merge LoRA on 1x1x1 convolutions"):
        apply_lora(base_model(), LoraOptions(video_modules=("features.15.branch0.0",)), merge=True)
    with pytest.raises(CommandError, match="--merge"):
        train(VideoCLIPTrainArguments(merge=True), training_args("unused"), train_dataset=dataset(),
              model=base_model(), processor=tiny_processor())
