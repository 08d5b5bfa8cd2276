"""Settings of the ``lineage stack`` service: ports, memory and timeouts of the local stack.

>>> StackSettings(stack={"kafka_port": 19092}).stack.kafka_port
19092
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.settings import CommonSettings


class LocalStackOptions(BaseModel):
    """Ports, memory and timeouts of the local Kafka + Neo4j stack (``LINEAGE_STACK__...``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    bolt_port: int = Field(default=7687, ge=1, le=65535)
    http_port: int = Field(default=7474, ge=1, le=65535)
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_heap: str = "1g"
    neo4j_heap: str = "1g"
    neo4j_pagecache: str = "512m"
    start_timeout_seconds: float = Field(default=120.0, gt=0)
    java_home: Path | None = None
    with_prometheus: bool = False
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    kafka_metrics_port: int = Field(
        default=9404, ge=1, le=65535,
        description="the JMX exporter on Kafka, attached when Prometheus is on")
    secure: bool = Field(
        default=False,
        description="secured mode: Kafka adds a SASL_SSL (SCRAM-SHA-512) listener and Neo4j's "
        "bolt requires TLS, with a generated CA, certificate and SCRAM password")
    kafka_secure_port: int = Field(
        default=9094, ge=1, le=65535, description="Kafka's SASL_SSL listener in secured mode")


class StackSettings(CommonSettings):
    """Settings of the ``lineage stack`` service (``LINEAGE_STACK__...``)."""

    stack: LocalStackOptions = LocalStackOptions()
