"""The shipped alert rules and dashboard: the rules load and behave as their promtool unit
tests say, and both speak only of metrics the bot and the bridge really expose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from waqr.bot.metrics import BotMetrics
from waqr.bridge.metrics import BridgeMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "waqr-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "waqr-dashboard.json"
# PromQL words that are not metric names.
PROMQL = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "sum", "max", "min", "avg", "count", "rate", "increase", "time", "histogram_quantile",
    "bool", "le", "offset",
}  # fmt: skip


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: scripts/test installs it (apt-get prometheus)")
    return found


def exposed_metric_names() -> set[str]:
    """Every sample name the two services can expose (their registries, rendered)."""
    text = (BotMetrics().render() + BridgeMetrics().render()).decode()
    names = set(re.findall(r"^# (?:HELP|TYPE) (\w+)", text, flags=re.M))
    names |= {f"{n}{suffix}" for n in names for suffix in ("_total", "_bucket", "_sum", "_count")}
    names.add("http_requests_total")  # the HTTP instrumentation, once a request was served
    return names


def metric_names(expr: str) -> set[str]:
    grouping = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    without_labels = re.sub(grouping + r"|\{[^}]*\}|\"[^\"]*\"|\[[^\]]*\]", " ", expr)
    words = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", without_labels))
    return {w for w in words if w not in PROMQL}


def test_the_alert_rules_load_and_pass_their_unit_tests() -> None:
    check = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "5 rules found" in check.stdout
    test = subprocess.run(
        [promtool(), "test", "rules", RULES.with_suffix(".test.yml").name],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_rules_and_dashboard_use_only_metrics_that_exist() -> None:
    exposed = exposed_metric_names()
    rules = yaml.safe_load(RULES.read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    expressions += [target["expr"] for panel in panels for target in panel["targets"]]
    unknown = {name for expr in expressions for name in metric_names(expr)} - exposed
    assert unknown == set()
