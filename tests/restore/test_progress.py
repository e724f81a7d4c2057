"""Progress: rich only on a terminal, quiet otherwise."""

from __future__ import annotations

from pathlib import Path

from durability.restore.progress import QuietProgress, RichProgress, folder_bytes, make_progress


def test_make_progress_not_a_terminal_quiet() -> None:
    assert isinstance(make_progress(False), QuietProgress)
    # Under pytest stderr is captured, not a terminal.
    assert isinstance(make_progress(), QuietProgress)


def test_make_progress_terminal_rich_counts_bytes(tmp_path: Path) -> None:
    progress = make_progress(True)
    assert isinstance(progress, RichProgress)
    seen: list[int] = []
    with progress.phase("verify", 10) as advance:
        advance(4)
        advance(6)
        seen.append(progress._bar.tasks[0].completed)
    assert seen == [10]
    folder = tmp_path / "tree"
    with progress.watch("restore", 100, str(folder)):
        folder.mkdir()
        (folder / "a").write_bytes(b"x" * 100)
    # The final update comes when the block ends, whatever the polling saw.
    assert progress._bar.tasks[-1].completed == 100
    assert folder_bytes(str(folder)) == 100
    assert folder_bytes(str(tmp_path / "missing")) == 0
