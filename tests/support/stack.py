"""Where the test stack is: the one environment every test and child process starts from."""

from __future__ import annotations

import os

# Both the stack's knobs (deploy/stack.sh configures S3Proxy with them) and settings.
STACK_CREDENTIALS = ("MEDIAFLOW_S3_ACCESS_KEY", "MEDIAFLOW_S3_SECRET_KEY")


def stack_env() -> dict[str, str]:
    """This process's environment pointed at the local test stack, and nowhere else.

    Every ``MEDIAFLOW_*`` variable is dropped (a developer's shell, or
    ``deploy/local.env``, may point at another broker or bucket), then Kafka
    and S3 are set from the ports the stack scripts read
    (``MEDIAFLOW_KAFKA_PORT``, ``MEDIAFLOW_S3_PORT``), so a suite run against a
    second stack on other ports reaches that stack, in the tests and in every
    child process started from this environment.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
    kafka_port = os.environ.get("MEDIAFLOW_KAFKA_PORT", "9092")
    s3_port = os.environ.get("MEDIAFLOW_S3_PORT", "9000")
    env["MEDIAFLOW_KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{kafka_port}"
    env["MEDIAFLOW_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{s3_port}"
    env.update({k: os.environ[k] for k in STACK_CREDENTIALS if k in os.environ})
    return env
