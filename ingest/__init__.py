"""The webhook ingester: verifies, validates and durably appends Brevo events to the log."""
