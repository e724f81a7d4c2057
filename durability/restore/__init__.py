"""Restore tests: restore a snapshot for real, verify it, time it, clean up."""
