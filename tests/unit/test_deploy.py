"""The docker-compose deployment stays in step with the code (Docker itself does not run here)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.main import get_command

from core.settings import ENV_PREFIX, CommonSettings
from lineage.cli import app
from tests.conftest import REPO

COMPOSE = REPO / "deploy" / "docker-compose.yml"
PACKAGES = ("core", "lineage", "producers", "stream_processor", "sinks", "schemas")


def all_settings_classes() -> list[type[CommonSettings]]:
    """Every service's settings class: subclasses of CommonSettings anywhere in the packages."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    found: list[type[CommonSettings]] = [CommonSettings]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


def env_names(model: type[BaseModel], prefix: str = ENV_PREFIX) -> set[str]:
    """The environment variable of every field, nested models joined with ``__``."""
    names = set()
    for name, field in model.model_fields.items():
        var = f"{prefix}{name.upper()}"
        names.add(var)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= env_names(field.annotation, var + "__")
    return names


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def project_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def test_every_lineage_variable_in_compose_is_a_real_setting(compose: dict[str, Any]) -> None:
    known = set().union(*(env_names(cls) for cls in all_settings_classes()))
    used = {
        var
        for svc in compose["services"].values()
        for var in (svc.get("environment") or {})
        if var.startswith(ENV_PREFIX)
    }
    assert used, "the project's services are configured through LINEAGE_ variables"
    assert sorted(used - known) == []


def test_compose_uses_the_official_images(compose: dict[str, Any]) -> None:
    images = {name: svc.get("image", "") for name, svc in compose["services"].items()}
    assert images["kafka"].startswith("apache/kafka:4.")
    assert images["neo4j"].startswith("neo4j:5") and "community" in images["neo4j"]
    assert images["prometheus"].startswith("prom/prometheus:")
    assert images["grafana"].startswith("grafana/grafana:")


def test_project_services_are_built_from_the_root_dockerfile_and_run_real_commands(
    compose: dict[str, Any],
) -> None:
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    services = project_services(compose)
    assert services
    for name, svc in services.items():
        assert (COMPOSE.parent / svc["build"] / "Dockerfile").is_file(), name
        assert svc["command"][0] in commands, f"{name} runs an unknown subcommand"


def test_no_credential_is_hard_coded_in_compose(compose: dict[str, Any]) -> None:
    neo4j_auth = compose["services"]["neo4j"]["environment"]["NEO4J_AUTH"]
    assert neo4j_auth.startswith("neo4j/${NEO4J_PASSWORD")
    for svc in project_services(compose).values():
        assert svc["environment"]["LINEAGE_NEO4J__PASSWORD"].startswith("${NEO4J_PASSWORD")


def test_the_image_copies_every_package_the_project_installs() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    missing = [p for p in PACKAGES if f"COPY {p} ./{p}" not in dockerfile]
    assert not missing, f"the Dockerfile does not copy {missing}"
