"""The audit log: append-only, hash-chained, committed in groups (like X-Road's message log)."""
