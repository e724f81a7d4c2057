"""The node lab's marker: tests that boot a QEMU guest (minutes, root, qemu-system-x86)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the `lab` marker."""
    config.addinivalue_line(
        "markers", "lab: boots the node lab's QEMU guest (scripts/node-lab.sh; 15-30 min on TCG)"
    )


from tests.raid.conftest import md_tree  # noqa: E402,F401  (captured md trees)
