"""What the command-line scripts share: a user's mistake is one line on stderr and an exit code.

    if __name__ == "__main__":
        run_main(main)

`run_main` calls `main()` and turns the errors a user can cause (a bad value, a missing file, a
full disk, a locked run folder, a NaN run, a damaged checkpoint) into `error: <message>` on stderr
and exit code 2 (a bad value: ValueError) or 1 (everything else). A bug still shows its traceback.
`--debug` on the command line, or CYCLEGAN_DEBUG=1 in the environment, shows the traceback of every
error. Ctrl-C or SIGTERM after the checkpoint is saved exits with 130.

A script checks its values before it imports TensorFlow (seconds), with the settings' own rules
(models/config.py, utils/training/settings.py); `name_the_flags` words their errors as the command line
does (`--img-size 33: ...`, not `input_dim=(33, 33, 3): ...`). A refused argument is `UsageExit`: exit
code 2, its text the error line.

A quiet console: TensorFlow's start-up and graph-optimiser logs are hidden unless asked for.

Importing TensorFlow prints, twice, `WARNING: All log messages before absl::InitializeLog() is called
are written to STDERR` and `I0000 ... oneDNN custom operations are on ...`; they are information,
not problems, but read like failures to a student. The entry points (train.py, translate.py,
ablate.py) and the notebooks call `quiet()` before anything imports TensorFlow:

    from utils.cli import quiet
    quiet(verbose=args.verbose)    # --verbose: every log line, as TensorFlow prints it

What it does (nothing at all with verbose=True):
1. TF_CPP_MIN_LOG_LEVEL=3 and GLOG_minloglevel=3: TensorFlow's and XLA's C++ logs below FATAL are
   off. Errors that matter still arrive as Python exceptions.
2. Keras (and with it the backend) is imported with the process's stderr pointed at a temporary
   file, because the lines above are written before absl's logging reads any setting. If the
   import fails, what it wrote is printed, then the error is raised.
3. Python loggers of TensorFlow, absl and JAX show errors only.

The one C++ message that used to appear at the first training step, Grappler's `E0000 ... remapper
failed ... LeakyReluGrad`, is removed at its source instead (models/layers.py, FusableLeakyReLU).
"""

import argparse
import logging
import math
import os
import sys
import tempfile
import threading

from utils.runtime.onednn import CHOSEN_FOR, prefer_onednn

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
        line = f"{self.prog}: error: {message} (see --help)"
        sys.stderr.write(line + "\n")
        raise UsageExit(line)


class UsageExit(SystemExit):
    """Exit code 2 for a bad argument; its text is the error line, so a caller of `main()` (a test, a
    notebook) sees why and not only `SystemExit: 2`."""

    def __init__(self, line):
        super().__init__(2)
        self.line = line

    def __str__(self):
        return self.line


def flag_words(flag, value):
    """How a command line sets a value: ('--img-size', 33) -> '--img-size 33', ('--demo', True) -> '--demo'."""
    if value is True:
        return flag
    if isinstance(value, float) and float(f"{value:g}") == value:
        value = f"{value:g}"   # 0.0 -> '0', 0.0002 -> '0.0002', as typed
    return f"{flag} {value}"


def name_the_flags(error, given):
    """A settings error in the command line's words: 'field=value: why' -> '--flag VALUE: why'.

    The settings classes (models/config.py's CycleGANConfig, utils/training/settings.py) start each
    ValueError with the fields at fault, 'name=value: ' or 'name=value, name=value: '. given: {field:
    (flag words, the value the field was given)} for the fields that a flag set. A message that names a
    field no flag set is returned as it is.
    """
    message, flags = str(error), []
    while True:
        for field, (words, value) in given.items():
            prefix = next((p for p in (f"{field}={value!r}", f"{field}={value}") if message.startswith(p)), None)
            if prefix:
                break
        else:
            return str(error)
        flags.append(words)
        message = message[len(prefix):]
        if message.startswith(": "):
            return f"{' '.join(flags)}: {message[2:]}"
        if not message.startswith(", "):
            return str(error)
        message = message[2:]


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


def wants_bar(progress):
    """The project's one progress policy: progress=True/False as given; 'auto': a bar on a terminal or in a
    Jupyter kernel (its stderr is no terminal, yet it draws bars), none in a log file, where a bar's redraws
    would pile up (training prints a line every --log-interval steps there instead: utils/training/loop.py).
    Training, translate.py, the ablation and the dataset download all ask it."""
    if progress != "auto":
        return bool(progress)
    return "ipykernel" in sys.modules or bool(getattr(sys.stderr, "isatty", lambda: False)())


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


QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3"}
QUIET_LOGGERS = ("tensorflow", "absl", "jax._src.xla_bridge", "h5py")


def quiet(verbose=False):
    """Hide TensorFlow's and its libraries' log noise for the rest of this process (see the module doc).

    Call it before the first import of keras or tensorflow; later it only quiets the Python loggers. It
    also picks TensorFlow's CPU kernels then (utils/runtime/onednn.py), verbose or not.
    Returns True if it made the console quiet, False with verbose=True.
    """
    # TensorFlow's CPU kernels are chosen before it loads: an entry point's earlier choice stays, else training's
    prefer_onednn(os.environ.get(CHOSEN_FOR, "training"))
    if verbose:
        return False
    os.environ.update(QUIET_ENVIRONMENT)
    if "keras" not in sys.modules:
        _import_keras_without_stderr()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    return True


def _import_keras_without_stderr():
    """`import keras` (and so the backend) with file descriptor 2 in a temporary file, replayed on failure."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
