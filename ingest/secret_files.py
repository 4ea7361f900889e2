"""A secret from the environment, or from the owner-only file that `<NAME>_FILE` names."""

import stat
from collections.abc import Mapping
from pathlib import Path


class SecretFileError(ValueError):
    """A secret's file cannot be used: missing, unreadable, readable by others, or set twice."""


def read_secret(env: Mapping[str, str], name: str) -> str | None:
    """`env[name]`, or the content of the file `env[name + "_FILE"]` (one trailing newline dropped).

    The file must be readable by its owner only (mode 600 or 400): a secret others can read is none.
    Setting both is refused: which one wins would be a guess. The value keeps odd bytes as
    `os.environ` does (UTF-8 with surrogateescape), so both sources compare the same way.
    """
    value = env.get(name) or None
    path_text = env.get(name + "_FILE") or None
    if path_text is None:
        return value
    if value is not None:
        raise SecretFileError(f"set {name} or {name}_FILE, not both")
    path = Path(path_text)
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretFileError(f"{name}_FILE: {path} can be read by others than its owner: chmod 600 it")
        raw = path.read_bytes()
    except OSError as error:
        raise SecretFileError(f"{name}_FILE: cannot read {path}: {error.strerror}") from error
    text = raw.decode("utf-8", "surrogateescape").removesuffix("\n").removesuffix("\r")
    return text or None
