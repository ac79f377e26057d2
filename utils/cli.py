"""What the command-line scripts share: a user's mistake is one line on stderr and an exit code.

    if __name__ == "__main__":
        run_main(main)

`run_main` calls `main()` and turns the errors a user can cause (a bad value, a missing file, a
full disk, a locked run folder, a NaN run, a damaged checkpoint) into `error: <message>` on stderr
and exit code 2 (a bad value: ValueError) or 1 (everything else). A bug still shows its traceback.
`--debug` on the command line, or CYCLEGAN_DEBUG=1 in the environment, shows the traceback of every
error. Ctrl-C or SIGTERM after the checkpoint is saved exits with 130.
"""

import argparse
import math
import os
import sys
import threading

DEBUG_VARIABLE = "CYCLEGAN_DEBUG"


class UserError(Exception):
    """An error the user can fix (named file, value or process): shown without a traceback."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (`prog: error: ... (see --help)`, exit 2) and a --debug flag."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true",
                          help=f"show the full traceback of an error (or set {DEBUG_VARIABLE}=1)")

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _integer(text, expected):
    """int(text), or the argparse error 'expected <expected>, got <text>'."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text):
    """argparse type: an integer >= 1 (a batch size, an interval, a step count)."""
    value = _integer(text, "an integer >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def non_negative_int(text):
    """argparse type: an integer >= 0 (a seed)."""
    value = _integer(text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def port_number(text):
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    value = _integer(text, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 (any free port) to 65535, got {value}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0 (a size limit in MB)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def finite_float(text):
    """argparse type: a finite number (NaN and inf are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def debug_requested(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def exit_code(error):
    """2 for a bad value (ValueError), 1 for the other errors a user can cause, None for a bug."""
    if isinstance(error, ValueError):
        return 2
    if isinstance(error, (OSError, UserError)):
        return 1
    return None


def _quiet_thread_errors(args):
    """A background thread that fails (TensorBoard's event writer on a full disk raises TensorFlow's
    own error class): one line, not a traceback; the main thread reports the failure itself."""
    name = getattr(args.thread, "name", "?")
    print(f"warning: background thread {name} stopped: {type(args.exc_value).__name__}: {args.exc_value} "
          f"(--debug for the traceback)", file=sys.stderr, flush=True)


def run_main(main, argv=None):
    """Run `main(argv)`; exit with one line on stderr for a user's error (see the module docstring)."""
    if not debug_requested(argv):
        threading.excepthook = _quiet_thread_errors
    try:
        result = main(argv)
    except KeyboardInterrupt:
        sys.exit(130)  # the training loop has saved its checkpoint and printed how to resume
    except Exception as error:  # noqa: BLE001  (sorted below: a bug is re-raised)
        code = exit_code(error)
        if code is None or debug_requested(argv):
            raise
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(code)
    sys.exit(result if isinstance(result, int) else 0)
