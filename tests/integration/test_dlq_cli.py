"""`lineage dlq list|show|replay` on the real Kafka, after the real processor refused events."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from lineage.stack.settings import StackSettings
from tests.conftest import run_cli
from tests.integration.kafka_io import Pipeline, read_topic, wait_until_processed


def run_event(namespace: str, *, schema_url: bool = True) -> dict[str, object]:
    event: dict[str, object] = {
        "eventType": "COMPLETE", "eventTime": "2024-05-01T10:00:00.000Z",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": namespace, "name": "daily_orders"},
        "inputs": [{"namespace": namespace, "name": "raw.orders"}],
        "outputs": [{"namespace": namespace, "name": "mart.orders"}],
        "producer": "https://example.com/tests",
    }
    if schema_url:
        event["schemaURL"] = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    return event


def test_dead_letters_are_listed_shown_and_replayed_with_repair(
    stack: StackSettings, tmp_path: Path,
) -> None:
    run = Pipeline(stack, tmp_path)
    namespace = f"test://{uuid.uuid4().hex[:8]}"
    repairable = run_event(namespace, schema_url=False)
    run.start()
    try:
        run.publish([(None, json.dumps(run_event(namespace)).encode()),
                     (None, json.dumps(repairable).encode()),
                     (None, b"{not json")])
        wait_until_processed(run.bootstrap, run.topics)
        env = run.topics.env(tmp_path)

        listed = run_cli("dlq", "list", env=env)
        assert listed.returncode == 0, listed.stderr
        assert "2 dead letters" in listed.stdout
        assert "missing_field" in listed.stdout and "not_json" in listed.stdout
        ref = next(line.split()[0] for line in listed.stdout.splitlines()
                   if "missing_field" in line)

        shown = run_cli("dlq", "show", ref, env=env)
        assert shown.returncode == 0, shown.stderr
        assert "/schemaURL" in shown.stdout and "daily_orders" in shown.stdout

        replayed = run_cli("dlq", "replay", "--all", "--repair", env=env)
        assert replayed.returncode == 0, replayed.stderr
        assert "still invalid (not_json)" in replayed.stdout
        assert "replayed 1 of 2 dead letters" in replayed.stdout

        wait_until_processed(run.bootstrap, run.topics)
        raw = read_topic(run.bootstrap, run.topics.raw)
        assert len(raw) == 4
        run_id = repairable["run"]["runId"]  # type: ignore[index]
        copies = [json.loads(m.value()) for m in raw if run_id.encode() in m.value()]
        assert len(copies) == 2
        assert [c.get("schemaURL", "").endswith("#/$defs/RunEvent") for c in copies].count(
            True) == 1  # the original, and the repaired copy
        # The processor took the repaired event: the DLQ holds only the two first refusals.
        assert len(read_topic(run.bootstrap, run.topics.dlq)) == 2
    finally:
        run.stop()
