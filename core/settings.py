"""Typed, frozen settings shared by every service.

Each service has one settings class (the stack, processor, sink and gateway add
theirs beside their code) built on :class:`CommonSettings`, which holds what every service needs:
where Kafka and Neo4j are, and the topic names.

Environment variables use the prefix ``LINEAGE_`` and ``__`` between nesting levels, e.g.
``LINEAGE_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or ``LINEAGE_NEO4J__PASSWORD=...``.

Precedence, highest first:

1. keyword arguments passed to the class (tests, embedding code);
2. environment variables (``LINEAGE_...``);
3. a ``.env`` file in the working directory;
4. the local stack's files in the state folder: ``connection.json`` (endpoints) and
   ``neo4j/password`` (the password generated at first start), so that a laptop user never
   copies a credential by hand;
5. the defaults below.

>>> s = CommonSettings(kafka={"bootstrap_servers": "broker:9092"})
>>> s.kafka.bootstrap_servers, s.kafka.raw_topic
('broker:9092', 'openlineage.events')
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "LINEAGE_"
CONNECTION_FILE = "connection.json"
PASSWORD_FILE = Path("neo4j") / "password"


def project_root() -> Path | None:
    """The checkout this code runs from, or None when installed elsewhere."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "deploy" / "local").is_dir() else None


def default_state_dir() -> Path:
    """``.stack/`` in the checkout; ``~/.local/state/lineage`` for an installed package."""
    root = project_root()
    if root is not None:
        return root / ".stack"
    return Path.home() / ".local" / "state" / "lineage"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Frozen):
    """Where Kafka is and which topics the pipeline uses."""

    bootstrap_servers: str = "127.0.0.1:9092"
    raw_topic: str = "openlineage.events"
    dlq_topic: str = "openlineage.dlq"
    changes_topic: str = "lineage.changes"
    changes_dlq_topic: str = "lineage.changes.dlq"
    # Used only when a service creates a missing topic; an existing topic keeps its own count.
    raw_partitions: int = Field(default=6, ge=1)
    changes_partitions: int = Field(default=6, ge=1)


class Neo4jSettings(_Frozen):
    """How to reach Neo4j. ``password`` comes from the local stack when not set."""

    uri: str = "bolt://127.0.0.1:7687"
    user: str = "neo4j"
    password: SecretStr | None = None
    database: str = "neo4j"

    def auth(self) -> tuple[str, str]:
        """The (user, password) pair for the driver; refuses to run without a password."""
        from core.errors import ConfigError

        if self.password is None:
            raise ConfigError(
                "no Neo4j password is configured",
                hint="run `lineage stack up` (it generates one) or set LINEAGE_NEO4J__PASSWORD",
            )
        return self.user, self.password.get_secret_value()


class _LocalStackFiles(PydanticBaseSettingsSource):
    """Reads the endpoints and the generated password that ``lineage stack up`` wrote."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is produced in __call__

    def __call__(self) -> dict[str, Any]:
        state_dir = Path(os.environ.get(f"{ENV_PREFIX}STATE_DIR") or default_state_dir())
        values: dict[str, Any] = {}
        connection = state_dir / CONNECTION_FILE
        if connection.is_file():
            data = json.loads(connection.read_text(encoding="utf-8"))
            values = {k: dict(v) for k, v in data.items() if k in ("kafka", "neo4j")}
        password = state_dir / PASSWORD_FILE
        if password.is_file():
            values.setdefault("neo4j", {})["password"] = password.read_text("utf-8").strip()
        return values


class CommonSettings(BaseSettings):
    """What every service needs: Kafka, Neo4j and the local state folder."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    kafka: KafkaSettings = KafkaSettings()
    neo4j: Neo4jSettings = Neo4jSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _LocalStackFiles(settings_cls),
            file_secret_settings,
        )
