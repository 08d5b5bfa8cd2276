"""Request bodies for the gateway benchmark: distinct synthetic events, small events, batches."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from lineage.bench.workload import synthetic_events

SMALL = {"eventType": "START", "eventTime": "2024-05-01T12:00:00Z",
         "producer": "https://example.com/bench",
         "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}


def main(out: Path) -> None:
    for kind in ("single", "small", "batch"):
        (out / kind).mkdir(parents=True, exist_ok=True)
    events = list(synthetic_events(jobs=300, runs_per_job=20, seed=3))[:6000]
    for i, event in enumerate(events[:1000]):
        (out / "single" / f"{i}.json").write_text(json.dumps(event, separators=(",", ":")))
    for i in range(50):
        batch = events[1000 + i * 100: 1100 + i * 100]
        (out / "batch" / f"{i}.json").write_text(json.dumps(batch, separators=(",", ":")))
    for i in range(1000):
        small = {**SMALL, "run": {"runId": str(uuid.uuid4())},
                 "job": {"namespace": "bench", "name": f"job_{i}"}}
        (out / "small" / f"{i}.json").write_text(json.dumps(small))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
