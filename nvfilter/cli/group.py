"""The `nvfilter` command group: nvfilter's errors, click's usage errors, Ctrl-C and SIGTERM as
one line on stderr and an exit status, no traceback."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from nvfilter.errors import NvfilterError
from nvfilter.version import __version__


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Group(click.Group):
    """Runs a command, printing nvfilter's errors as one line on stderr (no traceback)."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's own usage errors (unknown option, bad value, missing argument) become one
        ``nvfilter: error:`` line too, with click's exit status 2."""
        if not standalone_mode:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as err:  # bare `nvfilter`: the help
            err.show()
            sys.exit(err.exit_code)
        except click.UsageError as err:
            where = f" (see '{err.ctx.command_path} --help')" if err.ctx else ""
            click.echo(f"nvfilter: error: {err.format_message()}{where}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            click.echo(f"nvfilter: error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("nvfilter: interrupted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return super().invoke(ctx)
        except NvfilterError as err:
            click.echo(f"nvfilter: error: {err}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("nvfilter: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(141)


positive_int = click.IntRange(min=1)
positive_float = click.FloatRange(min=0, min_open=True)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nvfilter")
def main() -> None:
    """Learn a video as a continuous function (x, y, t) -> RGB, play it back at any rate and size.

    \b
      nvfilter encode in.mp4 out.nvw
      nvfilter decode out.nvw slow.mp4 --preset slowmo-4x
      cat in.mp4 | nvfilter encode - - | nvfilter decode - - --format nut | ffplay -
    """
