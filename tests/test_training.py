"""Training with the Hugging Face Trainer (issue 6): gathered loss, logit scale, frozen towers, collator,
per-epoch Recall@K, checkpoints, resume, command line.

Everything runs on CPU with the tiny text tower of `tiny_videoclip` and 16-frame 224x224 clips (S3D cannot
shrink), batches of 2, a handful of steps. The 2-process check runs `tests/dist_loss_check.py` under torchrun.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

import datasets
import numpy as np
import pytest
import torch
from tiny_videoclip import CAPTIONS, TINY_NUM_FRAMES, random_videos, tiny_config, tiny_model, tiny_processor
from transformers import AutoModel, AutoProcessor, TrainingArguments
from transformers.modeling_outputs import BaseModelOutputWithPooling

from modeling_videoclip import VideoCLIPConfig, VideoCLIPModel
from modeling_videoclip.training import (
    DatasetEpochCallback,
    PretrainedWeightsUnavailableError,
    VideoCLIPDataCollator,
    VideoCLIPTrainArguments,
    VideoCLIPTrainer,
    add_train_arguments,
    build_model,
    freeze_towers,
    initialize_model,
    run_train,
    split_namespace,
    train,
)

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)


@pytest.fixture(autouse=True)
def _one_thread():
    # The suite shares 2 cores; one intra-op thread per process avoids oversubscription.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_config(**overrides) -> VideoCLIPConfig:
    """The tiny config with DistilBERT initialised at std 0.3 instead of 0.02: a 0.02-initialised tiny DistilBERT
    gives every caption nearly the same [CLS] embedding (cosine 0.99999), so a frozen one pins the contrastive
    loss at log(batch); at 0.3 the captions differ (cosine ~0.6), as a pretrained DistilBERT's do."""
    text_config = tiny_config().text_config.to_dict()
    text_config.update(initializer_range=0.3, **overrides.pop("text_overrides", {}))
    return VideoCLIPConfig(text_config=text_config, **overrides)


def synthetic_dataset(count: int, seed: int = 3) -> datasets.Dataset:
    """`count` (caption, uint8 16x224x224 clip) rows, plus an extra column the collator must ignore."""
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "video": datasets.Array4D((TINY_NUM_FRAMES, 224, 224, 3), "uint8"),
            "clip_id": datasets.Value("int64"),
        }
    )
    rows = {
        "text": [CAPTIONS[i % len(CAPTIONS)] for i in range(count)],
        "video": random_videos(count, frames=TINY_NUM_FRAMES, size=224, seed=seed),
        "clip_id": list(range(count)),
    }
    return datasets.Dataset.from_dict(rows, features=features).with_format(
        "numpy", columns=["video"], output_all_columns=True
    )


def quick_args(output_dir, **overrides) -> TrainingArguments:
    """MUGEN's optimiser settings (lr 1e-3, wd 1e-3, constant lr, no clipping) at test scale."""
    values = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        per_device_eval_batch_size=4,
        learning_rate=1e-3,
        weight_decay=1e-3,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    values.update(overrides)
    return TrainingArguments(**values)


def train_losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def state_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def assert_bit_identical(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert not changed, f"changed: {changed[:5]}"


# ------------------------------------------------------------------------------------------------------------
# Collator and Trainer plumbing (no S3D forward)
# ------------------------------------------------------------------------------------------------------------


def test_collator_turns_rows_into_model_inputs():
    collator = VideoCLIPDataCollator(tiny_processor())
    small = random_videos(2, frames=20, size=64, seed=0)
    rows = [
        {"text": CAPTIONS[0], "video": small[0], "other": "ignored"},
        {"text": [CAPTIONS[1], "a second caption"], "video": small[1].astype(np.int64).tolist()},
    ]
    batch = collator(rows)
    assert batch["return_loss"] is True
    assert batch["pixel_values_videos"].shape == (2, TINY_NUM_FRAMES, 3, 224, 224)
    assert batch["pixel_values_videos"].dtype == torch.float32
    expected = tiny_processor()(text=CAPTIONS[:2], videos=small, return_tensors="pt")
    assert torch.equal(batch["input_ids"], expected["input_ids"])  # a list of captions uses its first
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    assert torch.equal(batch["pixel_values_videos"], expected["pixel_values_videos"])


def test_collator_names_remove_unused_columns_when_columns_are_missing():
    collator = VideoCLIPDataCollator(tiny_processor())
    with pytest.raises(KeyError, match="remove_unused_columns"):
        collator([{"input_ids": [1, 2]}])
    custom = VideoCLIPDataCollator(tiny_processor(), text_column="caption", video_column="clip")
    batch = custom([{"caption": CAPTIONS[0], "clip": random_videos(1, frames=16, size=32)[0]}])
    assert batch["input_ids"].shape[0] == 1


def test_trainer_keeps_the_columns_the_collator_reads(tmp_path):
    # TrainingArguments' default remove_unused_columns=True would drop `text` and `video` (not forward arguments).
    args = quick_args(tmp_path, remove_unused_columns=True)
    assert args.remove_unused_columns
    trainer = VideoCLIPTrainer(
        model=tiny_model(),
        args=args,
        train_dataset=synthetic_dataset(2),
        data_collator=VideoCLIPDataCollator(tiny_processor()),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["pixel_values_videos"].shape == (2, TINY_NUM_FRAMES, 3, 224, 224)
    assert trainer.model_accepts_loss_kwargs is False


def test_optimizer_is_adamw_decaying_every_trainable_parameter(tmp_path):
    model = tiny_model()
    freeze_towers(model, text=True)
    trainer = VideoCLIPTrainer(
        model=model, args=quick_args(tmp_path), data_collator=VideoCLIPDataCollator(tiny_processor())
    )
    optimizer = trainer.create_optimizer()
    assert isinstance(optimizer, torch.optim.AdamW)
    in_optimizer = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    trainable = [p for p in model.parameters() if p.requires_grad]
    # As the reference's AdamW(self.parameters(), lr=1e-3, weight_decay=1e-3): biases, norms, logit scale too.
    assert {in_optimizer[id(p)] for p in trainable} == {1e-3}
    assert len(in_optimizer) == len(trainable)
    assert all(id(p) not in in_optimizer for p in model.text_model.parameters())
    assert all(group["lr"] == 1e-3 for group in optimizer.param_groups)


def test_freeze_towers_freezes_backbones_only():
    model = tiny_model()
    frozen = freeze_towers(model, text=True, video=True)
    assert frozen and all(name.startswith(("text_model.", "video_model.")) for name in frozen)
    assert not any(p.requires_grad for p in model.text_model.parameters())
    assert not any(p.requires_grad for p in model.video_model.parameters())
    for module in (model.text_projection, model.video_projection):
        assert all(p.requires_grad for p in module.parameters())
    assert model.logit_scale.requires_grad


def _stub_video_tower(model: VideoCLIPModel, monkeypatch) -> None:
    """Replaces S3D by fixed random features (its cost is irrelevant to the logit scale)."""
    features = torch.randn(4, model.config.video_config.hidden_size, generator=torch.Generator().manual_seed(0))

    def encode(pixel_values_videos):
        return BaseModelOutputWithPooling(pooler_output=model.video_projection(features[: len(pixel_values_videos)]))

    monkeypatch.setattr(model, "_encode_video", encode)


def test_logit_scale_is_log_space_init_0_07_clamped_at_max_before_each_loss_and_learnable(monkeypatch):
    model = tiny_model()
    assert model.logit_scale.item() == pytest.approx(0.07)  # MUGEN's quirk: log of the multiplier starts at 0.07
    _stub_video_tower(model, monkeypatch)
    batch = tiny_processor()(text=CAPTIONS[:2], videos=random_videos(2, frames=16, size=32), return_tensors="pt")

    out = model(**batch, return_loss=True)
    cosine = out.text_embeds @ out.video_embeds.T
    assert torch.allclose(out.logits_per_text, cosine * math.exp(0.07), atol=1e-6)  # multiplier exp(0.07)
    out.loss.backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.abs() > 0  # learnable

    with torch.no_grad():
        model.logit_scale.fill_(150.0)
    out = model(**batch, return_loss=True)
    assert model.logit_scale.item() == 100.0  # clamped in place, in log space, at logit_scale_max
    assert torch.allclose(out.logits_per_text, (out.text_embeds @ out.video_embeds.T) * math.exp(100.0), rtol=1e-5)

    with torch.no_grad():
        model.logit_scale.fill_(-3.0)
    model(**batch, return_loss=True)
    assert model.logit_scale.item() == -3.0  # no minimum


# ------------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------------


def parse_cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(argv)


def test_cli_defaults_are_mugen_recipe(tmp_path):
    own, args = split_namespace(parse_cli(["--data", "d", "--output-dir", str(tmp_path)]))
    assert own == VideoCLIPTrainArguments(data="d")
    assert own.init == "videoclip-base" and not own.freeze_text and own.eval_split == "val"
    assert (args.learning_rate, args.weight_decay) == (1e-3, 1e-3)
    assert (args.per_device_train_batch_size, args.num_train_epochs) == (16, 20)
    assert args.lr_scheduler_type == "constant" and args.max_grad_norm == 0.0
    assert args.eval_strategy == "epoch" and args.save_strategy == "epoch"
    assert args.remove_unused_columns is False and args.ddp_find_unused_parameters is False

    own, args = split_namespace(
        parse_cli(["--output-dir", str(tmp_path), "--freeze-text", "--init", "random", "--learning-rate", "5e-4",
                   "--push-to-hub", "--resume-from-checkpoint", "ckpt"])
    )
    assert own.freeze_text and own.init == "random"
    assert args.learning_rate == 5e-4 and args.push_to_hub and args.resume_from_checkpoint == "ckpt"


def test_module_help_for_torchrun():
    result = subprocess.run(
        [sys.executable, "-m", "modeling_videoclip.training", "--help"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for option in ("--data", "--freeze-text", "--init", "--output-dir", "--resume-from-checkpoint", "--push-to-hub"):
        assert option in result.stdout


def test_videoclip_base_offline_fails_with_one_line_message(tmp_path, capsys):
    # conftest sets HF_HUB_OFFLINE=1 and an empty HF_HOME: DistilBERT cannot be fetched.
    with pytest.raises(PretrainedWeightsUnavailableError, match="--init random") as error:
        build_model("videoclip-base")
    assert "\n" not in str(error.value)

    data = tmp_path / "data"
    synthetic_dataset(2).save_to_disk(str(data))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "mugen"]) + "\n")
    argv = ["--data", str(data), "--tokenizer", str(vocab), "--output-dir", str(tmp_path / "o")]
    status = run_train(parse_cli(argv))
    assert status == 1
    assert "Cannot load the pretrained DistilBERT" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mugen_sample(tmp_path_factory):
    from modeling_videoclip.mugen import make_mugen_sample

    return make_mugen_sample(tmp_path_factory.mktemp("mugen"), num_clips=8, seed=0, with_audio=False)


def test_cli_training_on_mugen_sample_reduces_the_loss_and_saves_a_loadable_model(mugen_sample, tmp_path):
    """`run_train` end to end on the synthetic MUGEN sample (rendered lazily by `load_mugen`): random init,
    vocabulary from the captions, 2 training clips (a new random start frame and caption each epoch), 3 steps,
    dropout off, one evaluation on the validation split at the end."""
    text_config = train_config().text_config.to_dict()
    text_config.update(dropout=0.0, attention_dropout=0.0)
    model_config = json.dumps({"text_config": text_config, "projection_dropout": 0.0})
    output = tmp_path / "run"
    status = run_train(parse_cli([
        "--data", str(mugen_sample), "--init", "random", "--tokenizer", "from-data", "--model-config", model_config,
        "--num-frames", str(TINY_NUM_FRAMES), "--max-train-samples", "2",
        "--output-dir", str(output), "--per-device-train-batch-size", "2", "--per-device-eval-batch-size", "2",
        "--max-steps", "3", "--eval-strategy", "steps", "--eval-steps", "3", "--save-strategy", "no",
        "--logging-steps", "1", "--dataloader-num-workers", "0", "--use-cpu", "--disable-tqdm", "true",
    ]))
    assert status == 0
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) == 3
    assert losses[-1] < losses[0] - 0.05, losses
    evaluation = [entry for entry in history if "eval_loss" in entry]
    assert len(evaluation) == 1 and evaluation[0]["eval_num_pairs"] == 2
    assert "eval_text_to_video/R@1" in evaluation[0]

    assert (output / "model.safetensors").is_file()
    model = AutoModel.from_pretrained(str(output))
    assert isinstance(model, VideoCLIPModel)
    assert model.logit_scale.item() != pytest.approx(0.07, abs=1e-6)  # the logit scale trained
    processor = AutoProcessor.from_pretrained(str(output))
    assert processor.video_processor.num_frames == TINY_NUM_FRAMES
    input_ids = processor(text=["mugen jumps"], return_tensors="pt")["input_ids"]
    assert input_ids.max() < model.config.text_config.vocab_size


def test_mugen_training_data_draws_per_epoch(mugen_sample):
    from modeling_videoclip.data import epoch_setter, load_split

    train_split = load_split(str(mugen_sample), "train", num_frames=TINY_NUM_FRAMES, training=True)
    set_epoch = epoch_setter(train_split.select([0, 1]))
    assert set_epoch is not None
    callback = DatasetEpochCallback(set_epoch)
    state = argparse.Namespace(epoch=0.0)
    callback.on_epoch_begin(None, state, None)
    first = train_split[0]["video"]
    assert first.shape == (TINY_NUM_FRAMES, 224, 224, 3) and first.dtype == np.uint8
    state.epoch = 1.0
    callback.on_epoch_begin(None, state, None)
    assert train_split.format["format_kwargs"]["transform"].epoch == 1
    validation = load_split(str(mugen_sample), "validation", num_frames=TINY_NUM_FRAMES, training=True)
    assert len(validation) >= 1 and "text" in validation[0]


def test_random_init_ignores_freezing_as_the_reference():
    with pytest.warns(UserWarning, match="ignored with --init random"):
        model = initialize_model("random", config=tiny_config().to_dict(), freeze_text=True)
    assert all(p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------------------------------------------------
# Trainer runs: frozen towers, per-epoch evaluation, checkpoints, resume
# ------------------------------------------------------------------------------------------------------------


def test_frozen_video_tower_keeps_weights_and_batch_norm_statistics(tmp_path):
    model = tiny_model().train()
    freeze_towers(model, video=True)
    video_before, projection_before = state_of(model.video_model), state_of(model.video_projection)
    trainer = VideoCLIPTrainer(
        model=model, args=quick_args(tmp_path, max_steps=1), train_dataset=synthetic_dataset(2),
        data_collator=VideoCLIPDataCollator(tiny_processor()),
    )
    trainer.train()
    assert_bit_identical(video_before, state_of(model.video_model))  # parameters and BatchNorm buffers
    projection_after = state_of(model.video_projection)
    assert any(not torch.equal(projection_before[k], projection_after[k]) for k in projection_before)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    """The MUGEN recipe at test scale: DistilBERT frozen, S3D and projections trained, dropout on, 4 clips in
    batches of 2 for 2 epochs (4 steps), evaluation each epoch, a checkpoint every 2 steps."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("recipe")
    torch.manual_seed(0)
    model = VideoCLIPModel(train_config()).train()
    freeze_towers(model, text=True)
    text_before = state_of(model.text_model)
    video_before = state_of(model.video_model)
    args = quick_args(root / "full", max_steps=4, eval_strategy="epoch", save_strategy="steps", save_steps=2)
    dataset = synthetic_dataset(4)
    trainer = train(
        VideoCLIPTrainArguments(freeze_text=True), args, train_dataset=dataset, eval_dataset=dataset,
        model=model, processor=tiny_processor(),
    )
    return dict(root=root, trainer=trainer, dataset=dataset, text_before=text_before, video_before=video_before)


def test_frozen_text_tower_is_bit_identical_and_video_tower_trains(recipe_run):
    model = recipe_run["trainer"].model
    assert_bit_identical(recipe_run["text_before"], state_of(model.text_model))
    video_after = state_of(model.video_model)
    assert any(not torch.equal(recipe_run["video_before"][k], video_after[k]) for k in video_after)


def test_validation_recall_at_k_every_epoch(recipe_run):
    evals = [entry for entry in recipe_run["trainer"].state.log_history if "eval_loss" in entry]
    assert [entry["epoch"] for entry in evals] == [1.0, 2.0]
    for entry in evals:
        for direction in ("text_to_video", "video_to_text"):
            for k in (1, 5, 10):
                assert 0.0 <= entry[f"eval_{direction}/R@{k}"] <= 100.0
            assert entry[f"eval_{direction}/R@5"] == 100.0  # 4 candidates
        assert entry["eval_num_pairs"] == 4


def test_checkpoints_are_safetensors_loadable_by_automodel(recipe_run):
    trainer = recipe_run["trainer"]
    checkpoint = os.path.join(trainer.args.output_dir, "checkpoint-4")
    assert os.path.isfile(os.path.join(checkpoint, "model.safetensors"))
    assert not any(name.endswith(".bin") and "model" in name for name in os.listdir(checkpoint))
    loaded = AutoModel.from_pretrained(checkpoint)
    assert isinstance(loaded, VideoCLIPModel)
    assert_bit_identical(state_of(trainer.model), state_of(loaded))
    assert isinstance(AutoProcessor.from_pretrained(checkpoint).video_processor.num_frames, int)
    final = AutoModel.from_pretrained(trainer.args.output_dir)  # train() saves the final model too
    assert_bit_identical(state_of(trainer.model), state_of(final))


def test_resume_from_checkpoint_continues_identically(recipe_run):
    full = recipe_run["trainer"]
    full_losses = train_losses(full)
    assert len(full_losses) == 4
    # A fresh model with other weights: resuming must restore the weights, optimizer, RNG and data order.
    torch.manual_seed(123)
    model = VideoCLIPModel(train_config()).train()
    freeze_towers(model, text=True)
    args = quick_args(recipe_run["root"] / "resumed", max_steps=4, eval_strategy="epoch", save_strategy="no")
    resumed = train(
        VideoCLIPTrainArguments(freeze_text=True), args, train_dataset=recipe_run["dataset"],
        eval_dataset=recipe_run["dataset"], model=model, processor=tiny_processor(),
        resume_from_checkpoint=os.path.join(full.args.output_dir, "checkpoint-2"),
    )
    resumed_losses = train_losses(resumed)  # steps 1-2 come back with the checkpoint's trainer state
    assert len(resumed_losses) == 4 and resumed_losses[2:] == full_losses[2:], (resumed_losses, full_losses)
    assert_bit_identical(state_of(full.model), state_of(resumed.model))
    full_eval = [e for e in full.state.log_history if "eval_loss" in e][-1]
    resumed_eval = [e for e in resumed.state.log_history if "eval_loss" in e][-1]
    for key in ("eval_loss", "eval_text_to_video/R@1", "eval_video_to_text/R@1"):
        assert resumed_eval[key] == full_eval[key]


# ------------------------------------------------------------------------------------------------------------
# Two processes
# ------------------------------------------------------------------------------------------------------------


def test_two_process_gather_loss_matches_single_process():
    """torchrun, 2 processes, gloo: mean loss and every DDP-averaged gradient equal a single process over the
    concatenated batch (tol 1e-5; model in eval mode, see dist_loss_check.py), uneven batches included."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         os.path.join(TESTS_DIR, "dist_loss_check.py"), "--tol", "1e-5"],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, env=env,
    )
    assert result.returncode == 0 and "DIST_LOSS_CHECK_OK" in result.stdout, (
        result.stdout[-3000:] + result.stderr[-3000:]
    )
