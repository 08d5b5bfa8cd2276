"""The alert rules' promtool unit tests, and promtool's checks of the rules and the config."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
RUNBOOK = REPO / "docs" / "runbook.md"

promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian: apt-get install prometheus; `make test` "
           "installs it through deploy/local/bootstrap.sh --with-prometheus)")


def alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False,
                          cwd=PROMETHEUS, timeout=120)


@promtool
def test_every_alert_rule_passes_its_promtool_unit_tests() -> None:
    result = run_promtool("test", "rules", "alerts.test.yml")
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


@promtool
def test_promtool_accepts_the_rules_and_the_compose_scrape_config() -> None:
    for args in (("check", "rules", "alerts.yml"), ("check", "config", "prometheus.yml")):
        result = run_promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in alerts():
        name = rule["alert"]
        assert any(c["alertname"] == name and c["exp_alerts"] for c in cases), f"{name} fires"
        assert any(c["alertname"] == name and not c["exp_alerts"] for c in cases), f"{name} quiet"


def test_every_alert_links_to_its_section_of_the_runbook() -> None:
    runbook = RUNBOOK.read_text()
    for rule in alerts():
        name = str(rule["alert"])
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook"] == f"docs/runbook.md#{name.lower()}"
        assert f"\n## {name}\n" in runbook, f"docs/runbook.md has no section for {name}"
