"""The gateway's settings: ``LINEAGE_GATEWAY__...`` on top of the common Kafka and Neo4j ones.

>>> GatewaySettings(gateway={"port": 5001}).gateway.port
5001
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from core.settings import CommonSettings

__all__ = ["GatewayOptions", "GatewaySettings", "TokenSource"]

#: Bearer tokens as a JSON list, or the path of a file that holds them.
TokenSource = tuple[SecretStr, ...] | Path


class GatewayOptions(BaseModel):
    """How the gateway runs (``LINEAGE_GATEWAY__...``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", description="0.0.0.0 to listen on every interface")
    port: int = Field(default=5000, ge=1, le=65535, description="Marquez's API port")
    tokens: TokenSource = Field(
        default=(), description="bearer tokens that may publish: a JSON list, or a file path "
        "(one token a line, '#' comments); none at all turns authentication off")
    read_tokens: TokenSource = Field(
        default=(), description="read-only tokens (may read /metrics and GET /api/v1/lineage, "
        "may not publish: 403)")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024,
        description="one event (and each event of a batch), after gzip; the processor's limit")
    max_batch_bytes: int = Field(default=16_777_216, ge=1024, description="one batch request")
    max_batch_events: int = Field(default=1000, ge=1)
    repair: bool = Field(
        default=False, description="accept what the processor's repair mode repairs; set it "
        "as the processor's LINEAGE_PROCESSOR__REPAIR")
    idempotency_retention_seconds: float = Field(default=86_400.0, gt=0)
    idempotency_max_keys: int = Field(default=100_000, ge=1, description="per gateway instance")
    ack_timeout_seconds: float = Field(
        default=4.0, gt=0, description="below openlineage-python's 5 s request timeout, so that "
        "the client gets a 503 rather than a read timeout")
    retry_after_seconds: int = Field(default=5, ge=1, description="Retry-After of a 503")
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a connection whose request headers have not all "
        "arrived this long after it opened (or after its last answer) is closed")
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a request body not all read this long after its "
        "headers is answered 408")
    max_connections: int = Field(
        default=1000, ge=1, description="open connections and requests at once; more get 503")
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    # Read by lineage.read_api (the read routes `lineage gateway` adds): it stays a gateway
    # option so that the setting keeps its name whichever module answers the read.
    lineage_timeout_seconds: float = Field(
        default=10.0, gt=0, description="how long a GET /api/v1/lineage retries reaching Neo4j, "
        "and the longest its query may run there, before a 503")


class GatewaySettings(CommonSettings):
    """Settings of ``lineage gateway``.

    >>> GatewaySettings().gateway.max_batch_events
    1000
    """

    gateway: GatewayOptions = GatewayOptions()
