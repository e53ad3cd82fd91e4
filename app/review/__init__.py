"""Review: the queue of items that need a person, leases, reviewed labels, and stats."""
