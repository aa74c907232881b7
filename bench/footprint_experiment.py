"""Footprint supervision against point supervision for upscaling, side by side (issue 5).

    python bench/footprint_experiment.py    # 20 s encodes, 2x-downscaled realshort and Principe

Point: the default encode's loss at pixel centres. Footprint: the mean of the network at four
points a quarter pixel from the centre, against the pixel. Both decoded at twice the size and
scored against the original, beside ffmpeg's bicubic.
"""

import sys
import time

import numpy as np
import torch

sys.argv = sys.argv[:1]
import quality_bench as q  # noqa: E402  (puts the checkout on sys.path)

from nvfilter.config import VideoInfo  # noqa: E402
from nvfilter.coords import index_coords  # noqa: E402
from nvfilter.decode.render import iter_frames, plan_render  # noqa: E402
from nvfilter.config import EncodeOptions
from nvfilter.encode.encoder import create_model  # noqa: E402
from nvfilter.encode.train import cosine_scale, make_optimiser  # noqa: E402

torch.set_num_threads(2)
print("command: python bench/footprint_experiment.py; 2 threads, torch " + torch.__version__)
BUDGET = 20


def train(frames, rate, footprint):
    t = torch.from_numpy(frames.copy())
    N, H, W, _ = t.shape
    video = VideoInfo(width=W, height=H, frames=N, frame_rate=rate)
    torch.manual_seed(0)
    model, _ = create_model(EncodeOptions(), video)
    opt = make_optimiser(model, 3e-3)
    base = [g["lr"] for g in opt.param_groups]
    colors = t.reshape(-1, 3)
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    steps = 0
    while (el := time.perf_counter() - start) < BUDGET:
        idx = torch.randint(colors.shape[0], (4096,), generator=g)
        c = index_coords(idx, W, H, N)
        tgt = colors[idx].float() / 255
        if footprint:
            d = torch.tensor(
                [
                    [-0.5 / W, -0.5 / H, 0],
                    [0.5 / W, -0.5 / H, 0],
                    [-0.5 / W, 0.5 / H, 0],
                    [0.5 / W, 0.5 / H, 0],
                ]
            )
            out = model((c.unsqueeze(0) + d.unsqueeze(1)).reshape(-1, 3)).view(4, -1, 3).mean(0)
        else:
            out = model(c)
        loss = ((out - tgt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        for gr, b in zip(opt.param_groups, base, strict=True):
            gr["lr"] = b * cosine_scale(el / BUDGET)
    model.eval()
    return model, video, steps


for name in ["realshort.mp4", "Principe_inertie.avi"]:
    frames, rate = q.load(name, q.SPATIAL_SIZE, q.SPATIAL_FRAMES)
    W, H = q.SPATIAL_SIZE
    small = q.ffmpeg_filter(frames, rate, f"scale={W // 2}:{H // 2}:flags=area", (W // 2, H // 2))
    bic = q.score(
        q.ffmpeg_filter(small, rate, f"scale={W}:{H}:flags=bicubic", q.SPATIAL_SIZE), frames
    )
    for fp in (False, True):
        model, video, steps = train(small, rate, fp)
        up = np.stack(list(iter_frames(model, plan_render(video, width=W, height=H), video.frames)))
        same = np.stack(list(iter_frames(model, plan_render(video), video.frames)))
        print(
            name,
            "footprint" if fp else "points",
            steps,
            f"steps; upscaled {q.score(up, frames)[0]:.2f} dB",
            f"learned size {q.score(same, small)[0]:.2f}",
            f"bicubic {bic[0]:.2f}",
            flush=True,
        )
