"""A quiet console: TensorFlow's start-up and graph-optimiser logs are hidden unless asked for.

Importing TensorFlow prints, twice, `WARNING: All log messages before absl::InitializeLog() is called
are written to STDERR` and `I0000 ... oneDNN custom operations are on ...`; they are information,
not problems, but read like failures to a student. The entry points (train.py, translate.py,
ablate.py) and the notebooks call `quiet()` before anything imports TensorFlow:

    from utils.quiet import quiet
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

import logging
import os
import sys
import tempfile

QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3"}
QUIET_LOGGERS = ("tensorflow", "absl", "jax._src.xla_bridge", "h5py")


def quiet(verbose=False):
    """Hide TensorFlow's and its libraries' log noise for the rest of this process (see the module doc).

    Call it before the first import of keras or tensorflow; later it only quiets the Python loggers.
    Returns True if it made the console quiet, False with verbose=True.
    """
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
