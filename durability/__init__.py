"""durability: evidence that RAID mirrors, provider snapshots, restores and customers'
own copies are really there."""

__version__ = "0.1.0"
