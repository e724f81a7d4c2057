"""md RAID health: mdstat and sysfs readers, evaluation, history."""
