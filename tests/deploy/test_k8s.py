"""The Kubernetes manifests (deploy/k8s), checked without a cluster: the base and each overlay
are rendered with `kubectl kustomize`, every object is validated against the Kubernetes
schemas (and KEDA's objects against its CRDs' schemas, committed in deploy/k8s/schemas), and
the properties the deployment promises are checked on what would be applied: locked-down
pods, probes, metrics, configuration covering every variable the code reads, secrets only
referenced and only where needed, autoscaling, disruption budgets and network policies."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from neosl.jobs import ALL_QUEUES
from neosl_executor.sizing import executor_memory_mb
from tests.envvars import variables_read

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = ("base", "overlays/dev", "overlays/prod")
NAMESPACES = {"base": None, "overlays/dev": "neosl-dev", "overlays/prod": "neosl"}
# The Kubernetes version the objects are validated for (kubernetes-validate ships its schemas;
# strict: unknown fields are errors, as with `kubectl apply --validate=strict`).
KUBERNETES_VERSION = "1.33"
# KEDA's custom resources, validated against their CRDs' openAPIV3Schema.
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentications.v1alpha1.json",
}

WORKERS = ("executor", "scheduler", "scheduler-clock", "pricefeed", "pricefeed-clock", "gasbank")
DEPLOYMENTS = ("api", *WORKERS, "flower")
KEDA_SCALED = ("executor", "scheduler", "pricefeed", "gasbank")
# Processes that fetch URLs tenants choose (the pricefeed worker: tenants' own price sources).
TENANT_EGRESS = ("executor", "pricefeed")
# Processes that reach only the servers: (peer's pod label app.kubernetes.io/name or k8s-app,
# protocol, port).
SERVERS_ONLY_EGRESS = {
    "pricefeed-clock": {
        ("kube-dns", "UDP", 53),
        ("kube-dns", "TCP", 53),
        ("postgresql", "TCP", 5432),
        ("redis", "TCP", 6379),
    },
}
# Ranges tenant code must never reach: private, carrier-grade NAT, loopback, link-local
# (the cloud metadata service).
PRIVATE_RANGES = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
    )
)

# The only Secrets the manifests refer to, created outside them.
SECRETS = {"neosl-secrets", "neosl-hot-wallet", "neosl-flower", "neosl-keda-redis"}
_COMMON = {"DATABASE_URL", "REDIS_URL", "NSL_RESULT_BACKEND_URL"}
_API = _COMMON | {"NSL_SECRET_KEY", "NSL_SECRETS_KEY"}
# Each workload's variables from Secrets: only what it uses.
SECRETS_PER_WORKLOAD: dict[str, set[str]] = {
    "api": _API,
    # Runs `neosl db upgrade` from the API's image: the database is all it needs.
    "migrate": _COMMON,
    "executor": _COMMON | {"NSL_SECRETS_KEY"},
    "scheduler": _COMMON,
    "scheduler-clock": _COMMON,
    # Tenants' own price sources may send their secrets.
    "pricefeed": _COMMON | {"NSL_SECRETS_KEY", "NSL_REPORT_KEY"},
    "pricefeed-clock": _COMMON,
    "gasbank": _COMMON | {"NSL_HOT_WALLET_WIF", "NSL_RELAY_KEY"},
    "flower": {"REDIS_URL", "FLOWER_BASIC_AUTH"},
}
LOCKED_DOWN = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
WORKER_CONFIG = {
    "NSL_METRICS_PORT": "9100",
    # The pod's metrics port is reached from outside the container.
    "NSL_METRICS_HOST": "0.0.0.0",  # noqa: S104
    "NSL_LOG_FORMAT": "json",
    "PROMETHEUS_MULTIPROC_DIR": "/tmp/prometheus",
}

Manifest = dict[str, Any]


# --- rendering and validation -----------------------------------------------------------


def render(directory: Path) -> list[Manifest]:
    kubectl = Path(sys.executable).parent / "kubectl"
    done = subprocess.run(
        [str(kubectl), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    """Each kustomization rendered once for the whole module."""
    return {name: render(K8S / name) for name in KUSTOMIZATIONS}


def _closed(schema: Any) -> Any:
    """``schema`` with unknown fields refused wherever it lists an object's fields, as the API
    server's strict field validation does for a custom resource (the CRD's schema itself
    leaves them to pruning)."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


@cache
def crd_validator(filename: str) -> Any:
    schema = _closed(json.loads((K8S / "schemas" / filename).read_text()))
    return jsonschema.Draft202012Validator(schema)


def validate(obj: Manifest) -> None:
    """Raises jsonschema.ValidationError (or kubernetes_validate's subclass of it) when
    ``obj`` is not a valid object of its kind."""
    filename = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if filename is not None:
        crd_validator(filename).validate(obj)
        return
    version = kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert version == KUBERNETES_VERSION


# --- reading the rendered objects ---------------------------------------------------------


def objects(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def workloads(docs: list[Manifest]) -> dict[str, Manifest]:
    """Deployments and Jobs by name."""
    return {**objects(docs, "Deployment"), **objects(docs, "Job")}


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> list[Manifest]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def only_container(workload: Manifest) -> Manifest:
    found: list[Manifest] = pod_spec(workload)["containers"]
    (container,) = found
    return container


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def config(docs: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = objects(docs, "ConfigMap")["neosl-config"]["data"]
    return data


def secret_refs(container: Manifest) -> Iterator[tuple[str, Manifest]]:
    """(variable, secretKeyRef) of each variable a container takes from a Secret."""
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            yield var["name"], ref


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a label selector selects ``labels`` (an empty selector selects everything)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def policies_for(docs: list[Manifest], labels: Mapping[str, str], kind: str) -> list[Manifest]:
    """The NetworkPolicies of type ``kind`` (Ingress, Egress) that select pods with ``labels``."""
    return [
        policy
        for policy in objects(docs, "NetworkPolicy").values()
        if kind in policy["spec"].get("policyTypes", [])
        and matches(policy["spec"]["podSelector"], labels)
    ]


def minimum_replicas(docs: list[Manifest], deployment: str) -> int:
    """The fewest replicas a Deployment runs: its autoscaler's minimum, else its replicas."""
    for hpa in objects(docs, "HorizontalPodAutoscaler").values():
        if hpa["spec"]["scaleTargetRef"]["name"] == deployment:
            return int(hpa["spec"].get("minReplicas", 1))
    for scaled in objects(docs, "ScaledObject").values():
        if scaled["spec"]["scaleTargetRef"]["name"] == deployment:
            return int(scaled["spec"].get("minReplicaCount", 0))
    return int(objects(docs, "Deployment")[deployment]["spec"].get("replicas", 1))


# --- validity ----------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_object_is_valid_for_its_schema(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    docs = rendered[kustomization]
    assert docs
    for obj in docs:
        try:
            validate(obj)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(part) for part in exc.absolute_path)
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {where}: {exc.message}")


def _misspelled_container_field(docs: list[Manifest]) -> Manifest:
    deployment = copy.deepcopy(objects(docs, "Deployment")["api"])
    only_container(deployment)["imagePullPolcy"] = "Always"
    return deployment


def _misspelled_security_field(docs: list[Manifest]) -> Manifest:
    deployment = copy.deepcopy(objects(docs, "Deployment")["executor"])
    context = only_container(deployment)["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")
    return deployment


def _replicas_as_text(docs: list[Manifest]) -> Manifest:
    deployment = copy.deepcopy(objects(docs, "Deployment")["scheduler-clock"])
    deployment["spec"]["replicas"] = "two"
    return deployment


def _network_policy_typo(docs: list[Manifest]) -> Manifest:
    policy = copy.deepcopy(objects(docs, "NetworkPolicy")["neosl-tenant-egress"])
    block = policy["spec"]["egress"][-1]["to"][0]["ipBlock"]
    block["excepts"] = block.pop("except")
    return policy


def _scaled_object_hpa_field(docs: list[Manifest]) -> Manifest:
    scaled = copy.deepcopy(objects(docs, "ScaledObject")["executor"])
    scaled["spec"]["maxReplicas"] = scaled["spec"].pop("maxReplicaCount")
    return scaled


def _scaled_object_without_target(docs: list[Manifest]) -> Manifest:
    scaled = copy.deepcopy(objects(docs, "ScaledObject")["gasbank"])
    del scaled["spec"]["scaleTargetRef"]
    return scaled


def _trigger_metadata_not_text(docs: list[Manifest]) -> Manifest:
    scaled = copy.deepcopy(objects(docs, "ScaledObject")["scheduler"])
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 20
    return scaled


def _trigger_authentication_without_key(docs: list[Manifest]) -> Manifest:
    auth = copy.deepcopy(objects(docs, "TriggerAuthentication")["neosl-keda-redis"])
    del auth["spec"]["secretTargetRef"][0]["key"]
    return auth


@pytest.mark.parametrize(
    "breakage",
    [
        _misspelled_container_field,
        _misspelled_security_field,
        _replicas_as_text,
        _network_policy_typo,
        _scaled_object_hpa_field,
        _scaled_object_without_target,
        _trigger_metadata_not_text,
        _trigger_authentication_without_key,
    ],
)
def test_validation_rejects_a_broken_object(
    rendered: dict[str, list[Manifest]], breakage: Callable[[list[Manifest]], Manifest]
) -> None:
    broken = breakage(rendered["base"])
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


# --- pods ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_workload_is_there(rendered: dict[str, list[Manifest]], kustomization: str) -> None:
    docs = rendered[kustomization]
    assert set(objects(docs, "Deployment")) == set(DEPLOYMENTS)
    assert set(objects(docs, "Job")) == {"migrate"}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_pods_run_locked_down_with_requests_and_limits(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    for name, workload in workloads(rendered[kustomization]).items():
        spec = pod_spec(workload)
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in containers(workload):
            where = f"{name}/{container['name']}"
            context = container.get("securityContext", {})
            for field, wanted in LOCKED_DOWN.items():
                assert context.get(field) == wanted, f"{where}: securityContext.{field}"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"].get(bound, {})), (
                    f"{where}: resources.{bound}"
                )
            # The root filesystem is read-only: /tmp is a pod-local emptyDir.
            (tmp,) = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], where


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def memory_mb(quantity: str) -> float:
    """A Kubernetes memory quantity ("10Gi", "1400Mi", "512M", bytes) in MB (2**20 bytes)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", quantity)
    assert match, quantity
    number, unit = match.groups()
    return float(number) * _UNITS[unit] / 2**20 if unit else float(number) / 2**20


def test_memory_quantities_are_read_right() -> None:
    assert memory_mb("10Gi") == 10240
    assert memory_mb("1400Mi") == 1400
    assert memory_mb(str(2**20)) == 1


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_executors_memory_limit_adds_up(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    """The limit holds every sandbox process at its most and the worker at its most, so a
    function that takes too much memory fails alone: the kernel never picks the worker."""
    docs = rendered[kustomization]
    data = config(docs)
    (container,) = containers(workloads(docs)["executor"])
    limit = memory_mb(container["resources"]["limits"]["memory"])
    need = executor_memory_mb(
        int(data["NSL_EXECUTOR_CONCURRENCY"]), int(data["NSL_SANDBOX_PROCESSES"])
    )
    assert limit >= need, f"{kustomization}: the executor's limit {limit:.0f} MB < {need} MB"
    # Not far above it either: the limit is what a node must be able to give.
    assert limit <= need * 1.25, f"{kustomization}: {limit:.0f} MB for {need} MB"
    assert int(data["NSL_SANDBOX_WARM"]) <= int(data["NSL_SANDBOX_PROCESSES"])


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_deployment_has_probes(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    for name, deployment in objects(rendered[kustomization], "Deployment").items():
        for container in containers(deployment):
            for probe in ("livenessProbe", "readinessProbe"):
                assert container.get(probe), f"{name}/{container['name']}: {probe}"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_api_probes_and_metrics(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    api = objects(rendered[kustomization], "Deployment")["api"]
    container = only_container(api)
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    assert "0.0.0.0:8000" in container["command"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # Metrics on their own port, served by the gunicorn master (neosl_api.serving).
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    assert container["command"][1:3] == ["-c", "python:neosl_api.serving"]
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9100"
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_workers_serve_metrics_and_health_on_port_9100(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    docs = rendered[kustomization]
    settings = config(docs)
    for key, value in WORKER_CONFIG.items():
        assert settings[key] == value, key
    for name in WORKERS:
        deployment = objects(docs, "Deployment")[name]
        container = only_container(deployment)
        assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container[
            "ports"
        ], name
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == "9100", name


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_our_containers_read_the_config_map(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    for name, workload in workloads(rendered[kustomization]).items():
        for container in containers(workload):
            if container["image"].startswith("neosl/"):
                assert {"configMapRef": {"name": "neosl-config"}} in container.get("envFrom", []), (
                    name
                )


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_commands_are_the_procfile_processes(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    """Each Procfile process is the Deployment of its name, running the same command (the
    Procfile's ``${NAME:-default}`` is Kubernetes' ``$(NAME)`` from the ConfigMap), from the
    image of the service whose package it runs."""
    docs = rendered[kustomization]
    procfile = dict(
        line.split(": ", 1)
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert set(procfile) == set(DEPLOYMENTS)
    for name, line in procfile.items():
        container = only_container(objects(docs, "Deployment")[name])
        command = container["command"]
        if name == "flower":
            assert command[0] == "celery"
            assert "flower" in command
            continue
        if name == "api":
            module = re.search(r"'([\w.]+):\w+\(\)'", line)
            assert module is not None
            assert command[0] == "gunicorn"
            assert command[-1] == f"{module.group(1)}:create_app()"
            package = module.group(1).split(".")[0]
        else:
            expected = re.sub(r"\$\{(\w+):-[^}]*\}", r"$(\1)", line).split()
            assert command == expected, name
            package = expected[2].split(".")[0]
        (source,) = ROOT.glob(f"services/*/src/{package}")
        service = source.parent.parent.name
        assert container["image"].split(":")[0] == f"neosl/{service}", name
        for variable in re.findall(r"\$\((\w+)\)", " ".join(command)):
            assert variable in config(docs), f"{name}: $({variable})"
    migrate = only_container(objects(docs, "Job")["migrate"])
    assert migrate["image"].split(":")[0] == "neosl/api"
    assert migrate["command"] == ["neosl", "db", "upgrade"]


# --- configuration and secrets -------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_no_secret_is_committed(rendered: dict[str, list[Manifest]], kustomization: str) -> None:
    docs = rendered[kustomization]
    assert not objects(docs, "Secret"), "Secrets are created outside the manifests"
    from_secrets = {name for needs in SECRETS_PER_WORKLOAD.values() for name in needs}
    settings = config(docs)
    assert not from_secrets & set(settings), "a secret's variable in the ConfigMap"
    for key, value in settings.items():
        if re.search(r"(WIF|PASSWORD)$", key):
            assert value == "", f"{key} holds a value in the ConfigMap"
    for name, workload in workloads(docs).items():
        for container in containers(workload):
            assert not any("secretRef" in source for source in container.get("envFrom", [])), (
                f"{name}: a whole Secret as environment"
            )
            for _, ref in secret_refs(container):
                assert ref["name"] in SECRETS, f"{name}: unknown Secret {ref['name']}"
    for auth in objects(docs, "TriggerAuthentication").values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] in SECRETS


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_variable_the_code_reads_is_configured(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    """Every variable the code reads is a key of the ConfigMap or taken from a Secret by
    key. (The per-source NSL_PRICE_SOURCE_<NAME>_URL are built from the source's name, not
    literals the scan finds; optional, they are a commented hint in the ConfigMap.)"""
    docs = rendered[kustomization]
    from_secrets = set()
    for workload in workloads(docs).values():
        for container in containers(workload):
            for variable, ref in secret_refs(container):
                # A Secret's keys are the variables' names.
                assert ref["key"] == variable
                from_secrets.add(variable)
    missing = variables_read() - set(config(docs)) - from_secrets
    assert not missing, f"not in the ConfigMap nor from a Secret: {sorted(missing)}"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_each_workload_gets_only_the_secrets_it_needs(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    found = {
        name: {variable for c in containers(w) for variable, _ in secret_refs(c)}
        for name, w in workloads(rendered[kustomization]).items()
    }
    assert found == SECRETS_PER_WORKLOAD
    hot_wallet = {
        name
        for name, w in workloads(rendered[kustomization]).items()
        for c in containers(w)
        for _, ref in secret_refs(c)
        if ref["name"] == "neosl-hot-wallet"
    }
    assert hot_wallet == {"gasbank"}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_flower_asks_for_basic_auth_from_a_secret(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    container = only_container(objects(rendered[kustomization], "Deployment")["flower"])
    (auth,) = [var for var in container["env"] if var["name"] == "FLOWER_BASIC_AUTH"]
    ref = auth["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "neosl-flower"
    assert not ref.get("optional", False)
    # The broker from the environment: a password on the command line shows in `ps`.
    assert not any("REDIS_URL" in arg for arg in container["command"])
    (broker,) = [var for var in container["env"] if var["name"] == "CELERY_BROKER_URL"]
    assert broker["value"] == "$(REDIS_URL)"
    assert not any(var["name"] == "FLOWER_UNAUTHENTICATED_API" for var in container["env"])


# --- scaling and disruption ------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_keda_scales_the_queue_workers_on_their_queues(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    docs = rendered[kustomization]
    deployments = objects(docs, "Deployment")
    auths = objects(docs, "TriggerAuthentication")
    targets = set()
    for scaled in objects(docs, "ScaledObject").values():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        assert scaled["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "redis"
        # Each worker consumes the queue of its own name.
        assert trigger["metadata"]["listName"] == target
        assert trigger["authenticationRef"]["name"] in auths
        targets.add(target)
    assert targets == set(KEDA_SCALED) == set(ALL_QUEUES)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_api_scales_on_cpu_and_nothing_has_two_autoscalers(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    docs = rendered[kustomization]
    hpas = objects(docs, "HorizontalPodAutoscaler")
    assert {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas.values()} == {"api"}
    (api,) = hpas.values()
    assert api["apiVersion"] == "autoscaling/v2"
    assert [metric["resource"]["name"] for metric in api["spec"]["metrics"]] == ["cpu"]
    # An autoscaled Deployment leaves its replicas to the autoscaler, so an apply never
    # resets them.
    for name in ("api", *KEDA_SCALED):
        assert "replicas" not in objects(docs, "Deployment")[name]["spec"], name


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_scheduler_runs_one_beat_at_rest(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    docs = rendered[kustomization]
    scheduler = objects(docs, "Deployment")["scheduler"]
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    assert "--beat" in only_container(scheduler)["command"]
    assert objects(docs, "ScaledObject")["scheduler"]["spec"]["minReplicaCount"] == 1


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_deployment_has_a_disruption_budget_that_lets_a_drain_proceed(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    docs = rendered[kustomization]
    budgets = objects(docs, "PodDisruptionBudget").values()
    for name, deployment in objects(docs, "Deployment").items():
        (budget,) = [b for b in budgets if matches(b["spec"]["selector"], pod_labels(deployment))]
        minimum = budget["spec"].get("minAvailable")
        if minimum is None:
            assert budget["spec"]["maxUnavailable"] == 1, name
        else:
            assert isinstance(minimum, int), name
            assert minimum < minimum_replicas(docs, name), name


# --- network policies ----------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_ingress_is_denied_but_for_the_api_flower_and_metrics(
    rendered: dict[str, list[Manifest]], kustomization: str
) -> None:
    docs = rendered[kustomization]
    allowed = set()
    for name, workload in workloads(docs).items():
        policies = policies_for(docs, pod_labels(workload), "Ingress")
        assert any(not policy["spec"].get("ingress") for policy in policies), (
            f"{name}: no default-deny ingress policy"
        )
        for policy in policies:
            for rule in policy["spec"].get("ingress", []):
                sources = rule.get("from")
                for port in rule["ports"]:
                    allowed.add((name, port["port"], "anywhere" if not sources else "limited"))
                if sources:
                    # Metrics only from Prometheus in the monitoring namespace.
                    for source in sources:
                        assert source["namespaceSelector"]["matchLabels"] == {
                            "kubernetes.io/metadata.name": "monitoring"
                        }
                        assert source["podSelector"]["matchLabels"] == {
                            "app.kubernetes.io/name": "prometheus"
                        }
    assert allowed == {
        ("api", 8000, "anywhere"),
        # The API's metrics too only from Prometheus: never on its public port.
        ("api", 9100, "limited"),
        ("flower", 5555, "anywhere"),
        *((worker, 9100, "limited") for worker in WORKERS),
    }


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("component", TENANT_EGRESS)
def test_tenant_code_cannot_reach_private_addresses(
    rendered: dict[str, list[Manifest]], kustomization: str, component: str
) -> None:
    docs = rendered[kustomization]
    labels = pod_labels(objects(docs, "Deployment")[component])
    policies = policies_for(docs, labels, "Egress")
    assert policies, f"{component} has no egress policy"
    internet = False
    dns = False
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            # A rule without destinations would allow everything.
            assert rule.get("to"), f"{policy['metadata']['name']}: egress to anywhere"
            ports = {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports", [])}
            dns = dns or {("UDP", 53), ("TCP", 53)} <= ports
            for peer in rule["to"]:
                block = peer.get("ipBlock")
                if block is None:
                    continue
                network = ipaddress.ip_network(block["cidr"])
                excepted = [ipaddress.ip_network(cidr) for cidr in block.get("except", [])]
                internet = internet or network == ipaddress.ip_network("0.0.0.0/0")
                for private in PRIVATE_RANGES:
                    if network.version == private.version and network.overlaps(private):
                        assert any(
                            private.subnet_of(e)  # type: ignore[arg-type]
                            for e in excepted
                            if e.version == private.version
                        ), f"{block['cidr']} lets {component} reach {private}"
    assert internet, f"{component} cannot reach the internet"
    assert dns, f"{component} cannot resolve names"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("component", sorted(SERVERS_ONLY_EGRESS))
def test_the_loops_reach_only_the_servers(
    rendered: dict[str, list[Manifest]], kustomization: str, component: str
) -> None:
    """The pricefeed-clock only queues rounds: DNS, PostgreSQL and Redis are all it may reach
    (the pricefeed worker asks the sources)."""
    docs = rendered[kustomization]
    labels = pod_labels(objects(docs, "Deployment")[component])
    policies = policies_for(docs, labels, "Egress")
    assert policies, f"{component} has no egress policy"
    allowed = set()
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), f"{policy['metadata']['name']}: egress to anywhere"
            assert rule.get("ports"), f"{policy['metadata']['name']}: egress on any port"
            for peer in rule["to"]:
                assert "ipBlock" not in peer, f"{component} may reach {peer['ipBlock']}"
                pods = peer["podSelector"]["matchLabels"]
                name = pods.get("app.kubernetes.io/name") or pods.get("k8s-app")
                for port in rule["ports"]:
                    allowed.add((name, port.get("protocol", "TCP"), port["port"]))
    assert allowed == SERVERS_ONLY_EGRESS[component]


# --- overlays -------------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_namespace_and_image_tags(rendered: dict[str, list[Manifest]], kustomization: str) -> None:
    docs = rendered[kustomization]
    namespace = NAMESPACES[kustomization]
    for obj in docs:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, obj["metadata"]["name"]
    if namespace is not None:
        labels = objects(docs, "Namespace")[namespace]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, workload in workloads(docs).items():
        for container in containers(workload):
            image = container["image"]
            # Images are named without a registry host; the overlay picks the tag.
            assert image.count("/") == 1, image
            repository, _, tag = image.partition(":")
            if kustomization == "base" or not repository.startswith("neosl/"):
                continue
            if kustomization == "overlays/dev":
                assert tag == "dev", name
            else:
                assert tag, f"{name}: {image} has no tag"
                assert tag not in ("dev", "latest"), f"{name}: {image} is not pinned"
