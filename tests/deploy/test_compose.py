"""``deploy/docker-compose.yml`` would start: checked without a Docker engine.

No Docker engine runs here, so the file is checked the way its failures would
show: every role has a service whose command the CLI accepts; each service's
environment (its ``env_file`` files plus ``environment``) gives mediaflow valid
settings and every secret the tenant registry names; credentials agree between
the services that share them; ports, health checks and ``depends_on`` fit
together; no secret is baked into the image. Docker Compose's own ``config``
runs too, where Compose is installed or installable.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from mediaflow.cli import build_parser
from mediaflow.config import Settings
from mediaflow.tenants import TenantRegistry
from simulator.cli import build_parser as simulator_parser
from tests.support.deploy import (
    DEPLOY,
    PIPELINE_ROLES,
    TENANT_ROLES,
    TRANSACTIONAL_ROLES,
    read_env_file,
)

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
MEDIAFLOW_IMAGE = "mediaflow:local"
MEDIAFLOW_SERVICES = {n: s for n, s in SERVICES.items() if s.get("image") == MEDIAFLOW_IMAGE}
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "DB_URL", "ACCESS_KEY")


def env_files(service: Mapping[str, Any]) -> list[Path]:
    files = service.get("env_file", [])
    return [DEPLOY / f for f in ([files] if isinstance(files, str) else files)]


def service_env(name: str) -> dict[str, str]:
    """What the container sees: its env files, then ``environment`` (which wins)."""
    service = SERVICES[name]
    env: dict[str, str] = {}
    for path in env_files(service):
        env.update(read_env_file(path))
    env.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    return env


def role_of(name: str) -> str | None:
    """The pipeline role a service runs (``serve webhooks``, ``run detector``)."""
    command = SERVICES[name].get("command") or []
    if len(command) >= 2 and command[0] in ("serve", "run") and command[1] in PIPELINE_ROLES:
        return command[1]
    return None


def services_of(role: str) -> list[str]:
    return [name for name in MEDIAFLOW_SERVICES if role_of(name) == role]


def waits_for(name: str, target: str) -> bool:
    """Whether ``name`` starts only once ``target`` is healthy, directly or through another."""
    for dependency, spec in (SERVICES[name].get("depends_on") or {}).items():
        if dependency == target and spec["condition"] == "service_healthy":
            return True
        if waits_for(dependency, target):
            return True
    return False


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    return parts.hostname or "", parts.port or 0


def published(service: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """``(host address, host port, container port)`` of each published port."""
    result = []
    for spec in service.get("ports", []):
        address, host_port, container_port = str(spec).split(":")
        result.append((address, int(host_port), int(container_port)))
    return result


def healthcheck_port(service: Mapping[str, Any]) -> int | None:
    """The loopback port a health check calls (``127.0.0.1:N`` or ``('127.0.0.1', N)``)."""
    test = " ".join(map(str, service.get("healthcheck", {}).get("test", [])))
    found = re.search(r"127\.0\.0\.1'?[:,]\s*(\d+)", test)
    return int(found.group(1)) if found else None


@pytest.mark.parametrize("role", PIPELINE_ROLES)
def test_every_role_has_a_service(role: str) -> None:
    assert services_of(role), f"no service runs `mediaflow run {role}`"


@pytest.mark.parametrize("name", sorted(MEDIAFLOW_SERVICES))
def test_every_command_is_one_the_cli_accepts(name: str) -> None:
    command = [str(word) for word in SERVICES[name]["command"]]

    parser_of(name).parse_args(command)  # argparse exits on a command it does not know


def parser_of(name: str) -> Any:
    """The parser of the command a service runs: ``mediaflow``'s, or the simulator's."""
    if SERVICES[name].get("entrypoint") == ["python", "-m", "simulator"]:
        assert SERVICES[name].get("working_dir") == "/opt/mediaflow"
        return simulator_parser()
    assert "entrypoint" not in SERVICES[name]
    return build_parser()


@pytest.mark.parametrize("name", ["simulator", "simulate-send"])
def test_the_demo_services_run_the_simulator_the_image_keeps_beside_the_package(
    name: str,
) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()

    assert SERVICES[name]["entrypoint"] == ["python", "-m", "simulator"]
    assert "COPY simulator/ /opt/mediaflow/simulator/" in dockerfile


@pytest.mark.parametrize("name", sorted(MEDIAFLOW_SERVICES))
def test_every_service_environment_gives_valid_settings(name: str) -> None:
    settings = Settings.from_env(service_env(name))

    kafka_host, kafka_port = host_and_port(settings.kafka.bootstrap_servers)
    kafka = SERVICES[kafka_host]["environment"]
    assert f"://:{kafka_port}" in kafka["KAFKA_LISTENERS"]
    assert f"//{kafka_host}:{kafka_port}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    s3_host, s3_port = host_and_port(settings.s3.endpoint_url or "")
    assert s3_port in [port for _, _, port in published(SERVICES[s3_host])]


@pytest.mark.parametrize("name", sorted(MEDIAFLOW_SERVICES))
def test_the_mounted_registry_and_topics_files_exist(name: str) -> None:
    env = service_env(name)
    mounts = {}
    for volume in SERVICES[name].get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = DEPLOY / source

    for variable in ("MEDIAFLOW_TENANTS_FILE", "MEDIAFLOW_TOPICS_FILE"):
        assert env[variable] in mounts, f"{variable} is not a mounted file"
        assert mounts[env[variable]].is_file()


@pytest.mark.parametrize(
    "name", [n for n in MEDIAFLOW_SERVICES if role_of(n) in TENANT_ROLES or "simulate" in n]
)
def test_every_secret_the_tenant_registry_names_is_provided(name: str) -> None:
    registry = TenantRegistry.load(DEPLOY / "tenants.toml", service_env(name))

    assert registry.tenants
    assert all(t.webhook_secret for t in registry.tenants.values())


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in MEDIAFLOW_SERVICES
        if role_of(n) in ("downloader", "notifier", "api") or "storage" in n
    ],
)
def test_the_s3_credentials_are_minios(name: str) -> None:
    settings = Settings.from_env(service_env(name))
    minio = service_env("minio")

    assert settings.s3.access_key.reveal() == minio["MINIO_ROOT_USER"]
    assert settings.s3.secret_key.reveal() == minio["MINIO_ROOT_PASSWORD"]


@pytest.mark.parametrize("role", ["projection", "api"])
def test_the_projection_database_is_the_postgres_service(role: str) -> None:
    [name] = services_of(role)
    url = urlsplit(Settings.from_env(service_env(name)).projection_db_url)
    postgres = service_env("postgres")

    assert url.scheme == "postgresql"
    assert url.hostname in SERVICES
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert waits_for(name, url.hostname)


def test_the_api_token_is_set_and_not_the_local_default() -> None:
    [name] = services_of("api")

    token = Settings.from_env(service_env(name)).api_token.reveal()

    assert token
    assert token != Settings.from_env({}).api_token.reveal()


def test_the_downloader_fetches_from_the_simulator_of_the_demo_profile() -> None:
    [name] = services_of("downloader")
    settings = Settings.from_env(service_env(name))
    serve = [str(w) for w in SERVICES["simulator"]["command"]]
    args = simulator_parser().parse_args(serve)

    assert host_and_port(settings.downloader.wapi_base_url) == ("simulator", args.wapi_port)
    assert host_and_port(settings.downloader.cdn_base_url) == ("simulator", args.cdn_port)
    assert args.host == "0.0.0.0"


def test_the_demo_sender_and_simulator_build_the_same_batch() -> None:
    serve = simulator_parser().parse_args([str(w) for w in SERVICES["simulator"]["command"]])
    send = simulator_parser().parse_args([str(w) for w in SERVICES["simulate-send"]["command"]])

    assert (send.seed, send.count, send.max_size) == (serve.seed, serve.count, serve.max_size)
    assert host_and_port(send.webhook_url) == ("webhooks", 8080)


def test_only_the_simulator_and_its_sender_wait_for_the_demo_profile() -> None:
    profiled = {name: s["profiles"] for name, s in SERVICES.items() if "profiles" in s}

    assert profiled == {"simulator": ["demo"], "simulate-send": ["demo"]}


@pytest.mark.parametrize("role", TRANSACTIONAL_ROLES)
def test_transactional_stages_have_a_stable_instance_name_of_their_own(role: str) -> None:
    names = [service_env(n).get("MEDIAFLOW_INSTANCE_NAME") for n in MEDIAFLOW_SERVICES]

    for name in services_of(role):
        instance = service_env(name).get("MEDIAFLOW_INSTANCE_NAME")
        assert instance, f"{name} would take the container id, new on every re-creation"
        assert names.count(instance) == 1


def test_published_ports_are_loopback_only_and_unique() -> None:
    ports = [p for s in SERVICES.values() for p in published(s)]

    assert all(address == "127.0.0.1" for address, _, _ in ports)
    host_ports = [host_port for _, host_port, _ in ports]
    assert len(host_ports) == len(set(host_ports))


@pytest.mark.parametrize("role", PIPELINE_ROLES)
def test_each_role_publishes_and_checks_the_port_it_listens_on(role: str) -> None:
    [name] = services_of(role)
    settings = Settings.from_env(service_env(name))
    listens = {
        "webhooks": settings.webhook_port,
        "api": settings.api_port,
    }.get(role, settings.metrics_port)
    if role in ("webhooks", "api"):
        assert (settings.webhook_host if role == "webhooks" else settings.api_host) == "0.0.0.0"
    else:
        assert settings.metrics_host == "0.0.0.0"

    assert listens
    assert [c for _, _, c in published(SERVICES[name])] == [listens]
    assert healthcheck_port(SERVICES[name]) == listens


def test_the_webhook_receiver_health_check_is_its_readiness() -> None:
    [name] = services_of("webhooks")

    assert "/readyz" in " ".join(SERVICES[name]["healthcheck"]["test"])


def test_every_long_running_service_has_a_health_check() -> None:
    missing = [
        n for n, s in SERVICES.items() if s.get("restart") != "no" and "healthcheck" not in s
    ]

    assert not missing


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_exist_and_their_conditions_can_be_met(name: str) -> None:
    for target, spec in (SERVICES[name].get("depends_on") or {}).items():
        assert target in SERVICES, f"{name} depends on unknown service {target}"
        condition = spec["condition"]
        if condition == "service_healthy":
            assert "healthcheck" in SERVICES[target], f"{target} has no health check"
        elif condition == "service_completed_successfully":
            assert SERVICES[target].get("restart") == "no", f"{target} is not a one-shot"
        else:
            assert condition == "service_started"
        if not SERVICES[name].get("profiles"):
            assert not SERVICES[target].get("profiles"), f"{name} needs profile-only {target}"


def test_dependencies_have_no_cycle() -> None:
    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        for target in SERVICES[name].get("depends_on") or {}:
            visit(target, (*path, name))

    for name in SERVICES:
        visit(name, ())


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_secrets_come_from_env_files_never_from_the_compose_file(name: str) -> None:
    inline = SERVICES[name].get("environment") or {}

    assert not [k for k in inline if any(word in k for word in SECRET_WORDS)]


def test_no_env_file_can_reach_the_image() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text().splitlines()
    sources = [
        source
        for line in dockerfile
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
        if not source.startswith("--")
    ]

    assert sources and "." not in sources
    for source in sources:
        path = DEPLOY.parent / source
        files = [path] if path.is_file() else list(path.rglob("*"))
        assert not [f for f in files if f.suffix == ".env"], source
    assert "**/*.env" in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()


def test_docker_compose_itself_accepts_the_file() -> None:
    result = subprocess.run(
        [DEPLOY / "compose-config.sh"], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode == 3:
        pytest.skip(result.stderr.strip())

    assert result.returncode == 0, result.stdout + result.stderr
