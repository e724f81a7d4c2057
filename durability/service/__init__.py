"""`durability run`: every job on its schedule in one process, with history."""
