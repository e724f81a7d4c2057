"""durability-helper: the customer's own verified copy to external media.

It runs on the customer's machine, so it imports nothing server-side: only the standard
library, pyudev (where udev runs), `durability.execute`, `durability.errors`,
`durability.units` and `durability.restic`.
"""
