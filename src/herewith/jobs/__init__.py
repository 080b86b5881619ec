"""Background loops: the room lifecycle sweeper and webhook delivery (thin wrappers around testable functions)."""
