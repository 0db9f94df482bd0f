"""The Helm chart renders what a production cluster needs, checked on ``helm template``'s output.

Helm is built from source once (``deploy/helm.sh``, about 3-4 minutes), which
``make test`` does not wait for: the rendering tests run when the binary is
already cached (after ``make deploy-check``) and skip, with that reason,
otherwise. The chart's own files are checked either way.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mediaflow.cli import build_parser
from mediaflow.config import Settings
from mediaflow.tenants import TenantRegistry
from tests.support.deploy import (
    DEPLOY,
    PIPELINE_ROLES,
    TENANT_ROLES,
    TRANSACTIONAL_ROLES,
    read_env_file,
)

CHART = DEPLOY / "helm" / "mediaflow"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "DB_URL", "ACCESS_KEY")
# The S3 access key id is an identifier, not a secret (the demo's is "mediaflow").
SECRET_VALUE_WORDS = ("SECRET", "TOKEN", "PASSWORD", "DB_URL")
# Exercises the optional parts: a Kafka credentials Secret, a ServiceMonitor,
# several receiver processes per pod.
OPTIONAL_PARTS = [
    "--set",
    "kafka.existingSecret=kafka-sasl",
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "roles.webhooks.workers=3",
]


def helm_binary() -> str:
    found = subprocess.run(
        [DEPLOY / "helm.sh", "--cached"], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        pytest.skip(
            "Helm is not built on this machine; `make deploy-check` builds it once "
            "(about 3-4 minutes, cached under .stack/tools/) and runs these tests"
        )
    return found.stdout.strip()


@cache
def _render(*args: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [helm_binary(), "template", "mf", str(CHART), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.fixture(params=["defaults", "optional parts"])
def manifests(request: pytest.FixtureRequest) -> tuple[dict[str, Any], ...]:
    return _render() if request.param == "defaults" else _render(*OPTIONAL_PARTS)


def of_kind(manifests: tuple[dict[str, Any], ...], *kinds: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] in kinds]


def role(manifest: dict[str, Any]) -> str:
    return manifest["metadata"]["labels"]["app.kubernetes.io/component"]


def workload(manifests: tuple[dict[str, Any], ...], name: str) -> dict[str, Any]:
    [found] = [m for m in of_kind(manifests, *WORKLOAD_KINDS) if role(m) == name]
    return found


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["template"]["spec"]


def containers(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(manifest)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def settings_of(container: dict[str, Any]) -> Settings:
    """The container's settings, with a placeholder for what comes from a Secret or the pod."""
    env = {
        name: entry.get("value", "from-a-secret-or-the-pod")
        for name, entry in env_of(container).items()
    }
    return Settings.from_env(env)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_chart_topics_are_the_projects_with_production_replication() -> None:
    chart = tomllib.loads((CHART / "files" / "topics.toml").read_text())
    local = tomllib.loads((DEPLOY / "topics.toml").read_text())

    assert chart["topic"] == local["topic"]
    assert chart["defaults"] == {"replication_factor": 3, "min_insync_replicas": 2}
    # `make cluster-up`'s profile is the production replication too.
    assert local["profile"]["cluster"] == chart["defaults"]


def test_values_name_secrets_but_hold_none() -> None:
    values = (CHART / "values.yaml").read_text()
    demo_secrets = {
        value
        for path in [DEPLOY / "local.env", *(DEPLOY / "compose").glob("*.env")]
        for name, value in read_env_file(path).items()
        if any(word in name for word in SECRET_VALUE_WORDS)
    }

    assert demo_secrets
    assert not [s for s in demo_secrets if s in values]
    assert "existingSecret" in values


@pytest.mark.parametrize("name", PIPELINE_ROLES)
def test_every_role_has_one_workload_running_it(manifests, name: str) -> None:
    [container] = pod_spec(workload(manifests, name))["containers"]

    args = build_parser().parse_args(container["args"])

    assert args.role == name
    assert settings_of(container)  # the environment parses


def test_the_receiver_runs_the_configured_number_of_processes() -> None:
    [container] = pod_spec(workload(_render(*OPTIONAL_PARTS), "webhooks"))["containers"]

    assert build_parser().parse_args(container["args"]).workers == 3


@pytest.mark.parametrize("name", TRANSACTIONAL_ROLES)
def test_transactional_stages_get_a_stable_instance_name(manifests, name: str) -> None:
    found = workload(manifests, name)
    [container] = pod_spec(found)["containers"]
    instance = env_of(container)["MEDIAFLOW_INSTANCE_NAME"]

    # A StatefulSet's pod name (<set>-<ordinal>) survives restarts and rescheduling,
    # and no two live pods share it.
    assert found["kind"] == "StatefulSet"
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    services = {s["metadata"]["name"] for s in of_kind(manifests, "Service")}
    assert found["spec"]["serviceName"] in services


def test_every_long_running_container_has_probes_on_a_port_it_declares(manifests) -> None:
    for found in of_kind(manifests, *WORKLOAD_KINDS):
        for container in containers(found):
            ports = {p["name"] for p in container["ports"]}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["port"] in ports, (role(found), probe)


def test_the_receiver_is_ready_only_when_kafka_is(manifests) -> None:
    [container] = pod_spec(workload(manifests, "webhooks"))["containers"]

    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_container_has_requests_and_limits(manifests) -> None:
    for found in of_kind(manifests, *WORKLOAD_KINDS, "Job"):
        for container in containers(found):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (role(found), kind)


def test_no_secret_value_is_rendered(manifests) -> None:
    assert not of_kind(manifests, "Secret")
    for found in of_kind(manifests, *WORKLOAD_KINDS, "Job"):
        for container in containers(found):
            for name, entry in env_of(container).items():
                if any(word in name for word in SECRET_WORDS):
                    assert "secretKeyRef" in entry["valueFrom"], name


@pytest.mark.parametrize("name", PIPELINE_ROLES)
def test_each_role_gets_only_the_secrets_it_needs(manifests, name: str) -> None:
    found = workload(manifests, name)
    [container] = pod_spec(found)["containers"]
    env = env_of(container)
    from_secrets = {e["secretRef"]["name"] for e in container.get("envFrom", [])}
    mounted = {v.get("secret", {}).get("secretName") for v in pod_spec(found)["volumes"]}

    # The notifier presigns the link each notification carries.
    assert ("MEDIAFLOW_S3_SECRET_KEY" in env) == (name in ("downloader", "notifier", "api"))
    assert ("MEDIAFLOW_PROJECTION_DB_URL" in env) == (name in ("projection", "api"))
    assert ("MEDIAFLOW_API_TOKEN" in env) == (name == "api")
    tenants = "mediaflow-tenant-secrets"
    assert (tenants in from_secrets) == (tenants in mounted) == (name in TENANT_ROLES)


def test_the_webhook_service_selects_the_webhook_pods_only(manifests) -> None:
    [service] = [s for s in of_kind(manifests, "Service") if role(s) == "webhooks"]
    selector = service["spec"]["selector"]
    receiver = workload(manifests, "webhooks")
    [container] = pod_spec(receiver)["containers"]

    assert selects(selector, receiver["spec"]["template"]["metadata"]["labels"])
    for other in of_kind(manifests, *WORKLOAD_KINDS):
        if other is not receiver:
            assert not selects(selector, other["spec"]["template"]["metadata"]["labels"])
    [port] = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert settings_of(container).webhook_host == "0.0.0.0"


@pytest.mark.parametrize("name", PIPELINE_ROLES)
def test_every_role_has_a_disruption_budget_for_its_pods(manifests, name: str) -> None:
    budgets = [b for b in of_kind(manifests, "PodDisruptionBudget") if role(b) == name]
    pods = workload(manifests, name)["spec"]["template"]["metadata"]["labels"]

    assert len(budgets) == 1
    assert selects(budgets[0]["spec"]["selector"]["matchLabels"], pods)


def test_prometheus_scrapes_the_port_that_serves_metrics(manifests) -> None:
    scraped = []
    for found in of_kind(manifests, *WORKLOAD_KINDS):
        annotations = found["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") != "true":
            continue
        [container] = pod_spec(found)["containers"]
        settings = settings_of(container)
        serves = settings.webhook_port if role(found) == "webhooks" else settings.metrics_port
        assert int(annotations["prometheus.io/port"]) == serves
        scraped.append(role(found))

    assert set(scraped) == set(PIPELINE_ROLES) - {"api"}  # the API has no /metrics


def test_service_monitors_point_at_ports_their_services_have() -> None:
    manifests = _render(*OPTIONAL_PARTS)
    services = {role(s): s for s in of_kind(manifests, "Service")}

    monitors = of_kind(manifests, "ServiceMonitor")

    assert {role(m) for m in monitors} == set(PIPELINE_ROLES) - {"api"}
    for monitor in monitors:
        service = services[role(monitor)]
        assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports


def test_kafka_credentials_reach_every_kafka_client_and_nothing_else() -> None:
    manifests = _render(*OPTIONAL_PARTS)

    for found in of_kind(manifests, *WORKLOAD_KINDS, "Job"):
        for container in containers(found):
            refs = {e["secretRef"]["name"] for e in container.get("envFrom", [])}
            uses_kafka = role(found) != "api" and container["name"] != "storage"
            assert ("kafka-sasl" in refs) == uses_kafka, (role(found), container["name"])


def test_each_set_up_step_gets_only_its_own_credentials(manifests) -> None:
    [job] = of_kind(manifests, "Job")
    env = {c["name"]: env_of(c) for c in containers(job)}

    assert "MEDIAFLOW_S3_SECRET_KEY" not in env["topics"]
    assert "MEDIAFLOW_S3_SECRET_KEY" in env["storage"]


def test_the_set_up_job_applies_topics_then_creates_the_bucket_before_install_and_upgrade(
    manifests,
) -> None:
    [job] = of_kind(manifests, "Job")
    [config] = [c for c in of_kind(manifests, "ConfigMap") if role(c) == "setup"]
    steps = [c["args"] for c in containers(job)]

    assert steps == [["topics", "apply"], ["storage", "init"]]
    for hook in (job, config):
        assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    weight = "helm.sh/hook-weight"
    assert int(config["metadata"]["annotations"][weight]) < int(
        job["metadata"]["annotations"][weight]
    )
    topics = tomllib.loads(config["data"]["topics.toml"])
    assert topics["defaults"]["replication_factor"] == 3


def test_the_registry_and_topics_are_a_config_map_every_role_mounts(
    manifests, tmp_path: Path
) -> None:
    [config] = [c for c in of_kind(manifests, "ConfigMap") if role(c) == "config"]
    registry = tomllib.loads(config["data"]["tenants.toml"])
    named = {
        str(entry[key])
        for entry in registry["tenants"].values()
        for key in entry
        if key.endswith("_env")
    }

    registry_file = tmp_path / "tenants.toml"
    registry_file.write_text(config["data"]["tenants.toml"])
    assert TenantRegistry.load(registry_file, dict.fromkeys(named, "x")).tenants
    assert tomllib.loads(config["data"]["topics.toml"])["topic"]
    for found in of_kind(manifests, *WORKLOAD_KINDS):
        [container] = pod_spec(found)["containers"]
        settings = settings_of(container)
        [volume] = [v for v in pod_spec(found)["volumes"] if v["name"] == "config"]
        [mount] = [m for m in container["volumeMounts"] if m["name"] == "config"]
        assert volume["configMap"]["name"] == config["metadata"]["name"]
        assert settings.tenants_file.parent == Path(mount["mountPath"])
        assert settings.kafka.topics_file.parent == Path(mount["mountPath"])


def test_private_addresses_are_refused_by_default(manifests) -> None:
    [container] = pod_spec(workload(manifests, "downloader"))["containers"]

    assert settings_of(container).downloader.allow_private_addresses is False
