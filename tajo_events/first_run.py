"""Zero-config first run: `serve` on the embedded log makes its own secrets once, kept owner-only.

`make run` with no variables must work on a fresh machine, and an open webhook endpoint or API
must never be what it gets. So when the environment configures no webhook authentication or no
API token, `serve` on the embedded log reads them from `secrets.env` in its data directory,
making that file first (random values, mode 0600, created exclusively) when it is not there yet.
A file anyone but its owner can read is refused. The values are never printed nor logged: the
start-up banner prints the file's path and commands that read it. Values set in the environment
win over the file's, one by one. On Kafka nothing is made: the services refuse to start unconfigured.
"""

import os
import secrets
import stat
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from ingest.auth import sign
from ingest.config import IngestConfigError, IngestSettings
from ingest.secret_files import read_secret
from tajo_events.errors import ConfigError

SECRETS_FILE = "secrets.env"
WEBHOOK_SECRET = "BREVO_WEBHOOK_SECRET"  # noqa: S105 - the name of a variable, not a secret
WEBHOOK_TOKEN = "BREVO_WEBHOOK_TOKEN"  # noqa: S105 - the name of a variable, not a secret
WEBHOOK_BASIC = "BREVO_WEBHOOK_BASIC"
WEBHOOK_HEADER = "BREVO_WEBHOOK_HEADER"
API_TOKEN = "TAJO_API_TOKEN"  # noqa: S105 - likewise
_MADE = (WEBHOOK_SECRET, WEBHOOK_TOKEN, API_TOKEN)


@dataclass(frozen=True)
class LocalSecrets:
    """Where the first run's secrets are, which of them this run took, and whether it made the file."""

    path: Path
    taken: tuple[str, ...]
    made: bool


def needs_local_secrets(env: Mapping[str, str]) -> bool:
    """True when the environment configures no webhook authentication or no API token."""
    if not env.get(API_TOKEN):
        return True
    try:
        IngestSettings.from_env(env)
    except IngestConfigError:
        return True
    return False


def use_local_secrets(data_dir: Path, env: MutableMapping[str, str]) -> LocalSecrets:
    """Fills what `env` lacks (all webhook ways when it configures none, the API token) from the file."""
    path = data_dir / SECRETS_FILE
    made = False
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        made = _make(path)
    values = _read(path)
    webhook_configured = True
    try:
        IngestSettings.from_env(env)
    except IngestConfigError:
        webhook_configured = False
    wanted = [API_TOKEN] if webhook_configured else [WEBHOOK_SECRET, WEBHOOK_TOKEN, API_TOKEN]
    taken = tuple(name for name in wanted if not env.get(name) and values.get(name))
    for name in taken:
        env[name] = values[name]
    return LocalSecrets(path.resolve(), taken, made)


def _make(path: Path) -> bool:
    """Writes fresh random secrets, owner-only; False when another process made the file first."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write("# made by tajo-events serve on its first run; owner-only; delete it for new ones\n")
        for name in _MADE:
            file.write(f"{name}={secrets.token_urlsafe(32)}\n")
    return True


def _read(path: Path) -> dict[str, str]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} can be read by others than its owner: chmod 600 it, or delete it")
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


def _auth_option(env: Mapping[str, str], reference: Callable[[str], str]) -> str:
    """The curl option of the first configured way: the sample's signature, else a header-borne one."""
    secret = read_secret(env, WEBHOOK_SECRET)
    if secret:
        return (
            f'-H "X-Brevo-Signature: {sign(secret.encode("utf-8", "surrogateescape"), SAMPLE_BODY.encode())}"'
        )
    if read_secret(env, WEBHOOK_TOKEN) is None:
        if read_secret(env, WEBHOOK_BASIC) is not None:
            return f'-u "{reference(WEBHOOK_BASIC)}"'  # curl sends it as Basic, as Brevo does
        if read_secret(env, WEBHOOK_HEADER) is not None:
            return f'-H "{reference(WEBHOOK_HEADER)}"'
    return f'-H "Authorization: Bearer {reference(WEBHOOK_TOKEN)}"'


SAMPLE_BODY = '{"event":"delivered","email":"jane@example.com","message-id":"try-it-1","ts":1640995200}'


def try_it(base: str, env: Mapping[str, str], local: LocalSecrets | None) -> str:
    """Two commands that work as printed: post a signed sample webhook, then read its customer back.

    They carry no secret: the signature is of the sample body, and tokens are read from where
    they are (the secrets file, or the variable the operator set).
    """

    def reference(name: str) -> str:
        if local is not None and name in local.taken:
            return f"$(sed -n 's/^{name}=//p' '{local.path}')"
        if env.get(name + "_FILE") and not env.get(name):
            return f"$(cat '{env[name + '_FILE']}')"
        return f"${name}"

    auth = _auth_option(env, reference)
    return (
        f"curl -s -X POST {base}/webhooks/brevo -H 'Content-Type: application/json' \\\n"
        f"  {auth} \\\n"
        f"  -d '{SAMPLE_BODY}'\n"
        f'curl -s -H "Authorization: Bearer {reference(API_TOKEN)}" {base}/api/customers/jane@example.com\n'
    )
