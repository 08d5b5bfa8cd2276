"""Settings of the stream processor (``LINEAGE_PROCESSOR__...``), on top of the common ones.

>>> ProcessorSettings(processor={"repair": True}).processor.repair
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.settings import CommonSettings


class ProcessorOptions(BaseModel):
    """How the processor runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_id: str = Field(default="lineage-processor", description="also the consumer group")
    worker_id: str = Field(default="0", description="tells workers on one host apart")
    max_event_bytes: int = Field(default=1_048_576, ge=1024)
    repair: bool = False
    retention_days: float = Field(default=7.0, gt=0, description="dedup memory, in eventTime")
    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path | None = Field(default=None, description="RocksDB files; default state_dir")
    metrics_port: int = Field(default=9101, ge=0, le=65535, description="0 turns metrics off")
    metrics_host: str = "127.0.0.1"
    batch_size: int = Field(default=500, ge=1)
    batch_seconds: float = Field(default=0.05, gt=0)
    expiry_interval_seconds: float = Field(default=60.0, gt=0)
    stall_seconds: float = Field(
        default=30.0, gt=0,
        description="a partition with lag whose commit has not moved this long is re-read")


class ProcessorSettings(CommonSettings):
    """Settings of ``lineage process``."""

    processor: ProcessorOptions = ProcessorOptions()
