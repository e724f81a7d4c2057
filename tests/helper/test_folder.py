"""The helper's folder: modes, state round trip, damaged files, the run lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from durability.helper.folder import (
    DiskRecord,
    Folder,
    HelperError,
    HelperState,
    default_folder,
    parse_state,
)


def test_default_folder_xdg_config_home_used() -> None:
    assert default_folder({"XDG_CONFIG_HOME": "/x"}) == Path("/x/durability-helper")
    assert default_folder({"HOME": "/home/ola"}) == Path("/home/ola/.config/durability-helper")


def test_ensure_loose_folder_tightened_to_0700(tmp_path: Path) -> None:
    path = tmp_path / "durability-helper"
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    Folder(path).ensure()
    assert path.stat().st_mode & 0o777 == 0o700
    assert (path / "keys").stat().st_mode & 0o777 == 0o700


def test_new_password_file_mode_0600_random(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "h")
    first = folder.new_password("a" * 32)
    second = folder.new_password("b" * 32)
    assert first.stat().st_mode & 0o777 == 0o600
    assert len(first.read_text().strip()) >= 40
    assert first.read_text() != second.read_text()


def test_save_load_state_roundtrip(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "h")
    record = DiskRecord(disk_id="a" * 32, fs_uuid="ABCD-1234", label="STICK")
    state = HelperState(paths=("/home/ola/Documents",)).with_disk(record)
    folder.save(state)
    assert folder.load() == state
    assert (folder.path / "helper.json").stat().st_mode & 0o777 == 0o600
    updated = state.with_disk(DiskRecord(disk_id="a" * 32, fs_uuid="ABCD-1234", label="NEW"))
    assert [d.label for d in updated.disks] == ["NEW"]


def test_load_damaged_state_names_the_file(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "h")
    folder.ensure()
    (folder.path / "helper.json").write_text('{"version": 99}')
    with pytest.raises(HelperError, match=r"helper\.json is damaged: unknown version 99"):
        folder.load()


def test_parse_state_unknown_disk_keys_ignored() -> None:
    state = parse_state({"version": 1, "disks": [{"disk_id": "x", "fs_uuid": "u", "new": 1}]})
    assert state.disks[0].disk_id == "x"


def test_locked_second_holder_refused(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "h")
    with folder.locked(), pytest.raises(HelperError, match="already running"), Folder(
        folder.path
    ).locked():
        pass
    assert (folder.path / "lock").stat().st_mode & 0o777 == 0o600
    with folder.locked():
        pass  # released after the first holder left
