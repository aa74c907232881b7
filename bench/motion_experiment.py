"""A learned motion field before the planes against the default hybrid, for new frames (issue 5).

    python bench/motion_experiment.py [--budget 30] [--clips ...] [--ks 2 4]

Motion: a coarse displacement field (1/FLOW_SCALE of the width and height, one sample per learned
frame, read trilinearly, zero at the start) moves (x, y) before the planes are read, so that a frame
between two learned ones can show content moved part of the way instead of a cross-fade. Scored as
quality_bench.py's temporal test: every k-th frame kept and learned, the ones between scored.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.argv, ARGS = sys.argv[:1], sys.argv[1:]
import quality_bench as q  # noqa: E402  (puts the checkout on sys.path)

from nvfilter.config import VideoInfo  # noqa: E402
from nvfilter.decode.render import iter_frames, plan_render  # noqa: E402
from nvfilter.config import EncodeOptions
from nvfilter.encode.encoder import create_model, train_config  # noqa: E402
from nvfilter.encode.train import Trainer  # noqa: E402
from nvfilter.models import VideoField  # noqa: E402
from nvfilter.models.planes import PlaneField  # noqa: E402

FLOW_SCALE = 8
FLOW_LR = 1e-3


class MotionField(VideoField):
    """A PlaneField whose (x, y) are displaced by a learned coarse flow before the planes."""

    kind = "motion"

    def __init__(self, base: PlaneField, flow_lr: float) -> None:
        super().__init__()
        self.base = base
        fw = max(2, math.ceil(base.width / FLOW_SCALE))
        fh = max(2, math.ceil(base.height / FLOW_SCALE))
        self.flow = nn.Parameter(torch.zeros(1, 2, base.frames, fh, fw))
        self.flow_lr = flow_lr

    def displacement(self, coords: torch.Tensor) -> torch.Tensor:
        grid = coords.view(1, -1, 1, 1, 3)  # (x, y, t) -> (W, H, D) of the flow volume
        d = F.grid_sample(self.flow, grid, align_corners=False, padding_mode="border")
        return d.view(2, -1).t()

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        xy = coords[:, :2] + self.displacement(coords)
        return self.base(torch.cat([xy, coords[:, 2:]], 1))

    def param_groups(self, lr: float):
        return [*self.base.param_groups(lr), {"params": [self.flow], "lr": self.flow_lr}]


def freeze_time_planes(model: MotionField, seconds: float, trainer: Trainer) -> None:
    """Zero the gradient of the xt and yt planes for the first ``seconds`` of training: changes over
    time must first be explained by moving the xy planes (the flow), the time planes then learn
    what motion leaves."""
    base = model.base
    mask = torch.ones(base.table.shape[0], 1)
    for k, (a, b) in enumerate(base.sizes.tolist()):
        if k % 3:
            start = int(base.offsets[k])
            mask[start : start + int(a * b)] = 0

    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * mask if trainer.elapsed < seconds else grad

    base.table.register_hook(hook)


def learn(frames: np.ndarray, rate: Fraction, budget: float, motion: bool, warmup: float = 0):
    tensor = torch.from_numpy(frames.copy())
    video = VideoInfo(
        width=frames.shape[2], height=frames.shape[1], frames=frames.shape[0], frame_rate=rate
    )
    options = EncodeOptions(time_budget=budget)
    torch.manual_seed(options.seed)
    model, _ = create_model(options, video)
    if motion:
        model = MotionField(model, FLOW_LR)  # type: ignore[arg-type]
    trainer = Trainer(model, tensor, train_config(options, "cpu"))
    if motion and warmup:
        freeze_time_planes(model, warmup * budget, trainer)  # type: ignore[arg-type]
    result = trainer.run()
    return model, video, result.steps


def temporal(name: str, k: int, budget: float) -> dict[str, tuple[float, float]]:
    frames, rate = q.load(name, q.TEMPORAL_SIZE, q.TEMPORAL_FRAMES)
    last = (frames.shape[0] - 1) // k * k
    kept = frames[: last + 1 : k]
    held = [j for j in range(last) if j % k]
    rows: dict[str, tuple[float, float]] = {}
    for label, motion, warmup in (
        ("default", False, 0.0),
        ("motion", True, 0.0),
        ("motion, time planes frozen first 30%", True, 0.3),
    ):
        model, video, steps = learn(kept, rate / k, budget, motion, warmup)
        spec = plan_render(video, temporal_scale=Fraction(k), fps=rate)
        with torch.inference_mode():
            decoded = np.stack(list(iter_frames(model, spec, video.frames)))
        rows[label] = q.score(decoded[held], frames[held])
        rows[f"{label}, kept frames"] = q.score(decoded[: last + 1 : k], kept)
        if motion:
            flow = model.flow.detach()  # type: ignore[union-attr]
            px = (flow[0, 0].abs() * video.width / 2).max().item()
            print(f"{name} k={k} {label}: {steps} steps, largest |dx| {px:.2f} px", flush=True)
        else:
            print(f"{name} k={k} {label}: {steps} steps", flush=True)
    padded = np.concatenate([kept, kept[-1:]])
    blend = q.ffmpeg_filter(padded, rate / k, f"framerate=fps={rate}", q.TEMPORAL_SIZE)
    rows["ffmpeg framerate"] = q.score(blend[held], frames[held])
    mci = q.ffmpeg_filter(padded, rate / k, f"minterpolate=fps={rate}:mi_mode=mci", q.TEMPORAL_SIZE)
    rows["ffmpeg minterpolate"] = q.score(mci[held], frames[held])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--clips", nargs="+", default=q.CLIPS)
    parser.add_argument("--ks", nargs="+", type=int, default=[2, 4])
    args = parser.parse_args(ARGS)
    torch.set_num_threads(2)
    print(f"command: python bench/motion_experiment.py {' '.join(ARGS)}")
    for k in args.ks:
        results = {name: temporal(name, k, args.budget) for name in args.clips}
        q.table(f"k = {k}, {args.budget:g} s encodes", results)
    print(f"\n(took {time.process_time() / 60:.0f} CPU minutes)")


if __name__ == "__main__":
    main()
