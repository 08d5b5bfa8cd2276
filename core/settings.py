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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.errors import ConfigError

ENV_PREFIX = "LINEAGE_"
CONNECTION_FILE = "connection.json"
PASSWORD_FILE = Path("neo4j") / "password"
# The secured local stack (``lineage stack up --secure``): its SASL_SSL listener's one user.
SCRAM_USER = "lineage"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_PASSWORD_FILE = Path("kafka") / "scram-password"
SECURE_SECTION = "secure"


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


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
NEO4J_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def _kafka_error(cause: str, setting: str, hint: str) -> ConfigError:
    return ConfigError(f"{cause} (LINEAGE_KAFKA__{setting.upper()})", hint=hint)


def _check_file(path: Path | None, variable: str, what: str) -> None:
    if path is not None and not path.is_file():
        raise ConfigError(f"{variable} names {path}, which is not a file",
                          hint=f"point {variable} at the {what} (PEM)")


class KafkaSettings(_Frozen):
    """Where Kafka is, how to authenticate to it, and which topics the pipeline uses.

    The security options are those of every Kafka client (librdkafka's and the JVM's names):
    ``security_protocol`` PLAINTEXT (the local stack), SSL (TLS, optionally with a client
    certificate), SASL_PLAINTEXT or SASL_SSL (a user and password by ``sasl_mechanism``).
    A combination that would silently ignore a setting is refused with a :class:`ConfigError`:

    >>> KafkaSettings(security_protocol="SASL_SSL", sasl_username="svc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    core.errors.ConfigError: SASL_SSL needs a password (LINEAGE_KAFKA__SASL_PASSWORD) (hint: ...)
    >>> KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
    ...               sasl_username="svc", sasl_password="s3cret").sasl_password
    SecretStr('**********')
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    raw_topic: str = "openlineage.events"
    dlq_topic: str = "openlineage.dlq"
    changes_topic: str = "lineage.changes"
    changes_dlq_topic: str = "lineage.changes.dlq"
    # Used only when a service creates a missing topic; an existing topic keeps its own count.
    raw_partitions: int = Field(default=6, ge=1)
    changes_partitions: int = Field(default=6, ge=1)
    # The raw topic is the log the graph can be rebuilt from (`lineage rebuild`), so a raw topic
    # a service creates keeps its events forever (-1) unless told otherwise; like the partition
    # count, an existing topic keeps its own retention.ms (docs/runbook.md says how to set it).
    raw_retention_ms: int = Field(default=-1, ge=-1, description="-1 keeps raw events forever")
    max_dead_letter_bytes: int = Field(
        default=8_000_000, ge=65_536,
        description="a dead letter's value and headers at most: a longer original is cut to fit "
                    "(its size and SHA-256 kept); a DLQ topic that takes less gets it cut again")
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # Without ssl_ca_file, TLS trusts the system's CAs (what Confluent Cloud and MSK need).
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    ssl_key_password: SecretStr | None = None

    @property
    def uses_sasl(self) -> bool:
        """Whether the client authenticates with a SASL user and password."""
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        """Whether the connection to the brokers is encrypted."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    def sasl_credentials(self) -> tuple[str, str]:
        """The SASL (username, password); the validator has ensured both when SASL is on."""
        if not self.sasl_username or self.sasl_password is None:
            raise _kafka_error("SASL is not configured", "sasl_username",
                               "set LINEAGE_KAFKA__SECURITY_PROTOCOL=SASL_SSL and the SASL user")
        return self.sasl_username, self.sasl_password.get_secret_value()

    @model_validator(mode="after")
    def _consistent_security(self) -> KafkaSettings:
        protocol = self.security_protocol
        if self.uses_sasl:
            for name in ("sasl_username", "sasl_password"):
                if not getattr(self, name):
                    raise _kafka_error(
                        f"{protocol} needs a {name.removeprefix('sasl_')}", name,
                        "set LINEAGE_KAFKA__SASL_USERNAME and LINEAGE_KAFKA__SASL_PASSWORD "
                        "(Confluent Cloud: the API key and secret)")
        elif self.sasl_username or self.sasl_password:
            raise _kafka_error(
                f"a SASL user or password is set but the security protocol is {protocol}",
                "security_protocol",
                "set LINEAGE_KAFKA__SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT), "
                "or remove the SASL settings")
        tls_files = ("ssl_ca_file", "ssl_cert_file", "ssl_key_file", "ssl_key_password")
        if not self.uses_tls and any(getattr(self, name) for name in tls_files):
            raise _kafka_error(
                f"TLS files are set but the security protocol is {protocol}",
                "security_protocol",
                "set LINEAGE_KAFKA__SECURITY_PROTOCOL=SSL (or SASL_SSL), "
                "or remove the LINEAGE_KAFKA__SSL_... settings")
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            missing = "ssl_key_file" if self.ssl_key_file is None else "ssl_cert_file"
            raise _kafka_error(
                "a client certificate needs both the certificate and its private key", missing,
                "set both LINEAGE_KAFKA__SSL_CERT_FILE and LINEAGE_KAFKA__SSL_KEY_FILE")
        if self.ssl_key_password is not None and self.ssl_key_file is None:
            raise _kafka_error("a key password is set without a key", "ssl_key_file",
                               "set LINEAGE_KAFKA__SSL_KEY_FILE to the encrypted private key")
        for name, what in (("ssl_ca_file", "CA certificate that signed the brokers'"),
                           ("ssl_cert_file", "client certificate"),
                           ("ssl_key_file", "client certificate's private key")):
            _check_file(getattr(self, name), f"LINEAGE_KAFKA__{name.upper()}", what)
        return self


class Neo4jSettings(_Frozen):
    """How to reach Neo4j. ``password`` comes from the local stack when not set.

    ``uri`` takes every scheme of the driver: ``bolt://`` (one server), ``neo4j://`` (a
    cluster, routed), each with ``+s`` (TLS, verified against the system's CAs or
    ``ca_file``) or ``+ssc`` (TLS, any certificate: for testing only). Neo4j Aura is
    ``neo4j+s://<id>.databases.neo4j.io``.

    >>> Neo4jSettings(uri="neo4j+s://abc.databases.neo4j.io").encrypted
    True
    >>> Neo4jSettings(uri="http://localhost:7474")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    core.errors.ConfigError: LINEAGE_NEO4J__URI has the scheme 'http', which ... (hint: ...)
    """

    uri: str = "bolt://127.0.0.1:7687"
    user: str = "neo4j"
    password: SecretStr | None = None
    database: str = "neo4j"
    ca_file: Path | None = None

    @property
    def scheme(self) -> str:
        """The URI's scheme, e.g. ``neo4j+s``."""
        return self.uri.split("://", 1)[0].lower() if "://" in self.uri else ""

    @property
    def encrypted(self) -> bool:
        """Whether the URI asks for TLS (``+s`` or ``+ssc``)."""
        return "+" in self.scheme

    def auth(self) -> tuple[str, str]:
        """The (user, password) pair for the driver; refuses to run without a password."""
        if self.password is None:
            raise ConfigError(
                "no Neo4j password is configured",
                hint="run `lineage stack up` (it generates one) or set LINEAGE_NEO4J__PASSWORD",
            )
        return self.user, self.password.get_secret_value()

    @model_validator(mode="after")
    def _consistent_tls(self) -> Neo4jSettings:
        if self.scheme not in NEO4J_SCHEMES:
            raise ConfigError(
                f"LINEAGE_NEO4J__URI has the scheme {self.scheme or self.uri!r}, "
                "which Neo4j's driver does not speak",
                hint="use bolt://host:7687 or neo4j://host:7687, with +s for TLS "
                "(Neo4j Aura: neo4j+s://<id>.databases.neo4j.io)")
        if self.ca_file is not None:
            if not self.scheme.endswith("+s"):
                why = "trusts any certificate" if self.encrypted else "is not encrypted"
                raise ConfigError(
                    f"LINEAGE_NEO4J__CA_FILE is set but LINEAGE_NEO4J__URI is {self.scheme}://, "
                    f"which {why}",
                    hint="use a bolt+s:// or neo4j+s:// URI with a CA file")
            _check_file(self.ca_file, "LINEAGE_NEO4J__CA_FILE",
                        "CA certificate that signed Neo4j's")
        return self

def wants_secure_stack() -> bool:
    """Whether ``LINEAGE_STACK__SECURE`` asks for the secured local stack's endpoints."""
    return os.environ.get(f"{ENV_PREFIX}STACK__SECURE", "").strip().lower() in ("1", "true", "yes")


class _LocalStackFiles(PydanticBaseSettingsSource):
    """Reads the endpoints and the generated passwords that ``lineage stack up`` wrote.

    A secured stack (``--secure``) also writes its SASL_SSL endpoint; a client gets it, with the
    generated SCRAM password, only when it asks with ``LINEAGE_STACK__SECURE=true``, so the
    plaintext listener stays every other client's default.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is produced in __call__

    def __call__(self) -> dict[str, Any]:
        state_dir = Path(os.environ.get(f"{ENV_PREFIX}STATE_DIR") or default_state_dir())
        values: dict[str, Any] = {}
        connection = state_dir / CONNECTION_FILE
        if connection.is_file():
            data = json.loads(connection.read_text(encoding="utf-8"))
            values = {k: dict(v) for k, v in data.items() if k in ("kafka", "neo4j")}
            secure = data.get(SECURE_SECTION, {}).get("kafka")
            scram = state_dir / SCRAM_PASSWORD_FILE
            if secure and wants_secure_stack() and scram.is_file():
                values["kafka"] = {**secure, "sasl_password": scram.read_text("utf-8").strip()}
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
