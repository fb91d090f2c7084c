"""The CI examples users paste (README "Use in CI", examples/*.yml) and the Dockerfile must
match what the image reads: only real LIVEPEER_EMULATOR_* settings, with values the
server accepts, and the healthcheck, port and volume the image has."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator import scenarios
from emulator.cli import build_parser
from emulator.settings import OPTIONS, Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GITHUB = ROOT / "examples" / "github-actions.yml"
COMPOSE = ROOT / "examples" / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SETTINGS_ENV = {option.env_var for option in OPTIONS}
ENV_NAME = re.compile(r"LIVEPEER_EMULATOR_[A-Z0-9_]+")
HEALTHCHECK = ["livepeer-emulator", "healthcheck"]


def ci_section() -> str:
    text = README.read_text()
    start = text.index("\n## Use in CI\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def gitlab_job() -> dict[str, Any]:
    blocks = re.findall(r"```yaml\n(.*?)```", ci_section(), re.S)
    assert len(blocks) == 1, "one GitLab CI snippet in the README's Use in CI section"
    jobs = yaml.safe_load(blocks[0])
    assert list(jobs) == ["test"]
    return dict(jobs["test"])


def load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def dockerfile_env() -> dict[str, str]:
    """The ENV settings of the Dockerfile's last stage (the image that runs)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final = text[text.rindex("\nFROM ") :]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def dockerfile_instruction(name: str) -> str:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.*)$", text, re.M)
    assert len(found) == 1, (name, found)
    return str(found[0]).strip()


@pytest.mark.parametrize("path", [README, GITHUB, COMPOSE, DOCKERFILE], ids=lambda p: p.name)
def test_every_env_var_named_is_a_setting_the_image_reads(path: Path) -> None:
    text = ci_section() if path == README else path.read_text()
    named = set(ENV_NAME.findall(text))
    assert named, f"{path.name} names no LIVEPEER_EMULATOR_* setting"
    assert named <= SETTINGS_ENV, f"{path.name}: not settings: {sorted(named - SETTINGS_ENV)}"


def test_the_readme_table_lists_the_container_settings_with_the_image_defaults() -> None:
    rows = {
        match[0]: match[1]
        for match in re.findall(r"^\| `(LIVEPEER_EMULATOR_\w+)` \| ([^|]+) \|", ci_section(), re.M)
    }
    container_settings = {
        *("api_key", "public_url", "scenario", "seed", "clock", "data_dir", "port", "host")
    }
    assert set(rows) == {env_var(name) for name in container_settings}
    # What the Dockerfile sets is what the table says the image has.
    image_env = {k: v for k, v in dockerfile_env().items() if k.startswith("LIVEPEER_")}
    assert set(image_env) == {env_var("host"), env_var("port"), env_var("data_dir")}
    for name, value in image_env.items():
        assert f"`{value}`" in rows[name], (name, value, rows[name])
    # The settings the image leaves alone show the server's own defaults.
    defaults = Settings()
    assert f"`{defaults.clock}`" in rows[env_var("clock")]
    assert "request's Host" in rows[env_var("public_url")]


def env_var(name: str) -> str:
    (option,) = (o for o in OPTIONS if o.name == name)
    return option.env_var


def example_envs() -> dict[str, dict[str, str]]:
    github = load(GITHUB)["jobs"]["test"]["services"]["livepeer"]["env"]
    compose = load(COMPOSE)["services"]["livepeer"]["environment"]
    gitlab = gitlab_job()["services"][0]["variables"]
    return {"github-actions": github, "docker-compose": compose, "gitlab": gitlab}


@pytest.mark.parametrize("example", ["github-actions", "docker-compose", "gitlab"])
def test_the_examples_settings_start_a_server(example: str) -> None:
    env = {name: str(value) for name, value in example_envs()[example].items()}
    assert set(env) <= SETTINGS_ENV
    settings = Settings.load(env=env)  # raises on a value the server would refuse
    assert settings.api_keys, "the examples show how to set the API key"
    if settings.scenario:
        assert scenarios.load(settings.scenario).name


def test_the_image_listens_on_its_exposed_port_with_data_in_the_volume() -> None:
    env = dockerfile_env()
    settings = Settings.load(env=env)
    assert settings.host == "0.0.0.0"
    assert dockerfile_instruction("EXPOSE") == str(settings.port) == "3000"
    assert dockerfile_instruction("VOLUME") == f'["{settings.data_dir}"]'
    assert dockerfile_instruction("USER") != "root"
    health = dockerfile_instruction("HEALTHCHECK")
    assert health.endswith(f"CMD {json.dumps(HEALTHCHECK)}"), health
    assert dockerfile_instruction("CMD") == '["livepeer-emulator", "serve"]'
    # The healthcheck is a real subcommand that takes its host and port from the env.
    args = build_parser().parse_args(HEALTHCHECK[1:])
    assert (args.command, args.host, args.port) == ("healthcheck", None, None)


def test_github_actions_publishes_the_port_and_waits_for_health() -> None:
    job = load(GITHUB)["jobs"]["test"]
    service = job["services"]["livepeer"]
    assert service["ports"] == ["3000:3000"]
    assert '--health-cmd "livepeer-emulator healthcheck"' in service["options"]
    wait = next(step for step in job["steps"] if "Health.Status" in step.get("run", ""))
    assert "job.services.livepeer.id" in wait["run"]
    assert "exit 1" in wait["run"]  # a container that never gets healthy fails the job
    assert job["steps"].index(wait) < len(job["steps"]) - 1, "it runs before the tests"
    client_env = job["steps"][-1]["env"]
    assert client_env["LIVEPEER_API_URL"] == "http://localhost:3000/api"
    assert client_env["LIVEPEER_API_KEY"] in service["env"]["LIVEPEER_EMULATOR_API_KEY"]


def test_docker_compose_starts_the_app_once_the_emulator_is_healthy() -> None:
    compose = load(COMPOSE)
    livepeer = compose["services"]["livepeer"]
    assert livepeer["healthcheck"]["test"] == ["CMD", *HEALTHCHECK]
    assert livepeer["ports"] == ["3000:3000"]
    volume, _, target = livepeer["volumes"][0].split("#")[0].strip().partition(":")
    assert target == "/data" and volume in compose["volumes"]
    assert (COMPOSE.parent / livepeer["build"] / "Dockerfile").is_file()
    app = compose["services"]["app"]
    assert app["depends_on"] == {"livepeer": {"condition": "service_healthy"}}
    assert app["environment"]["LIVEPEER_API_URL"] == "http://livepeer:3000/api"
    keys = Settings.load(env=livepeer["environment"]).api_keys
    assert app["environment"]["LIVEPEER_API_KEY"] in keys


def test_gitlab_snippet_reaches_the_service_by_alias_and_waits_for_health() -> None:
    job = gitlab_job()
    (service,) = job["services"]
    assert service["alias"] == "livepeer"
    assert job["variables"]["LIVEPEER_API_URL"] == "http://livepeer:3000/api"
    assert job["variables"]["LIVEPEER_API_KEY"] in service["variables"]["LIVEPEER_EMULATOR_API_KEY"]
    wait = job["script"][0]
    assert "http://livepeer:3000/_emulator/health" in wait and "--retry" in wait
