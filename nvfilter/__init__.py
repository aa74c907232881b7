"""nvfilter: learn a video as a continuous function (x, y, t) -> RGB and play it back at any rate and size.

From Python (nvfilter/api.py): ``nvfilter.open(path)`` reads a .nvw anywhere in (x, y, t);
``nvfilter.api.encode`` and ``nvfilter.api.decode`` take the command line's options (the names
``nvfilter.encode`` and ``nvfilter.decode`` are the packages that do the work).
"""

from nvfilter.api import Video, open  # noqa: A004 (nvfilter.open is the verb)
from nvfilter.version import __version__

__all__ = ["Video", "__version__", "open"]
