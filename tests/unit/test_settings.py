"""Settings: precedence, the local stack's generated credentials, and frozen values."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from core.settings import CommonSettings, KafkaSettings, Neo4jSettings
from lineage.stack.settings import StackSettings


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [n for n in os.environ if n.startswith("LINEAGE_")]:
        monkeypatch.delenv(name)
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


def write_secure_stack_files(state_dir: Path) -> None:
    write_stack_files(state_dir)
    (state_dir / "kafka").mkdir()
    (state_dir / "kafka" / "scram-password").write_text("scram-pw\n")
    (state_dir / "ca.pem").write_text("not read by the settings\n")
    connection = json.loads((state_dir / "connection.json").read_text())
    connection["secure"] = {"kafka": {
        "bootstrap_servers": "127.0.0.1:19094", "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "lineage",
        "ssl_ca_file": str(state_dir / "ca.pem")}}
    (state_dir / "connection.json").write_text(json.dumps(connection))


def test_a_secured_stack_leaves_the_plaintext_listener_the_default(state_dir: Path) -> None:
    write_secure_stack_files(state_dir)
    kafka = CommonSettings().kafka
    assert (kafka.bootstrap_servers, kafka.security_protocol) == ("127.0.0.1:19092", "PLAINTEXT")


def test_a_client_that_asks_gets_the_secured_listener_and_its_password(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_secure_stack_files(state_dir)
    monkeypatch.setenv("LINEAGE_STACK__SECURE", "true")
    kafka = CommonSettings().kafka
    assert (kafka.bootstrap_servers, kafka.security_protocol) == ("127.0.0.1:19094", "SASL_SSL")
    assert kafka.sasl_credentials() == ("lineage", "scram-pw")
    assert kafka.ssl_ca_file == state_dir / "ca.pem"


def test_kafka_security_comes_from_lineage_kafka_variables(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = state_dir.parent / "ca.pem"
    ca.write_text("pem")
    for name, value in {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "PLAIN",
                        "SASL_USERNAME": "API_KEY", "SASL_PASSWORD": "API_SECRET",
                        "SSL_CA_FILE": str(ca)}.items():
        monkeypatch.setenv(f"LINEAGE_KAFKA__{name}", value)
    kafka = CommonSettings().kafka
    assert kafka.sasl_credentials() == ("API_KEY", "API_SECRET")
    assert kafka.ssl_ca_file == ca
    assert "API_SECRET" not in repr(kafka) and "API_SECRET" not in str(CommonSettings())


@pytest.mark.parametrize(("settings", "variable"), [
    ({"security_protocol": "SASL_SSL", "sasl_password": "p"}, "LINEAGE_KAFKA__SASL_USERNAME"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u"},
     "LINEAGE_KAFKA__SASL_PASSWORD"),
    ({"sasl_username": "u", "sasl_password": "p"}, "LINEAGE_KAFKA__SECURITY_PROTOCOL"),
    ({"ssl_ca_file": "/etc/hostname"}, "LINEAGE_KAFKA__SECURITY_PROTOCOL"),
    ({"security_protocol": "SSL", "ssl_cert_file": "/etc/hostname"},
     "LINEAGE_KAFKA__SSL_KEY_FILE"),
    ({"security_protocol": "SSL", "ssl_key_password": "k"}, "LINEAGE_KAFKA__SSL_KEY_FILE"),
    ({"security_protocol": "SSL", "ssl_ca_file": "/no/such/ca.pem"},
     "LINEAGE_KAFKA__SSL_CA_FILE"),
])
def test_a_kafka_security_setting_that_would_be_ignored_or_fail_is_a_config_error(
    settings: dict[str, str], variable: str,
) -> None:
    with pytest.raises(ConfigError) as err:
        KafkaSettings.model_validate(settings)
    assert variable in err.value.cause + (err.value.hint or "")
    assert err.value.hint


def test_an_unknown_security_protocol_or_mechanism_is_refused() -> None:
    with pytest.raises(ValidationError):
        KafkaSettings.model_validate({"security_protocol": "TLS"})
    with pytest.raises(ValidationError):
        KafkaSettings.model_validate({"security_protocol": "SASL_SSL", "sasl_mechanism": "MD5",
                                      "sasl_username": "u", "sasl_password": "p"})


@pytest.mark.parametrize("uri", ["bolt://h:7687", "neo4j://h", "bolt+s://h", "bolt+ssc://h",
                                 "neo4j+s://abc.databases.neo4j.io", "neo4j+ssc://h"])
def test_every_scheme_of_the_neo4j_driver_is_accepted(uri: str) -> None:
    assert Neo4jSettings(uri=uri).encrypted == ("+" in uri)


@pytest.mark.parametrize(("settings", "words"), [
    ({"uri": "http://h:7474"}, "LINEAGE_NEO4J__URI"),
    ({"uri": "h:7687"}, "LINEAGE_NEO4J__URI"),
    ({"uri": "bolt://h", "ca_file": "/etc/hostname"}, "not encrypted"),
    ({"uri": "bolt+ssc://h", "ca_file": "/etc/hostname"}, "trusts any certificate"),
    ({"uri": "neo4j+s://h", "ca_file": "/no/such/ca.pem"}, "LINEAGE_NEO4J__CA_FILE"),
])
def test_a_neo4j_uri_or_ca_file_that_cannot_work_is_a_config_error(
    settings: dict[str, str], words: str,
) -> None:
    with pytest.raises(ConfigError) as err:
        Neo4jSettings.model_validate(settings)
    assert words in err.value.cause


def test_a_secure_neo4j_uri_with_a_database_and_ca_comes_from_the_environment(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINEAGE_NEO4J__URI", "neo4j+s://abc.databases.neo4j.io")
    monkeypatch.setenv("LINEAGE_NEO4J__DATABASE", "lineage")
    monkeypatch.setenv("LINEAGE_NEO4J__CA_FILE", "/etc/hostname")
    neo4j = CommonSettings().neo4j
    assert (neo4j.scheme, neo4j.database, neo4j.ca_file) == ("neo4j+s", "lineage",
                                                            Path("/etc/hostname"))


def test_every_kafka_neo4j_and_stack_variable_the_docs_name_is_a_real_setting() -> None:
    from lineage.stack.settings import LocalStackOptions

    repo = Path(__file__).resolve().parents[2]
    known = {f"LINEAGE_{section}__{name.upper()}"
             for section, model in (("KAFKA", KafkaSettings), ("NEO4J", Neo4jSettings),
                                    ("STACK", LocalStackOptions))
             for name in model.model_fields}
    docs = [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    named = {var for doc in docs
             for var in re.findall(r"LINEAGE_(?:KAFKA|NEO4J|STACK)__[A-Z0-9_]+", doc.read_text())}
    assert "LINEAGE_KAFKA__SASL_MECHANISM" in named
    assert sorted(named - known) == []
