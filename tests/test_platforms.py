"""requirements.txt picks one TensorFlow build per platform; the resolution itself is `make check-platforms`.

Offline: these evaluate the file's environment markers for each platform the README supports (PEP 508,
with `packaging`), as tools/check_platforms.py does before it asks the index.
"""

import pytest

from tools import check_platforms

CPU_PLATFORMS = [name for name, platform in check_platforms.PLATFORMS.items() if not platform.gpu]


def _tensorflow_lines(platform, python="3.11"):
    return [line for line in check_platforms.requirements_for(platform, python) if line.startswith("tensorflow")]


def test_the_four_platforms_of_the_issue_are_checked_for_three_pythons():
    assert {"linux-x86_64", "linux-aarch64", "macos-arm64", "windows-amd64"} <= set(CPU_PLATFORMS)
    assert check_platforms.PYTHONS == ("3.11", "3.12", "3.13")


@pytest.mark.parametrize("python", check_platforms.PYTHONS)
def test_one_tensorflow_build_per_platform(python):
    # tensorflow-cpu exists only for Linux x86_64 and Windows; the plain package is the CPU build elsewhere
    assert _tensorflow_lines("linux-x86_64", python) == ["tensorflow-cpu==2.21.0"]
    assert _tensorflow_lines("windows-amd64", python) == ["tensorflow-cpu==2.21.0"]
    assert _tensorflow_lines("linux-aarch64", python) == ["tensorflow==2.21.0"]
    assert _tensorflow_lines("macos-arm64", python) == ["tensorflow==2.21.0"]
    assert _tensorflow_lines("linux-x86_64-cuda", python) == [check_platforms.TENSORFLOW_CUDA]


def test_every_other_pin_applies_everywhere_and_keeps_its_version():
    lines = {name: check_platforms.requirements_for(name, "3.12") for name in CPU_PLATFORMS}
    common = {name: [l for l in found if not l.startswith("tensorflow")] for name, found in lines.items()}
    assert len({tuple(found) for found in common.values()}) == 1
    assert "keras==3.15.1" in common["macos-arm64"] and all("==" in l for l in common["macos-arm64"])


def test_the_commands_name_the_target_not_this_machine(tmp_path):
    uv = check_platforms.uv_command("macos-arm64", "3.12", tmp_path / "r.txt")
    assert uv[uv.index("--python-platform") + 1] == "aarch64-apple-darwin" and "3.12" in uv
    pip = check_platforms.pip_command("linux-aarch64", "3.13", tmp_path / "r.txt", tmp_path / "t")
    tags = [pip[i + 1] for i, arg in enumerate(pip) if arg == "--platform"]
    assert "manylinux_2_27_aarch64" in tags and "manylinux2014_aarch64" in tags   # TF 2.21 ships manylinux_2_27
    assert {"--dry-run", "--ignore-installed", "--only-binary=:all:", "--target"} <= set(pip)


def test_the_readme_install_commands_are_the_ones_quickstart_runs_and_the_check_resolves():
    import quickstart
    from utils import colab

    # The install instructions live in docs/install.md; the README links there.
    assert "(docs/install.md)" in (check_platforms.ROOT / "README.md").read_text()
    section = (check_platforms.ROOT / "docs" / "install.md").read_text()
    assert quickstart.TENSORFLOW_CUDA == check_platforms.TENSORFLOW_CUDA == colab.TENSORFLOW["gpu"]
    assert ".venv/bin/python -m pip install -r requirements.txt" in section
    assert ".venv\\Scripts\\python -m pip install -r requirements.txt" in section
    assert ".venv/bin/python -m pip uninstall -y tensorflow-cpu" in section
    assert f'.venv/bin/python -m pip install "{check_platforms.TENSORFLOW_CUDA}"' in section
    commands = [" ".join(map(str, c)) for c in quickstart.install_commands(".venv", gpu=True)]
    assert any(c.endswith(f"-m pip install --quiet -r {quickstart.REQUIREMENTS}") for c in commands)
    assert any("uninstall" in c and c.endswith("tensorflow-cpu") for c in commands)
    assert commands[-1].endswith(f"install --quiet {check_platforms.TENSORFLOW_CUDA}")
    for platform in ("Linux x86_64", "Linux aarch64", "macOS, Apple silicon", "Windows x86_64", "NVIDIA GPU", "Colab"):
        assert platform in section
