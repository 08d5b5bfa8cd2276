"""Settings: precedence, the local stack's generated credentials, and frozen values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from core.settings import CommonSettings
from lineage.stack.settings import StackSettings


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("LINEAGE_NEO4J__PASSWORD", "LINEAGE_KAFKA__BOOTSTRAP_SERVERS",
                 "LINEAGE_NEO4J__URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("LINEAGE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def write_stack_files(state_dir: Path, password: str = "generated-pw") -> None:
    (state_dir / "neo4j").mkdir(parents=True)
    (state_dir / "neo4j" / "password").write_text(password + "\n")
    (state_dir / "connection.json").write_text(json.dumps({
        "kafka": {"bootstrap_servers": "127.0.0.1:19092"},
        "neo4j": {"uri": "bolt://127.0.0.1:17687"},
    }))


def test_defaults_point_at_the_local_stack_on_loopback(state_dir: Path) -> None:
    settings = CommonSettings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.neo4j.uri == "bolt://127.0.0.1:7687"
    assert settings.neo4j.password is None


def test_the_generated_password_and_endpoints_are_picked_up_from_the_state_folder(
    state_dir: Path,
) -> None:
    write_stack_files(state_dir)
    settings = CommonSettings()
    assert settings.neo4j.auth() == ("neo4j", "generated-pw")
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.neo4j.uri == "bolt://127.0.0.1:17687"
    assert settings.kafka.raw_topic == "openlineage.events"


def test_environment_variables_win_over_the_stack_files(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stack_files(state_dir)
    monkeypatch.setenv("LINEAGE_NEO4J__PASSWORD", "from-env")
    monkeypatch.setenv("LINEAGE_KAFKA__BOOTSTRAP_SERVERS", "broker:9092")
    settings = CommonSettings()
    assert settings.neo4j.auth() == ("neo4j", "from-env")
    assert settings.kafka.bootstrap_servers == "broker:9092"
    assert settings.neo4j.uri == "bolt://127.0.0.1:17687"  # untouched fields still come from files


def test_keyword_arguments_win_over_the_environment(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINEAGE_KAFKA__BOOTSTRAP_SERVERS", "broker:9092")
    settings = CommonSettings(kafka={"bootstrap_servers": "other:9092"})
    assert settings.kafka.bootstrap_servers == "other:9092"


def test_a_dotenv_file_is_read_below_the_environment(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(".env").write_text("LINEAGE_KAFKA__RAW_TOPIC=from-dotenv\nLINEAGE_KAFKA__DLQ_TOPIC=d\n")
    monkeypatch.setenv("LINEAGE_KAFKA__DLQ_TOPIC", "from-env")
    settings = CommonSettings()
    assert (settings.kafka.raw_topic, settings.kafka.dlq_topic) == ("from-dotenv", "from-env")


def test_the_password_is_a_secret_that_does_not_print(state_dir: Path) -> None:
    write_stack_files(state_dir, password="hunter2")
    settings = CommonSettings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.neo4j)


def test_no_password_at_all_is_a_config_error_with_a_hint(state_dir: Path) -> None:
    with pytest.raises(ConfigError) as err:
        CommonSettings().neo4j.auth()
    assert "lineage stack up" in (err.value.hint or "")


def test_settings_are_frozen(state_dir: Path) -> None:
    settings = StackSettings()
    with pytest.raises(ValidationError):
        settings.stack.kafka_port = 1  # type: ignore[misc]


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_an_invalid_port_is_refused(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LINEAGE_STACK__KAFKA_PORT", value)
    with pytest.raises(ValidationError):
        StackSettings()
