"""The command's own error: what it says on stderr before it exits with status 2."""


class ConfigError(ValueError):
    """The environment or the command line does not describe a safe, runnable service."""
