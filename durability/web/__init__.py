"""The HTTP side of durability: customer links, and (from other modules) the status page."""
