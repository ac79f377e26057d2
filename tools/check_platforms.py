"""Does requirements.txt install on every platform students use? Resolves it for each, installs nothing.

For each platform and Python version below, uv (and, when asked, pip) resolves it from the package
index:

- `uv pip compile --python-platform P --python-version V --only-binary :all:` resolves the whole tree
  for the target: the markers of every dependency are evaluated for P and V, and only wheels built
  for P count.
- pip's own dry run, `pip install --dry-run --ignore-installed --only-binary=:all: --target DIR
  --python-version V --implementation cp --platform TAG [--platform TAG ...]`, with every tag the
  platform accepts (`--use-feature=fast-deps`: reads each wheel's metadata with range requests
  instead of downloading TensorFlow whole). pip evaluates environment markers for the machine it
  runs on, not for the target, so the requirement lines' own markers are evaluated here first
  (`requirements_for`); its dependencies' markers are uv's part of the check.

    python tools/check_platforms.py                       # `make check-platforms`: uv, about a minute
    python tools/check_platforms.py --pip-pythons 3.11    # and pip's dry run: about 8 minutes more
    python tools/check_platforms.py --platforms macos-arm64 --pythons 3.13

Exit status 1 when any combination fails to resolve, with the resolver's reason. `.ci/run` runs it,
so a pin that breaks a platform fails CI. Needs uv and packaging (the Makefile's .venv-check).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHONS = ("3.11", "3.12", "3.13")   # Keras 3.15 needs >= 3.11; TensorFlow 2.21 ships 3.10-3.13
# TensorFlow with its CUDA libraries, for `--gpu` and docs/install.md's GPU line (Linux only).
TENSORFLOW_CUDA = "tensorflow[and-cuda]==2.21.0"


def _manylinux(arch):
    return [f"manylinux_2_{n}_{arch}" for n in range(28, 16, -1)] + [f"manylinux2014_{arch}", f"linux_{arch}"]


def _macos_arm64():
    versions = [f"{v}_0" for v in range(15, 10, -1)] + [f"10_{m}" for m in range(16, 8, -1)]
    return [f"macosx_{v}_arm64" for v in versions[:5]] + [f"macosx_{v}_universal2" for v in versions]


@dataclass(frozen=True)
class Platform:
    """A target machine: its marker values (PEP 508), uv's name for it, the wheel tags pip accepts."""
    markers: dict
    uv: str
    pip_tags: list
    gpu: bool = False   # resolve the GPU variant (tensorflow[and-cuda]) instead of the CPU set


_LINUX = dict(sys_platform="linux", platform_system="Linux", os_name="posix")
PLATFORMS = {
    "linux-x86_64": Platform({**_LINUX, "platform_machine": "x86_64"}, "x86_64-manylinux_2_28", _manylinux("x86_64")),
    "linux-aarch64": Platform({**_LINUX, "platform_machine": "aarch64"}, "aarch64-manylinux_2_28",
                              _manylinux("aarch64")),
    "macos-arm64": Platform(dict(sys_platform="darwin", platform_system="Darwin", os_name="posix",
                                 platform_machine="arm64"), "aarch64-apple-darwin", _macos_arm64()),
    "windows-amd64": Platform(dict(sys_platform="win32", platform_system="Windows", os_name="nt",
                                   platform_machine="AMD64"), "x86_64-pc-windows-msvc", ["win_amd64"]),
    "linux-x86_64-cuda": Platform({**_LINUX, "platform_machine": "x86_64"}, "x86_64-manylinux_2_28",
                                  _manylinux("x86_64"), gpu=True),
}


def marker_environment(platform, python):
    """PEP 508 marker values of `platform` running CPython `python` ('3.12')."""
    return {"implementation_name": "cpython", "platform_python_implementation": "CPython",
            "python_version": python, "python_full_version": f"{python}.0", "implementation_version": f"{python}.0",
            "platform_release": "", "platform_version": "", **PLATFORMS[platform].markers}


def requirements_for(platform, python, path=ROOT / "requirements.txt"):
    """The requirement lines of `path` that apply on the platform, without their markers.

    On a GPU platform the TensorFlow line becomes TENSORFLOW_CUDA (docs/install.md's GPU install).
    """
    from packaging.requirements import Requirement

    environment = marker_environment(platform, python)
    lines = []
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        requirement.marker = None
        if PLATFORMS[platform].gpu and requirement.name in ("tensorflow", "tensorflow-cpu"):
            requirement = Requirement(TENSORFLOW_CUDA)
        lines.append(str(requirement))
    return lines


def _clean_env():
    """This process's environment without pip's local settings: the check asks the index alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_NO_INDEX")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def uv_command(platform, python, requirements_file, uv="uv"):
    return [uv, "pip", "compile", "--no-config", "--quiet", "--python-platform", PLATFORMS[platform].uv,
            "--python-version", python, "--only-binary", ":all:", "--no-header", "--no-annotate", str(requirements_file)]


def pip_command(platform, python, requirements_file, target):
    tags = [arg for tag in PLATFORMS[platform].pip_tags for arg in ("--platform", tag)]
    return [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
            "--target", str(target), "--python-version", python, "--implementation", "cp", *tags,
            "--use-feature=fast-deps", "--quiet", "--no-cache-dir", "-r", str(requirements_file)]


def _run(command, timeout):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_clean_env())
    except subprocess.TimeoutExpired:
        return False, f"no answer in {timeout} s"
    if out.returncode == 0:
        return True, out.stdout
    reason = [line for line in out.stderr.splitlines() if line.strip() and "fast-deps" not in line]
    return False, "\n".join(reason[-6:])


def check(platform, python, resolver, workdir, uv="uv", timeout=600):
    """(ok, output or reason) of one resolver for one platform and Python version."""
    gpu_or_pip = PLATFORMS[platform].gpu or resolver == "pip"
    requirements = ROOT / "requirements.txt"
    if gpu_or_pip:   # pip cannot evaluate the lines' markers for another platform: hand it the evaluated lines
        requirements = Path(workdir) / f"requirements-{platform}-{python}-{resolver}.txt"
        requirements.write_text("\n".join(requirements_for(platform, python)) + "\n")
    if resolver == "uv":
        return _run(uv_command(platform, python, requirements, uv), timeout)
    return _run(pip_command(platform, python, requirements, Path(workdir) / f"target-{platform}-{python}"), timeout)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--platforms", default=",".join(PLATFORMS), help=f"comma-separated, from {list(PLATFORMS)}")
    p.add_argument("--pythons", default=",".join(PYTHONS), help="Python versions for uv")
    p.add_argument("--pip-pythons", default="", help="also run pip's dry run for these Python versions, e.g. 3.11 "
                   "(slow: 1-4 minutes a platform, four side by side; 8 minutes for all five at 3.11 here)")
    p.add_argument("--uv", default=shutil.which("uv") or "uv", help="the uv executable")
    args = p.parse_args(argv)
    args.platforms = [name for name in args.platforms.split(",") if name]
    unknown = [name for name in args.platforms if name not in PLATFORMS]
    if unknown:
        p.error(f"unknown platform(s) {unknown}; choose from {list(PLATFORMS)}")
    args.pythons = [v for v in args.pythons.split(",") if v]
    args.pip_pythons = [v for v in args.pip_pythons.split(",") if v]
    return args


def main(argv=None):
    args = parse_args(argv)
    if not Path(args.uv).is_file() and not shutil.which(args.uv):
        sys.exit(f"error: uv not found ({args.uv}): `make check-platforms` installs it into .venv-check, "
                 "or pip install uv")
    jobs = [(name, python, "uv") for name in args.platforms for python in args.pythons]
    jobs += [(name, python, "pip") for name in args.platforms for python in args.pip_pythons]
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(max_workers=4) as pool:
        futures = {job: pool.submit(check, *job, workdir=workdir, uv=args.uv) for job in jobs}
        results = {job: future.result() for job, future in futures.items()}
    failed = [job for job, (ok, _) in results.items() if not ok]
    for name in args.platforms:
        cells = [f"{resolver} {python}: {'ok' if results[(name, python, resolver)][0] else 'FAILED'}"
                 for (n, python, resolver) in jobs if n == name]
        print(f"{name:18s} " + ", ".join(cells))
    for job in failed:
        print(f"\n{' '.join(job)} does not resolve:\n{results[job][1]}")
    print(f"\n{len(jobs) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
