"""The event log port and its adapters: the log is the source of truth."""

from eventlog.port import EventLog, LogHealth, LogRecord, LogUnavailable

__all__ = ["EventLog", "LogHealth", "LogRecord", "LogUnavailable"]
