"""``urst-dask`` command line: a thin layer over :mod:`urst_dask.api`.

Exit status 0 on success, 2 on bad input (one ``urst-dask: error: ...`` line), 130 on Ctrl-C,
143 on SIGTERM (handled like Ctrl-C: the run unwinds and removes its scratch data; a second
SIGTERM kills at once).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Sequence

from .. import __version__, logs
from ..errors import UrstError
from . import bench, images, info, train, video
from .options import add_verbosity

# Each command module has ``register(subparsers)``, which adds its parsers with ``func=handler``.
COMMANDS = (images, info, video, train, bench)


def _spawned_workers_ignore_sigint() -> None:
    """In a process that ``multiprocessing`` spawned from the command line (the embedded
    cluster's worker: it imports the command line's main module, and this package, as
    ``__mp_main__`` before anything else), ignore SIGINT from the start.  A Ctrl-C in a terminal
    reaches the whole process group; the command line closes its workers, which would
    otherwise die printing a ``KeyboardInterrupt`` traceback.  That lets the command line
    itself keep Ctrl-C live while its workers start (:func:`urst_dask.pipeline.earlystart.prestart`)."""
    # multiprocessing names every process's main module __mp_main__ too; only a spawned child,
    # while it runs its parent's main script, has an __mp_main__ that is not its __main__
    rerun = sys.modules.get("__mp_main__")
    if rerun is not None and rerun is not sys.modules.get("__main__") and \
            threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


_spawned_workers_ignore_sigint()
EXAMPLES = """Examples:
  urst-dask demo -o demo.zarr                            and demo.png; no input files needed
  urst-dask stylize photo.tif starry.jpg -o out.zarr     tile by tile into a Zarr store
  urst-dask export out.zarr out.tif                      a pyramidal OME-TIFF for QuPath or napari
  urst-dask compare out.zarr                             seam score and stroke size

`urst-dask COMMAND --help` shows a command's options and examples.
"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="urst-dask", description="Ultra-resolution style transfer (URST) on Dask.",
                                 epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"urst-dask {__version__}", help="print the version and exit")
    add_verbosity(ap, default=False)
    sub = ap.add_subparsers(dest="cmd", required=True, title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    for command in sub.choices.values():  # -v/-q on every command, and on the commands of a group
        add_verbosity(command)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                for inner in action.choices.values():
                    add_verbosity(inner)
    return ap


def run_command(args: argparse.Namespace) -> None:
    """Run the handler the parsed command registered (one place, so tests can watch it)."""
    args.func(args)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run unwinds exactly as on Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM during the cleanup kills at once
    raise Terminated()


REDELIVER_S = 0.1  # a swallowed stop is signalled again after this long, from a helper thread


def _redeliver(signum: int) -> None:
    timer = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


def _stops_survive(previous: Any) -> Any:
    """A ``sys.unraisablehook`` that signals a swallowed stop again.

    The exception a signal handler raises (SIGTERM's :class:`Terminated`, Ctrl-C's
    KeyboardInterrupt) lands wherever the main thread is; inside a garbage-collector
    callback or a ``__del__`` (distributed's GC diagnosis, say) Python prints "Exception
    ignored" and goes on, and the run carried on to the end and exited 0.  Here the signal is
    sent again shortly, to be raised in ordinary code."""
    def hook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, Terminated):
            signal.signal(signal.SIGTERM, _terminate)
            _redeliver(signal.SIGTERM)
        elif isinstance(exc, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            _redeliver(signal.SIGINT)
        elif not _closed_coroutine_noise(unraisable):
            previous(unraisable)
    return hook


def _closed_coroutine_noise(unraisable: Any) -> bool:
    """Zarr's pending reads of an unreachable store, closed as their event loop's context is
    torn down after the failure was reported in one line: ~100 lines of "Exception ignored in
    <coroutine StorePath.get>... was created in a different Context" that say nothing more."""
    import inspect

    exc = unraisable.exc_value
    return isinstance(exc, ValueError) and "was created in a different Context" in str(exc) \
        and inspect.iscoroutine(unraisable.object)


def _handle_sigterm() -> tuple[bool, Any]:
    """Install :func:`_terminate` for SIGTERM; return whether it was installed (not outside the
    main thread, where Python cannot install handlers) and the handler it replaces."""
    try:
        return True, signal.signal(signal.SIGTERM, _terminate)
    except ValueError:
        return False, None


def _left_behind(args: argparse.Namespace) -> str:
    """What a stopped command leaves, for its last line."""
    not_written = "the export was not written (no file, or the one that was there, under its name)"
    if args.cmd == "export":
        return f"; {not_written}"
    if getattr(args, "exporting", False):  # stylize/demo --export, once the store is complete
        return f"; the output store is complete, {not_written}"
    if args.cmd in ("stylize", "demo", "video"):
        return "; any output store is left marked incomplete"
    return ""


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """``parse_args``, but a style typed after an option (``stylize in.jpg -o out.zarr wave.jpg``)
    is the style: argparse (3.11) fills the optional positional ``style`` (optional since it may
    come as ``--style``) with nothing as soon as it reads the content, and left it over."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if len(extra) == 1 and not extra[0].startswith("-") and hasattr(args, "style_option") and args.style is None:
        args.style, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parse(argv)
        from ..pipeline.cluster import quiet_logging
    except KeyboardInterrupt:  # Ctrl-C while the parser's modules import: one line, as later
        print("urst-dask: interrupted", file=sys.stderr)
        return 130
    quiet_logging(args.verbose)  # one line per failure; -v adds the workers' tracebacks
    logs.configure(verbose=args.verbose, quiet=args.quiet)
    installed, previous = _handle_sigterm()
    unraisable = sys.unraisablehook
    sys.unraisablehook = _stops_survive(unraisable)
    try:
        run_command(args)
    except UrstError as exc:
        print(f"urst-dask: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"urst-dask: terminated (SIGTERM){_left_behind(args)}", file=sys.stderr)
        return 143
    except BrokenPipeError:  # the reader went away (`urst-dask methods | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"urst-dask: interrupted{_left_behind(args)}", file=sys.stderr)
        return 130
    finally:
        sys.unraisablehook = unraisable
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    return 0


def entry() -> None:
    """The ``urst-dask`` program (and ``python -m urst_dask``): :func:`main`, then exit.

    Before it, torch is told to give this process's CPU tensors huge pages
    (:func:`~urst_dask.engine.process.huge_pages_environ`: in-process workers, the thumbnail),
    unless the environment already says otherwise; torch is not imported yet here.  The embedded
    cluster's worker processes get the same from :mod:`urst_dask.pipeline.cluster`.

    After a successful command the process ends without the teardown of its modules
    (:func:`~urst_dask.engine.process.exit_without_teardown`: threads joined, ``atexit``
    handlers run, streams flushed; 0.5-0.9 s less on a 2-core Xeon with torch imported).
    A failed command exits the usual way."""
    from ..engine.process import exit_without_teardown, huge_pages_environ

    os.environ.update(huge_pages_environ())
    code = main()
    if code == 0:
        exit_without_teardown()
    import gc

    gc.unfreeze()  # a failure exits the usual way, every module torn down (the run froze them: freeze_gc)
    previous = sys.unraisablehook
    sys.unraisablehook = lambda u: None if _closed_coroutine_noise(u) else previous(u)  # after the error's line
    sys.exit(code)
