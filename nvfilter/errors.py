"""Error types, one per boundary. The CLI turns each into one line on stderr and a non-zero exit."""


class NvfilterError(Exception):
    """A problem the user can fix; its message is shown as it is, with no traceback."""

    exit_code = 1


class VideoError(NvfilterError):
    """The input video cannot be read, has no video stream or no frames, or does not fit."""


class NvwError(NvfilterError):
    """A .nvw file is missing, truncated, not safetensors, or of a format this version cannot read."""


class PresetError(NvfilterError):
    """A preset is unknown, cannot be parsed, or has a key nvfilter does not know."""


class OptionError(NvfilterError):
    """A flag has a value that makes no sense (non-positive size or rate, absurd size...)."""


class OutputError(NvfilterError):
    """The output cannot be written (ffmpeg refused the codec or container, disk full...);
    ``reason``, where set, is the message without the path (to report it on another path)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
