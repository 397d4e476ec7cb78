"""Flower outside the dev stack: basic auth, and never an empty login.

Flower lets in whoever sends the credentials of one of its logins (FLOWER_BASIC_AUTH), and
an empty login, from the variable left empty or a stray comma, is matched by empty
credentials. The compose file and the Kubernetes manifests start Flower with
``deploy/k8s/base/flowerconfig.py``, which refuses to start it then. Checked on the files
and with a real Flower on a real broker.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from neosl.config import Settings
from neosl_devstack.servers import free_port
from tests.deploy.test_compose import services
from tests.deploy.test_k8s import K8S, KUSTOMIZATIONS, objects, only_container, pod_spec, render
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
CHECK = K8S / "base" / "flowerconfig.py"
CONF = "--conf=/etc/flower/flowerconfig.py"
CELERY = Path(sys.executable).parent / "celery"
EMPTY = "Basic ="  # empty credentials: base64 of nothing


def test_compose_starts_flower_with_the_check() -> None:
    flower = services()["flower"]
    assert CONF in flower["command"]
    assert f"./{CHECK.relative_to(ROOT)}:/etc/flower/flowerconfig.py:ro" in flower["volumes"]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kubernetes_starts_flower_with_the_check(kustomization: str) -> None:
    docs = render(K8S / kustomization)
    deployment = objects(docs, "Deployment")["flower"]
    container = only_container(deployment)
    assert CONF in container["command"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/flower"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    config_map = objects(docs, "ConfigMap")[volume["configMap"]["name"]]
    assert config_map["data"] == {"flowerconfig.py": CHECK.read_text()}


@contextmanager
def flower(
    settings: Settings, login: str | None, *options: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A real Flower on the test broker; ``login`` is FLOWER_BASIC_AUTH (None: unset)."""
    port = free_port()
    env = {"PATH": str(CELERY.parent)}
    if login is not None:
        env["FLOWER_BASIC_AUTH"] = login
    proc = subprocess.Popen(
        [
            str(CELERY),
            "--broker",
            settings.redis_url,
            "flower",
            "--address=127.0.0.1",
            f"--port={port}",
            *options,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc, port
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def status(port: int, authorization: str | None = None, path: str = "/") -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def serving(proc: subprocess.Popen[str], port: int) -> bool:
    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    try:
        return status(port, path="/healthcheck") == 200
    except OSError:
        return False


@pytest.mark.parametrize("login", [None, "", "admin:pw,", ",admin:pw", "admin:", ":pw", "admin"])
def test_flower_does_not_start_with_an_empty_login(settings: Settings, login: str | None) -> None:
    with flower(settings, login, f"--conf={CHECK}") as (proc, _):
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "FLOWER_BASIC_AUTH must be user:password" in output


def test_an_empty_login_lets_anyone_in_and_the_check_lets_in_only_the_logins(
    settings: Settings,
) -> None:
    # What the check prevents: Flower itself takes an empty login and lets empty
    # credentials in, its API included.
    with flower(settings, "") as (proc, port):
        wait_until(lambda: serving(proc, port), "Flower to serve", timeout=60)
        assert status(port, EMPTY) == 200
        assert status(port, EMPTY, "/api/workers") == 200
    with flower(settings, "admin:pw,ops:pw2", f"--conf={CHECK}") as (proc, port):
        wait_until(lambda: serving(proc, port), "Flower to serve", timeout=60)
        assert status(port) == 401
        assert status(port, EMPTY) == 401
        assert status(port, EMPTY, "/api/workers") == 401
        for login in ("admin:pw", "ops:pw2"):
            basic = base64.b64encode(login.encode()).decode()
            assert status(port, f"Basic {basic}") == 200
