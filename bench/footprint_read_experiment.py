"""Full-resolution planes read as their average over the pixel (--footprint) against point reads.

    python bench/footprint_read_experiment.py [--budget 20] [--clips ...]

The default encode with and without footprint reads, side by side on the same clips, through
quality_bench.py's spatial test (learn a clip downscaled by 2 and 4 with ffmpeg's area filter,
decode at the original size, score against the original; bicubic and lanczos beside it) and its
temporal test at k = 2. Each cell: PSNR / mean SSIM.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

sys.argv, ARGS = sys.argv[:1], sys.argv[1:]
import quality_bench as q  # noqa: E402  (puts the checkout on sys.path)

from nvfilter import encoding  # noqa: E402


def with_footprint(flag: bool):
    """quality_bench's create_model, with the hybrid's footprint reads on or off."""

    def create(options, video):
        model, text = encoding.create_model(options, video)
        model.footprint = flag  # type: ignore[union-attr]
        return model, text

    return create


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--clips", nargs="+", default=q.CLIPS)
    parser.add_argument(
        "--tests", nargs="+", default=["spatial-2", "spatial-4", "temporal-2"], help="which tests"
    )
    args = parser.parse_args(ARGS)
    print(f"command: python bench/footprint_read_experiment.py {' '.join(ARGS)}")
    print(f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; {args.budget:g} s encodes")
    tests = [
        (f"Spatial {f}x", lambda name, f=f: q.spatial(name, f, args.budget))
        for f in (2, 4)
        if f"spatial-{f}" in args.tests
    ] + [
        ("Temporal k = 2", lambda name: q.temporal(name, 2, args.budget))
        for _ in [1]
        if "temporal-2" in args.tests
    ]
    for title, test in tests:
        results: dict[str, dict[str, tuple[float, float]]] = {}
        for name in args.clips:
            rows = {}
            for flag in (False, True):
                q.create_model = with_footprint(flag)
                for method, value in test(name).items():
                    if method.startswith("nvfilter"):
                        method = method.replace("(default encode)", "").strip()
                        rows[f"{method}, {'footprint' if flag else 'point'} reads"] = value
                    elif flag:
                        rows[method] = value
            results[name] = rows
        q.table(title, results)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
