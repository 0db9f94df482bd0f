"""What the deployment files (compose, Helm) must agree on with the code."""

from __future__ import annotations

from pathlib import Path

from mediaflow.cli._roles import ROLES

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"

PIPELINE_ROLES = tuple(ROLES)
"""Every long-running role of ``mediaflow run``: each needs a workload."""

TRANSACTIONAL_ROLES = ("detector", "downloader", "notifier")
"""The stages whose Kafka transactional id is derived from ``MEDIAFLOW_INSTANCE_NAME``
(``processors/<stage>/stage.py``): each copy
needs a name that survives its restarts and that no other copy has."""

TENANT_ROLES = ("webhooks", "downloader", "notifier")
"""The roles that load the tenant registry (webhook secrets, W-API tokens, callback secrets)."""


def read_env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of a compose ``env_file`` or systemd ``EnvironmentFile``."""
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values
