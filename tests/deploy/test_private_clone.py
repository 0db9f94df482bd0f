"""``make test``'s set-up works from a clone in a private folder, and stops what it started.

New users clone into folders other users cannot enter: a home directory of
mode 700 (Debian's default since 12) or ``mktemp -d``. PostgreSQL refuses to
run as root, and the ``postgres`` user it then runs as cannot enter such a
folder. These tests copy this checkout (its tracked files, as a clone has them)
into a mode-700 folder whose path has a space, and run the suite's set-up
there (``deploy/with-stack.sh``, what ``make test`` runs) on ports of their
own, so they never touch the stack the rest of the suite uses.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run by the suite's set-up in the clone: all three services answer, then the
# command fails, as a failing test run would.
CHECK_SERVICES = """
import sys

import boto3
import psycopg
from confluent_kafka.admin import AdminClient

kafka, s3, pg = sys.argv[1:4]
AdminClient({"bootstrap.servers": kafka}).list_topics(timeout=10)
boto3.client(
    "s3",
    endpoint_url=s3,
    aws_access_key_id="mediaflow",
    aws_secret_access_key="mediaflow-local-secret",
    region_name="us-east-1",
).list_buckets()
psycopg.connect(pg, connect_timeout=5).close()
print("kafka, s3 and postgres answer")
sys.exit(3)
"""


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_ports(count: int) -> list[int]:
    """``count`` free loopback ports; the first one's successor is free too (Kafka's controller).

    Taken below Linux's ephemeral range (32768-60999): a port the kernel handed
    out for a moment can be given next to an outgoing connection of the rest of
    the suite (its Kafka clients open many) before the service binds it.
    """
    rng = random.Random()
    while True:
        ports = rng.sample(range(20_000, 28_000), count)
        candidates = [*ports, ports[0] + 1]
        if ports[0] + 1 not in ports and all(bindable(p) for p in candidates):
            return ports


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return not port_open(port)


def copy_checkout(dest: Path) -> None:
    """Copy the files a clone of this checkout has (tracked, plus new unignored ones)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the suite's stack settings (the clone's .stack is used)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
    env.update(extra)
    return env


@pytest.fixture
def private_clone(tmp_path: Path) -> Iterator[Path]:
    """A copy of this checkout in ``<tmp>/private home/my clone``, the home of mode 700."""
    home = tmp_path / "private home"
    clone = home / "my clone"
    clone.mkdir(parents=True)
    home.chmod(0o700)
    copy_checkout(clone)
    # The jars are the same in every clone: link the suite's cache when it has one,
    # rather than copying them out of ~/.m2 again.
    jars = Path(os.environ.get("MEDIAFLOW_STACK_DIR", REPO_ROOT / ".stack")) / "jars"
    if (jars / "kafka" / ".fetched").exists() and (jars / "s3proxy" / ".fetched").exists():
        (clone / ".stack").mkdir()
        (clone / ".stack" / "jars").symlink_to(jars)
    yield clone


def test_set_up_in_a_private_folder_starts_everything_and_stops_only_what_it_started(
    private_clone: Path,
) -> None:
    kafka_port, s3_port, pg_port = free_ports(3)
    env = clean_env(
        PYTHON=sys.executable,
        MEDIAFLOW_KAFKA_PORT=str(kafka_port),
        MEDIAFLOW_S3_PORT=str(s3_port),
        MEDIAFLOW_PG_PORT=str(pg_port),
        MEDIAFLOW_KAFKA_HEAP="-Xms128m -Xmx384m",
        MEDIAFLOW_STACK_TIMEOUT="150",
    )
    stack = private_clone / "deploy" / "stack.sh"
    postgres = private_clone / "deploy" / "postgres.sh"
    check = private_clone / "check_services.py"
    check.write_text(CHECK_SERVICES)
    try:
        # S3Proxy is already running, as a developer's own stack would be.
        subprocess.run([stack, "up", "s3"], env=env, check=True, capture_output=True, timeout=180)

        result = subprocess.run(
            [
                private_clone / "deploy" / "with-stack.sh",
                "--pg",
                "--",
                sys.executable,
                check,
                f"127.0.0.1:{kafka_port}",
                f"http://127.0.0.1:{s3_port}",
                f"postgresql://postgres@127.0.0.1:{pg_port}/mediaflow",
            ],
            cwd=private_clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )

        output = result.stdout + result.stderr
        assert result.returncode == 3, output
        assert "kafka, s3 and postgres answer" in result.stdout, output
        assert "stopping what this run started: kafka postgres" in result.stdout, output
        assert "left running (not started by this run): s3" in result.stdout, output
        assert not port_open(kafka_port), output
        assert not port_open(kafka_port + 1), output
        assert not port_open(pg_port), output
        assert port_open(s3_port), output
    finally:
        subprocess.run([stack, "clean"], env=env, capture_output=True, timeout=120)
        subprocess.run([postgres, "clean"], env=env, capture_output=True, timeout=120)


@pytest.mark.skipif(os.geteuid() != 0, reason="the test above already runs as an ordinary user")
def test_an_ordinary_user_runs_postgresql_as_themselves_in_their_private_folder() -> None:
    # tmp_path sits in root's own private folder: an ordinary user needs a home of theirs.
    home = Path(tempfile.mkdtemp(prefix="mediaflow-user-home-"))
    clone = home / "my clone"
    clone.mkdir()
    try:
        copy_checkout(clone)
        for path in [home, *home.rglob("*")]:
            shutil.chown(path, "nobody")
        home.chmod(0o700)
        (pg_port,) = free_ports(1)
        env = clean_env(MEDIAFLOW_PG_PORT=str(pg_port))
        as_user = ["runuser", "-u", "nobody", "--", str(clone / "deploy" / "postgres.sh")]

        started = subprocess.run(
            [*as_user, "up"], env=env, capture_output=True, text=True, timeout=120
        )

        try:
            assert started.returncode == 0, started.stdout + started.stderr
            assert port_open(pg_port)
            owner = subprocess.run(
                ["ps", "-o", "user=", "-p", open_pid(clone)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert owner == "nobody"
        finally:
            subprocess.run([*as_user, "down"], env=env, capture_output=True, timeout=120)
        assert not port_open(pg_port)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def open_pid(clone: Path) -> str:
    """The postmaster's pid, from the cluster's postmaster.pid."""
    return (clone / ".stack" / "pg" / "data" / "postmaster.pid").read_text().split()[0]
