"""Settings of the Neo4j sink (``LINEAGE_SINK__...``), on top of the common ones.

>>> SinkSettings(sink={"batch_size": 500}).sink.batch_size
500
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.settings import CommonSettings


class SinkOptions(BaseModel):
    """How the sink runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_id: str = Field(default="lineage-sink", description="the Kafka consumer group")
    batch_size: int = Field(default=2000, ge=1, description="change records per transaction")
    poll_seconds: float = Field(default=0.5, gt=0, description="longest wait to fill a batch")
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    gauge_seconds: float = Field(
        default=10.0, gt=0, description="how often the lag and graph size gauges are refreshed")
    metrics_port: int = Field(default=9102, ge=0, le=65535, description="0 turns metrics off")
    metrics_host: str = "127.0.0.1"


class SinkSettings(CommonSettings):
    """Settings of ``lineage sink``."""

    sink: SinkOptions = SinkOptions()
