"""Checks the cross-process contrastive loss: run with ``torchrun --nproc_per_node 2 tests/dist_loss_check.py``.

Launched by ``tests/test_training.py::test_two_process_gather_loss_matches_single_process`` (gloo, CPU).

1. Model check. Every rank builds the same tiny VideoCLIP (same seed) and the same global batch of
   ``2 * world_size`` (text, video) pairs; rank 0 first computes the loss and every parameter's gradient of a
   single process over the whole batch (before the process group exists, so nothing is gathered). Then each
   rank runs its slice through the model wrapped in ``DistributedDataParallel`` (which averages gradients over
   ranks, as Trainer/Accelerate do) and backpropagates its local loss. The average of the local losses and the
   DDP gradients must equal the single-process ones (tolerance ``--tol``, 1e-5).

   The model runs in EVAL mode: BatchNorm in train mode normalises with per-rank batch statistics (so a global
   batch split over ranks is a different computation, as in any DDP training without SyncBatchNorm) and dropout
   draws different masks; eval mode removes both so the comparison isolates the loss's gather and gradients.

2. Uneven batches (cheap, embeddings only): rank r holds ``3 - r`` rows; the ranks' losses average to the
   single-process loss of the concatenation and the embedding gradients match it.

Prints ``DIST_LOSS_CHECK_OK`` on rank 0 when everything matches; exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tiny_videoclip import CAPTIONS, TINY_NUM_FRAMES, random_videos, tiny_model, tiny_processor

from modeling_videoclip.modeling_videoclip import contrastive_loss


def global_batch(world_size: int, per_rank: int) -> dict[str, torch.Tensor]:
    count = world_size * per_rank
    texts = [CAPTIONS[i % len(CAPTIONS)] for i in range(count)]
    videos = random_videos(count, frames=TINY_NUM_FRAMES, size=224, seed=1)
    return dict(tiny_processor()(text=texts, videos=videos, return_tensors="pt"))


def model_loss_and_grads(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[float, dict]:
    model.zero_grad(set_to_none=True)
    loss = model(**batch, return_loss=True).loss
    loss.backward()
    module = model.module if hasattr(model, "module") else model
    grads = {name: p.grad.detach().clone() for name, p in module.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def make_model(batch: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The tiny model in eval mode (see the module docstring), its BatchNorm statistics set from `batch` so
    that S3D's activations are normalised (with the initial statistics 0 and 1, a random S3D's activations
    grow layer after layer and every embedding comes out the same)."""
    model = tiny_model(seed=0, video_config=dict(batch_norm_momentum=1.0))
    model.train()
    with torch.no_grad():
        model(**batch)  # momentum 1: the running statistics become this batch's
        model.logit_scale.fill_(1.3)  # away from 0.07 so the temperature matters
    return model.eval()


def compare(name: str, got: torch.Tensor, want: torch.Tensor, tol: float, failures: list[str]) -> None:
    if got.shape != want.shape or not torch.allclose(got, want, atol=tol, rtol=tol):
        diff = (got - want).abs().max().item() if got.shape == want.shape else float("nan")
        failures.append(f"{name}: max abs diff {diff:.3g} (shape {tuple(got.shape)} vs {tuple(want.shape)})")


def check_model(rank: int, world_size: int, per_rank: int, tol: float) -> list[str]:
    batch = global_batch(world_size, per_rank)
    failures: list[str] = []
    model = make_model(batch)
    reference = None
    if rank == 0:
        reference = model_loss_and_grads(copy.deepcopy(model), batch)
    dist.init_process_group("gloo")
    rows = slice(rank * per_rank, (rank + 1) * per_rank)
    # Same padded length on every rank: slice the globally padded batch.
    local = {key: value[rows] for key, value in batch.items()}
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    loss, grads = model_loss_and_grads(ddp, local)
    dist.all_reduce(loss)
    loss /= world_size
    if rank == 0:
        ref_loss, ref_grads = reference
        compare("loss", loss, ref_loss, tol, failures)
        missing = sorted(set(ref_grads) ^ set(grads))
        if missing:
            failures.append(f"parameters with a gradient on one side only: {missing[:5]}")
        for name in ref_grads.keys() & grads.keys():
            compare(f"grad {name}", grads[name], ref_grads[name], tol, failures)
        largest = max(g.abs().max().item() for g in ref_grads.values())
        print(f"model check: largest gradient entry {largest:.3g}", flush=True)
        print(f"model check: loss {loss.item():.6f} vs single process {ref_loss.item():.6f}; "
              f"{len(ref_grads)} parameter gradients compared", flush=True)
    return failures


def check_uneven(rank: int, world_size: int, tol: float) -> list[str]:
    sizes = [3 - (r % 2) for r in range(world_size)]
    generator = torch.Generator().manual_seed(7)
    text = F.normalize(torch.randn(sum(sizes), 8, generator=generator), dim=-1)
    video = F.normalize(torch.randn(sum(sizes), 8, generator=generator), dim=-1)
    scale = torch.tensor(0.5)
    # Reference: the whole batch in one "process" (no gather: call with the group-free loss by hand).
    ref_text, ref_video = text.clone().requires_grad_(), video.clone().requires_grad_()
    logits = ref_text @ ref_video.T * scale.exp()
    labels = torch.arange(sum(sizes))
    ref_loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    ref_loss.backward()

    start = sum(sizes[:rank])
    rows = slice(start, start + sizes[rank])
    local_text, local_video = text[rows].clone().requires_grad_(), video[rows].clone().requires_grad_()
    loss = contrastive_loss(local_text, local_video, scale)
    (loss / world_size).backward()  # what DDP's gradient averaging amounts to
    loss = loss.detach().clone()
    dist.all_reduce(loss)
    loss /= world_size
    failures: list[str] = []
    compare("uneven loss", loss, ref_loss.detach(), tol, failures)
    compare(f"uneven text grad rank {rank}", local_text.grad, ref_text.grad[rows], tol, failures)
    compare(f"uneven video grad rank {rank}", local_video.grad, ref_video.grad[rows], tol, failures)
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-rank", type=int, default=2, help="pairs per rank in the model check (default 2)")
    parser.add_argument("--tol", type=float, default=1e-5, help="absolute and relative tolerance (default 1e-5)")
    parser.add_argument(
        "--negative-control", action="store_true",
        help="scale the distributed loss by the world size (the classic all-gather mistake); the check must FAIL",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.negative_control:
        import modeling_videoclip.modeling_videoclip as modeling

        original = modeling.contrastive_loss

        def scaled(*tensors):
            loss = original(*tensors)
            return loss * dist.get_world_size() if dist.is_initialized() else loss

        modeling.contrastive_loss = scaled
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    failures = check_model(rank, world_size, args.per_rank, args.tol)
    failures += check_uneven(rank, world_size, args.tol)
    gathered: list = [None] * world_size
    dist.all_gather_object(gathered, failures)
    dist.destroy_process_group()
    all_failures = [f for per_rank in gathered for f in per_rank]
    if rank == 0:
        if all_failures:
            print("DIST_LOSS_CHECK_FAILED\n" + "\n".join(all_failures[:40]), flush=True)
        else:
            print("DIST_LOSS_CHECK_OK", flush=True)
    return 1 if all_failures else 0


if __name__ == "__main__":
    sys.exit(main())
