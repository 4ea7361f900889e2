"""The derived loyalty state served to other services, rebuilt from the log's folded state."""
