"""The one atomic file writer (utils/runtime/files.py): all or nothing, on the disk, no temporary file left."""

import json
import os
import stat

import pytest

from utils.runtime import files


def test_text_and_bytes_are_written_and_no_temporary_file_is_left(tmp_path):
    assert files.write_atomic(tmp_path / "a.txt", "ä → b\n") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_bytes() == "ä → b\n".encode("utf-8")
    files.write_atomic(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    files.write_atomic(tmp_path / "a.txt", "replaced")
    assert (tmp_path / "a.txt").read_text() == "replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_json_round_trips_and_ends_in_a_newline(tmp_path):
    data = {"step": 3, "names": ["a", "b"], "nested": {"x": 0.5}}
    files.write_json(tmp_path / "d.json", data)
    text = (tmp_path / "d.json").read_text()
    assert json.loads(text) == data and text.endswith("}\n")


def test_the_file_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        mode, size = os.fstat(fd).st_mode, os.fstat(fd).st_size
        events.append(("fsync folder",) if stat.S_ISDIR(mode) else ("fsync file", size))
        real_fsync(fd)

    def replace(source, target):
        events.append(("replace", os.path.basename(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    files.write_atomic(tmp_path / "a.txt", "data")
    expected = [("fsync file", 4), ("replace", "a.txt")] + ([("fsync folder",)] if os.name == "posix" else [])
    assert events == expected


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, monkeypatch, failing):
    target = tmp_path / "config.json"
    target.write_text("old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        files.write_json(target, {"new": True})
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
