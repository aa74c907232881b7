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
