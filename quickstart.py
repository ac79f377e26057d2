"""The Quickstart without make: needs nothing but Python 3.11-3.13 (Windows, macOS, Linux).

    python quickstart.py demo            # = make demo: builds .venv from requirements.txt, trains the short demo
    python quickstart.py test            # = make test: builds .venv if needed, runs the tests but the long ones
    python quickstart.py test-long       # = make test-long: the long end-to-end tests
    python quickstart.py venv            # = make venv: only builds .venv
    python quickstart.py venv --gpu      # Linux with an NVIDIA GPU: TensorFlow with its CUDA libraries
    python quickstart.py demo -- --max-steps 500       # after --, arguments go to train.py (demo) or pytest (test)

(`py quickstart.py demo` on Windows if `python` is not on the PATH.) Like the Makefile, it rebuilds .venv
when requirements.txt is newer than .venv/.installed. --python PY uses an environment you made yourself
(conda, say) instead of .venv; --dry-run prints the commands without running them.
"""

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REQUIREMENTS = ROOT / "requirements.txt"
TEST_MARKERS = {"test": "not long", "test-long": "long"}   # pytest -m, as the Makefile's test and test-long
TEST_WORKERS = {"test": ["-n", "2"], "test-long": []}      # pytest-xdist workers, as the Makefile's TEST_WORKERS
TENSORFLOW_CUDA = "tensorflow[and-cuda]==2.21.0"   # docs/install.md's GPU line (tools/check_platforms.py resolves it)


def venv_python(venv, os_name=os.name):
    """The interpreter inside a virtual environment, on Windows ('nt') or elsewhere."""
    return Path(venv) / ("Scripts/python.exe" if os_name == "nt" else "bin/python")


def needs_install(venv):
    stamp = Path(venv) / ".installed"
    return not stamp.is_file() or stamp.stat().st_mtime < REQUIREMENTS.stat().st_mtime


def install_commands(venv, gpu=False):
    """The commands that build `venv` from requirements.txt (the Makefile's venv target)."""
    python = str(venv_python(venv))
    commands = [[sys.executable, "-m", "venv", str(venv)],
                [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                [python, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]]
    if gpu:   # the same TensorFlow release, built with CUDA, in place of the CPU-only package
        commands += [[python, "-m", "pip", "uninstall", "--quiet", "--yes", "tensorflow-cpu"],
                     [python, "-m", "pip", "install", "--quiet", TENSORFLOW_CUDA]]
    return commands


def run_commands(commands, dry_run):
    for command in commands:
        print("+ " + " ".join(shlex.quote(str(part)) for part in command), flush=True)
        if not dry_run:
            code = subprocess.call(command, cwd=ROOT)
            if code:
                sys.exit(f"error: the command above failed (exit {code})")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("demo", "test", "test-long", "venv"))
    p.add_argument("--venv", default=str(ROOT / ".venv"), help="the virtual environment to build and use")
    p.add_argument("--python", help="use this interpreter (it has the requirements) instead of building a venv")
    p.add_argument("--gpu", action="store_true", help=f"install {TENSORFLOW_CUDA} (Linux with an NVIDIA GPU)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.epilog = "Arguments after -- go to train.py (demo) or pytest (test)."
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.extra = extra
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.gpu and not sys.platform.startswith("linux"):
        sys.exit("error: --gpu: TensorFlow's CUDA build is for Linux only (on Windows use WSL2, on a Mac the CPU "
                 "or Colab); see docs/install.md")
    if args.python:
        python = args.python
    else:
        if needs_install(args.venv) or args.gpu:
            run_commands(install_commands(args.venv, args.gpu), args.dry_run)
            if not args.dry_run:
                (Path(args.venv) / ".installed").touch()
        python = str(venv_python(args.venv))
    if args.command == "demo":
        run_commands([[python, "train.py", "--demo", *args.extra]], args.dry_run)
    elif args.command in TEST_MARKERS:   # the same split as make test / make test-long
        run_commands([[python, "-m", "pytest", "-m", TEST_MARKERS[args.command], *TEST_WORKERS[args.command], *args.extra]],
                     args.dry_run)


if __name__ == "__main__":
    main()
