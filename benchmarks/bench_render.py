"""Renderer speed and fidelity: modeling_videoclip.mugen vs the reference renderer (torchmultimodal).

The reference code is not part of this project. Point ``--reference-dir`` at a checkout of
facebookresearch/multimodal (only ``examples/mugen/data/coinrun/{game,construct_from_json}.py`` are used),
e.g.::

    git clone https://github.com/facebookresearch/multimodal /tmp/mmref
    python benchmarks/bench_render.py --reference-dir /tmp/mmref

Both renderers draw the same clips (the project's synthetic sample) with the same stand-in sprites, one
process, one thread. The reference is driven exactly the way its ``MUGENDataset`` drives it (assets loaded
once per world theme with binarised alpha, then ``draw_game_frame(..., gen_original=True)`` per frame).
Printed: clips/s for each (wall clock and CPU time), the speed ratio, and the largest absolute pixel difference
over all frames.
Add ``--segmentation`` to compare segmentation maps as well.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_videoclip.mugen import MugenRenderer, load_game, make_mugen_sample  # noqa: E402


def _import_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class ReferenceRenderer:
    """The reference renderer, set up as ``MUGENDataset.init_game_assets`` does."""

    def __init__(self, reference_dir: Path, asset_dir: str, first_json: str, resolution: int):
        coinrun = Path(reference_dir) / "examples" / "mugen" / "data" / "coinrun"
        if not (coinrun / "construct_from_json.py").is_file():
            raise SystemExit(f"--reference-dir {reference_dir}: no examples/mugen/data/coinrun/construct_from_json.py")
        self.cfj = _import_file("_ref_construct_from_json", coinrun / "construct_from_json.py")
        self.game_mod = _import_file("_ref_game", coinrun / "game.py")
        self.resolution = resolution
        self.game = self.game_mod.Game()
        self.game.load_json(first_json)
        self.game.video_res = resolution
        smap = self.cfj.define_semantic_color_map(21)
        self.kx = self.game.zoom * resolution / self.game.maze_w
        self.ky = self.kx
        zx = resolution * self.game.zoom
        self.asset_map = {}
        for theme in range(len(self.game.background_themes)):
            self.game.world_theme_n = theme
            files = self.cfj.generate_asset_paths(self.game)
            self.asset_map[theme] = self.cfj.load_assets(files, asset_dir, smap, self.kx, self.ky, gen_original=False)
            self.asset_map[theme]["background"] = self.cfj.load_bg_asset(files, asset_dir, smap, zx, zx)

    def render_loaded(self, frame_ids, segmentation: bool = False) -> np.ndarray:
        frames = []
        for i in frame_ids:
            img = self.cfj.draw_game_frame(
                self.game, i, self.asset_map[self.game.world_theme_n], self.kx, self.ky,
                gen_original=not segmentation, bbox_smap_for_agent=True, bbox_smap_for_monsters=True,
            )
            frames.append(np.array(img))
        return np.stack(frames)


def _clip_paths(data_dir: Path) -> list:
    paths = []
    for split in ("train", "val", "test"):
        with open(Path(data_dir) / "coinrun_dataset_jsons" / "release" / f"{split}.json") as f:
            release = json.load(f)
        folder = Path(data_dir) / release["metadata"]["data_folder"]
        paths += [str(folder / d["video"]["json_file"]) for d in release["data"] if d["video"]["num_frames"] >= 96]
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-dir", required=True, type=Path, help="checkout of facebookresearch/multimodal")
    parser.add_argument("--data-dir", default=None, help="a MUGEN-format folder (default: a fresh synthetic sample)")
    parser.add_argument("--num-clips", type=int, default=16, help="clips to time (16)")
    parser.add_argument("--warmup-clips", type=int, default=48,
                        help="other clips rendered first, untimed, so cross-level caches are warm as in a long "
                             "run (48; 0 measures a cold start)")
    parser.add_argument("--resolution", type=int, nargs="+", default=[256, 224], help="(256 224)")
    parser.add_argument("--sequence-length", type=int, default=32, help="frames per clip (32, MUGEN's)")
    parser.add_argument("--every", type=int, default=3, help="frame stride (3, MUGEN's)")
    parser.add_argument("--segmentation", action="store_true", help="also compare segmentation maps")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep every rendered clip in memory until the end (adds page-fault cost to both)")
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="mugen-bench-")
    if args.data_dir is None:
        data_dir = make_mugen_sample(Path(tmp.name) / "clips", num_clips=args.num_clips, seed=1234, short_clips=0,
                                     with_audio=False)
    else:
        data_dir = Path(args.data_dir)
    warm_dir = make_mugen_sample(Path(tmp.name) / "warm", num_clips=max(args.warmup_clips, 1), seed=4321,
                                 short_clips=0, with_audio=False, with_assets=False)
    asset_dir = str(Path(data_dir) / "assets")
    paths = _clip_paths(data_dir)[: args.num_clips]
    warm_paths = _clip_paths(warm_dir)[: args.warmup_clips]
    frame_ids = list(range(0, args.sequence_length * args.every, args.every))

    for res in args.resolution:
        print(f"== resolution {res}: {len(paths)} clips x {len(frame_ids)} frames, one process ==")
        t0 = time.perf_counter()
        ref = ReferenceRenderer(args.reference_dir, asset_dir, paths[0], res)
        ref_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = MugenRenderer(asset_dir, res)
        ours.render(load_game(paths[0]), frame_ids[:1])  # sprite loading, as the reference's init does
        our_init = time.perf_counter() - t0

        def ref_clip(p, seg=False):
            ref.game.load_json(p)
            ref.game.video_res = res
            t, c = time.perf_counter(), time.process_time()
            out = ref.render_loaded(frame_ids, segmentation=seg)
            return out, time.perf_counter() - t, time.process_time() - c

        def our_clip(p, seg=False):
            game = load_game(p)
            ours._levels.clear()  # every clip pays for its own level, as with shuffled training data
            t, c = time.perf_counter(), time.process_time()
            out = ours.render_segmentation(game, frame_ids) if seg else ours.render(game, frame_ids)
            return out, time.perf_counter() - t, time.process_time() - c

        for p in warm_paths:
            our_clip(p)
        # Interleaved clip by clip, so load changes on a shared machine hit both renderers alike.
        # Each clip's frames are compared and dropped before the next clip, as a data loader consumes them:
        # keeping every clip alive would add page faults on fresh memory (~6 MB a clip) to both renderers.
        # --keep-outputs keeps them (the behaviour of earlier versions of this benchmark).
        kept = []
        diffs, mismatch = [], []
        ref_total = ref_render = our_total = our_render = ref_cpu = our_cpu = 0.0
        for p in paths:
            outs = {}
            for fn, which in ((ref_clip, "ref"), (our_clip, "ours")):
                t0 = time.perf_counter()
                outs[which], r, c = fn(p)
                total = time.perf_counter() - t0
                if which == "ref":
                    ref_total, ref_render, ref_cpu = ref_total + total, ref_render + r, ref_cpu + c
                else:
                    our_total, our_render, our_cpu = our_total + total, our_render + r, our_cpu + c
            a, b = outs["ref"], outs["ours"]
            diffs.append(int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()))
            mismatch.append(float((a != b).any(-1).mean()))
            if args.keep_outputs:
                kept.append(outs)
            del outs, a, b
        n = len(paths)
        del kept
        print(f"init (sprites): reference {ref_init:.2f}s, ours {our_init:.2f}s")
        print(f"rendering only:   reference {n / ref_render:7.1f} clips/s, ours {n / our_render:7.1f} clips/s, "
              f"ratio {ref_render / our_render:5.1f}x")
        print(f"rendering CPU time (less sensitive to other load): reference {1e3 * ref_cpu / n:.1f} ms/clip, "
              f"ours {1e3 * our_cpu / n:.1f} ms/clip, ratio {ref_cpu / max(our_cpu, 1e-9):5.1f}x")
        print(f"with JSON parse:  reference {n / ref_total:7.1f} clips/s, ours {n / our_total:7.1f} clips/s, "
              f"ratio {ref_total / our_total:5.1f}x")
        print(f"max abs pixel difference: {max(diffs)} (per clip: {diffs}); "
              f"largest fraction of differing pixels in a clip: {max(mismatch):.5f}")
        if args.segmentation:
            seg_bad = [float((ref_clip(p, True)[0] != our_clip(p, True)[0]).mean()) for p in paths]
            print(f"segmentation: largest fraction of differing labels in a clip: {max(seg_bad):.6f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
