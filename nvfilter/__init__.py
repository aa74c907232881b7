"""nvfilter: learn a video as a continuous function (x, y, t) -> RGB and play it back at any rate and size."""

__version__ = "0.1.0"
