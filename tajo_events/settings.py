"""Settings shared by the services, read from the environment in one place."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tajo_events.errors import ConfigError


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name, default))
    except ValueError as error:
        raise ConfigError(f"{name} must be an integer") from error


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in {"1", "true", "yes", "0", "false", "no"}:
        raise ConfigError(f"{name} must be true or false")
    return value in {"1", "true", "yes"}


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        seconds = float(env.get(name, default))
    except ValueError as error:
        raise ConfigError(f"{name} must be a number of seconds") from error
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds")
    return seconds


def data_dir_from_env(env: Mapping[str, str]) -> Path:
    """The folder the services keep their data in: TAJO_DATA_DIR, `.tajo-data` by default."""
    return Path(env.get("TAJO_DATA_DIR", ".tajo-data"))


def read_timeout_from_env(env: Mapping[str, str]) -> float:
    """TAJO_READ_TIMEOUT_S: how long a client may take to send a whole request (10 s by default)."""
    return _seconds(env, "TAJO_READ_TIMEOUT_S", 10.0)


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """Where the log lives and how the services share it."""

    bootstrap_servers: str | None
    events_topic: str
    actions_topic: str
    partitions: int
    replication_factor: int
    app_id: str
    data_dir: Path
    api_token: str | None = field(repr=False)
    session_timeout_s: float = 30.0
    stall_timeout_s: float = 60.0
    rebalance_timeout_s: float = 60.0
    append_timeout_s: float = 3.0  # well inside the 5 s Brevo waits for an answer
    create_topics: bool = True  # false: the topics are made by hand, the services only check them

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "PipelineSettings":
        """Settings from the environment; the README's configuration table lists each variable."""
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            events_topic=env.get("TAJO_EVENTS_TOPIC", "tajo.events"),
            actions_topic=env.get("TAJO_ACTIONS_TOPIC", "tajo.actions"),
            partitions=_int(env, "TAJO_PARTITIONS", 4),
            replication_factor=_int(env, "TAJO_REPLICATION_FACTOR", 1),
            app_id=env.get("TAJO_APP_ID", "tajo-events"),
            data_dir=data_dir_from_env(env),
            api_token=env.get("TAJO_API_TOKEN") or None,
            session_timeout_s=_int(env, "TAJO_SESSION_TIMEOUT_S", 30),
            stall_timeout_s=_int(env, "TAJO_STALL_TIMEOUT_S", 60),
            rebalance_timeout_s=_int(env, "TAJO_REBALANCE_TIMEOUT_S", 60),
            append_timeout_s=_seconds(env, "TAJO_APPEND_TIMEOUT_S", 3.0),
            create_topics=_flag(env, "TAJO_CREATE_TOPICS", default=True),
        )

    def require_kafka(self) -> str:
        """The bootstrap servers, or a clear error when none are configured."""
        if not self.bootstrap_servers:
            raise ConfigError(
                "set KAFKA_BOOTSTRAP_SERVERS (e.g. 127.0.0.1:9092; `make kafka` starts a broker)"
            )
        return self.bootstrap_servers

    def require_api_token(self) -> str:
        """The projections API token, or a clear error: the API is never open by default."""
        if not self.api_token:
            raise ConfigError("refusing to start an open projections API: set TAJO_API_TOKEN")
        return self.api_token
