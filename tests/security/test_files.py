"""Files: secret files read one way and refused when open; state and textfiles private;
helper disk markers that are links, FIFOs, devices or huge."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from durability.helper import disks
from durability.secrets import SecretFileError, read_secret_bytes, read_secret_text


def test_secret_whole_file_one_trailing_newline_removed(tmp_path: Path) -> None:
    path = tmp_path / "s"
    for content, expected in ((b"abc\n", b"abc"), (b"abc\n\n", b"abc\n"), (b" a b \n", b" a b "),
                              (b"line1\nline2\n", b"line1\nline2"), (b"x\r\n", b"x")):
        path.write_bytes(content)
        assert read_secret_bytes(str(path), "k") == expected


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_secret_open_to_others_refused_naming_key_not_content(tmp_path: Path,
                                                              mode: int) -> None:
    path = tmp_path / "s"
    path.write_text("the-content-itself\n")
    os.chmod(path, mode)
    with pytest.raises(SecretFileError) as raised:
        read_secret_text(str(path), "smtp.password_file")
    message = str(raised.value)
    assert "smtp.password_file" in message and str(path) in message
    assert "the-content-itself" not in message


def test_secret_group_readable_allowed(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text("shared\n")
    os.chmod(path, 0o640)
    assert read_secret_text(str(path), "k") == "shared"


def test_secret_empty_link_fifo_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SecretFileError, match="empty"):
        read_secret_bytes(str(empty), "k")
    link = tmp_path / "link"
    link.symlink_to("/dev/zero")
    with pytest.raises(SecretFileError, match="symbolic link"):
        read_secret_bytes(str(link), "k")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SecretFileError, match="not a regular file"):
        read_secret_bytes(str(fifo), "k")


def test_every_secret_reader_refuses_an_open_file(tmp_path: Path) -> None:
    from durability.errors import DurabilityError
    from durability.fleet import read_token
    from durability.remind.smtp import read_password
    from durability.restore.resticops import password_file_usable
    from durability.s3client import read_secret
    from durability.web.signing import read_secret as web_secret

    path = tmp_path / "s"
    path.write_text("a-secret-of-enough-length-1234\n")
    os.chmod(path, 0o644)
    for reader in (read_token, read_password, read_secret, web_secret):
        with pytest.raises(DurabilityError, match="open to other users"):
            reader(str(path))
    assert "open to other users" in (password_file_usable(str(path)) or "")


def test_state_db_and_folder_created_owner_only(tmp_path: Path) -> None:
    from durability.state.store import open_sqlite

    previous = os.umask(0o022)
    try:
        store = open_sqlite(str(tmp_path / "new" / "state.db"))
        store.history(limit=1)
        store.close()
    finally:
        os.umask(previous)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    for path in (tmp_path / "new").iterdir():
        assert path.stat().st_mode & 0o077 == 0, path


def test_textfile_not_readable_by_others(tmp_path: Path) -> None:
    from durability.render import write_output

    previous = os.umask(0o022)
    try:
        write_output("durability_up 1\n", str(tmp_path / "d.prom"))
    finally:
        os.umask(previous)
    assert (tmp_path / "d.prom").stat().st_mode & 0o777 == 0o640


def _read_marker_in_child(folder: Path) -> subprocess.CompletedProcess[str]:
    # In a child with a deadline and a memory limit: the old code blocked forever on a
    # FIFO and read /dev/zero until memory ran out.
    code = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from durability.helper import disks
        assert disks.read_marker({str(folder)!r}) is None
        print("done")
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)


def test_marker_symlink_to_dev_zero_ignored(tmp_path: Path) -> None:
    (tmp_path / disks.MARKER_NAME).symlink_to("/dev/zero")
    done = _read_marker_in_child(tmp_path)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr


def test_marker_huge_file_ignored(tmp_path: Path) -> None:
    with open(tmp_path / disks.MARKER_NAME, "wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB that costs nothing on disk
    assert disks.read_marker(str(tmp_path)) is None


def test_marker_fifo_does_not_hang_the_helper(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / disks.MARKER_NAME)
    done = _read_marker_in_child(tmp_path)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr


def test_disk_whose_uuid_cannot_be_read_is_left_untouched(tmp_path: Path) -> None:
    mount = tmp_path / "media" / "STICK"
    mount.mkdir(parents=True)
    disk_id = "d" * 32
    disks.write_marker(str(mount), disks.Marker(disk_id, "durability-backup", "2026-11-01"))
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    # A block device blkid cannot read: no UUID.
    (proc / "mountinfo").write_text(
        f"40 22 250:99 / {mount} rw,nosuid - ext4 /dev/no-such-disk rw\n")
    present, notes = disks.find_enrolled([(disk_id, "ABCD-1234")], str(tmp_path / "proc"),
                                         str(tmp_path / "sys"), use_udev=False)
    assert present == []
    assert len(notes) == 1 and "cannot read the filesystem UUID" in notes[0]
    assert "left untouched" in notes[0]
