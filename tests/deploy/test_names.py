"""One name per service, in every place that names it.

A service's name is its folder (``services/<name>``), its package (``neosl_<name>``) and
project (``neosl-<name>``), its Celery queue and its tasks' names (``neosl.<name>.<task>``
in ``neosl.jobs``), the Procfile line, compose service, Kubernetes Deployment and KEDA
ScaledObject of its worker, its image (``neosl/<name>``, from ``services/<name>/Dockerfile``),
its worker's metrics port in the dev stack, and the label values the alerts and the dashboard
select. Its other processes are named ``<name>-<role>`` and run
``python -m neosl_<name>.<role>``. The API has a folder, a package, an image and a process but
no queue; Flower is a process only.

The test reads each of those places and compares them, so that a rename done in one place
and not in another fails, listing every place that disagrees.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

from neosl import jobs
from neosl.config import Settings
from neosl_devstack.cli import DEV_METRICS_PORT, process_env
from tests.deploy.test_alerts import every_expr, label_values
from tests.deploy.test_compose import compose_command, in_container, procfile, services
from tests.deploy.test_compose import with_defaults as procfile_defaults
from tests.deploy.test_images import command as image_command
from tests.deploy.test_images import module, package_name
from tests.deploy.test_k8s import K8S, objects, only_container, pod_labels, render
from tests.e2e.test_dev_stack import METRICS_LINES

ROOT = Path(__file__).resolve().parents[2]

# The services with a queue, and the API, which has none.
SERVICES = ("executor", "scheduler", "pricefeed", "gasbank")
API = "api"
# The one Procfile process that runs no package of ours.
FLOWER = "flower"
# docker-compose.yml's services that are no Procfile process: the servers, the schema
# migration (one-shot, before the others start) and the dev chain's faucet (on demand).
COMPOSE_SERVERS = ("postgres", "redis", "neo")
COMPOSE_ONE_SHOT = ("migrate", "devnet")
# The Kubernetes Job that is no Procfile process: the schema migration.
K8S_ONE_SHOT = ("migrate",)
COMPONENT = "app.kubernetes.io/component"

Processes = dict[str, list[str]]


def owner(process: str) -> tuple[str, str | None] | None:
    """(service, role) of a process named ``<service>`` (role None, the API too) or
    ``<service>-<role>``; None for any other name."""
    if process in (API, *SERVICES):
        return process, None
    service, _, role = process.partition("-")
    if service in SERVICES and re.fullmatch(r"[a-z]+", role):
        return service, role
    return None


def image_of(process: str) -> str | None:
    """The image a process of ours runs: its service's."""
    found = owner(process)
    return None if found is None else f"neosl/{found[0]}"


def dockerfile(service: str) -> str:
    return f"services/{service}/Dockerfile"


# --- each place ---------------------------------------------------------------------------


def folder_problems() -> list[str]:
    """services/<name>/ with src/neosl_<name>/ and the project neosl-<name>, and no other."""
    problems = []
    folders = sorted(p.parent.name for p in ROOT.glob("services/*/pyproject.toml"))
    if folders != sorted((API, *SERVICES)):
        problems.append(f"services/ holds {folders}")
    for name in (API, *SERVICES):
        if not (ROOT / "services" / name / "src" / f"neosl_{name}").is_dir():
            problems.append(f"services/{name}/src/neosl_{name}/ is missing")
        elif package_name(name) != f"neosl-{name}":
            problems.append(f"services/{name}/pyproject.toml names {package_name(name)!r}")
    return problems


def queue_problems() -> list[str]:
    """neosl.jobs: <NAME>_QUEUE is "<name>", ALL_QUEUES is those four, and every job is named
    neosl.<its queue>.<task>, its queue a service's."""
    problems = []
    for name in SERVICES:
        constant = f"{name.upper()}_QUEUE"
        if getattr(jobs, constant, None) != name:
            problems.append(f"neosl.jobs.{constant} is {getattr(jobs, constant, None)!r}")
    if sorted(jobs.ALL_QUEUES) != sorted(SERVICES):
        problems.append(f"neosl.jobs.ALL_QUEUES is {jobs.ALL_QUEUES}")
    for job in jobs.ALL_JOBS:
        if job.queue not in SERVICES:
            problems.append(f"{job.name} goes to {job.queue!r}, no service's queue")
        if not re.fullmatch(rf"neosl\.{re.escape(job.queue)}\.[a-z_]+", job.name):
            problems.append(f"{job.name} is not named neosl.{job.queue}.<task>")
    return problems


def procfile_problems(processes: Processes) -> list[str]:
    """A line <name>: python -m neosl_<name> per service; every other line api, flower or
    <service>-<role>: python -m neosl_<service>.<role>, a module that exists."""
    problems = [f"Procfile: no {name} line" for name in SERVICES if name not in processes]
    for name, command in processes.items():
        found = owner(name)
        if name == FLOWER:
            continue
        if found is None:
            problems.append(f"Procfile: {name} is no service, <service>-<role>, api or flower")
            continue
        service, role = found
        if name == API:
            runs = module(in_container(command))
            if runs.split(".")[0] != f"neosl_{API}":
                problems.append(f"Procfile: api runs {runs}")
            continue
        expected = f"neosl_{service}" + (f".{role}" if role else "")
        if command[:3] != ["python", "-m", expected]:
            problems.append(f"Procfile: {name} runs {' '.join(command)}, not python -m {expected}")
        elif importlib.util.find_spec(expected) is None:
            problems.append(f"Procfile: {name} runs {expected}, which does not exist")
    return problems


def compose_problems(processes: Processes) -> list[str]:
    """docker-compose.yml: the Procfile's processes with the same commands, each from its
    service's image and Dockerfile, besides the servers and the one-shot services."""
    problems = []
    found = set(services())
    expected = {*processes, *COMPOSE_SERVERS, *COMPOSE_ONE_SHOT}
    if found != expected:
        problems.append(
            f"docker-compose.yml: services {sorted(found - expected)} are unknown, "
            f"{sorted(expected - found)} missing"
        )
    for name, command in processes.items():
        if name not in found or name == FLOWER:
            continue
        if compose_command(name) != in_container(command):
            problems.append(f"docker-compose.yml: {name} runs {compose_command(name)}")
        found_owner = owner(name)
        if found_owner is not None:
            service = found_owner[0]
            built = (services()[name].get("image"), services()[name].get("build", {}))
            if built != (f"neosl/{service}", {"context": ".", "dockerfile": dockerfile(service)}):
                problems.append(f"docker-compose.yml: {name} is {built}")
    return problems


def kubernetes_problems(processes: Processes) -> list[str]:
    """deploy/k8s/base: a Deployment per Procfile process of its name (labels, selector,
    container, its service's image), KEDA ScaledObjects exactly for the queues, each on its
    own, and no other object naming a process that does not exist."""
    problems = []
    docs = render(K8S / "base")
    deployments = objects(docs, "Deployment")
    if set(deployments) != set(processes):
        problems.append(f"k8s: Deployments {sorted(deployments)}, not the Procfile's")
    for name, deployment in deployments.items():
        container = only_container(deployment)
        named = {
            "label": deployment["metadata"]["labels"].get(COMPONENT),
            "selector": deployment["spec"]["selector"]["matchLabels"].get(COMPONENT),
            "pod label": pod_labels(deployment).get(COMPONENT),
            "container": container["name"],
        }
        problems += [f"k8s: Deployment {name}'s {k} is {v}" for k, v in named.items() if v != name]
        image = image_of(name)
        if image is not None and container["image"].split(":")[0] != image:
            problems.append(f"k8s: Deployment {name} runs {container['image']}, not {image}")
    scaled = objects(docs, "ScaledObject")
    if set(scaled) != set(jobs.ALL_QUEUES):
        problems.append(f"k8s: ScaledObjects {sorted(scaled)}, not the queues")
    for name, obj in scaled.items():
        target = obj["spec"]["scaleTargetRef"]["name"]
        lists = [trigger["metadata"].get("listName") for trigger in obj["spec"]["triggers"]]
        if (target, lists) != (name, [name]):
            problems.append(f"k8s: ScaledObject {name} scales {target} on {lists}")
    workloads = {*processes, *K8S_ONE_SHOT}
    for budget in objects(docs, "PodDisruptionBudget"):
        if budget not in workloads:
            problems.append(f"k8s: PodDisruptionBudget {budget} has no workload")
    for policy_name, policy in objects(docs, "NetworkPolicy").items():
        selector = policy["spec"]["podSelector"]
        selected = {selector.get("matchLabels", {}).get(COMPONENT)} - {None}
        for expression in selector.get("matchExpressions", []):
            if expression["key"] == COMPONENT:
                selected |= set(expression.get("values", []))
        if selected - workloads:
            problems.append(f"k8s: {policy_name} selects {sorted(selected - workloads)}")
    return problems


def dockerfile_problems(processes: Processes) -> list[str]:
    """services/<name>/Dockerfile installs neosl-<name>, is tagged neosl/<name> and its CMD
    is the Procfile's <name> with the Procfile's defaults."""
    problems = []
    for name in (API, *SERVICES):
        path = ROOT / dockerfile(name)
        if not path.is_file():
            problems.append(f"{dockerfile(name)} is missing")
            continue
        text = path.read_text()
        if f"--package neosl-{name}" not in text:
            problems.append(f"{dockerfile(name)} installs another package")
        if f"-t neosl/{name} ." not in text:
            problems.append(f"{dockerfile(name)} says to tag another image")
        if name in processes:
            expected = procfile_defaults(in_container(processes[name]))
            if image_command(name) != expected:
                problems.append(f"{dockerfile(name)} runs {image_command(name)}")
    return problems


def task_problems(settings: Settings) -> list[str]:
    """Each service's worker app consumes its own queue and runs exactly the jobs of that
    queue in neosl.jobs (Celery's own tasks aside)."""
    problems = []
    for name in SERVICES:
        app = importlib.import_module(f"neosl_{name}.worker").create_worker_app(settings)
        registered = {task for task in app.tasks if not task.startswith("celery.")}
        own = {job.name for job in jobs.ALL_JOBS if job.queue == name}
        if registered - own:
            problems.append(f"neosl_{name} runs {sorted(registered - own)}, not its queue's")
        if own - registered:
            problems.append(f"neosl_{name} does not run its queue's {sorted(own - registered)}")
        if app.conf.task_default_queue != name:
            problems.append(f"neosl_{name} consumes {app.conf.task_default_queue}")
    return problems


def dev_stack_problems(processes: Processes) -> list[str]:
    """`neosl-dev up` gives the API and each worker process the metrics port
    NSL_DEV_METRICS_PORT + its Procfile line; the end-to-end test's map of those lines names
    the same processes."""
    problems = []
    workers = {name for name in processes if name != FLOWER}
    if set(METRICS_LINES) != workers:
        problems.append(f"tests/e2e/test_dev_stack.py: METRICS_LINES has {sorted(METRICS_LINES)}")
    for line, name in enumerate(processes):
        port = process_env({}, ROOT / ".dev" / "metrics", line, name).get("NSL_METRICS_PORT")
        expected = DEV_METRICS_PORT + METRICS_LINES[name] if name in METRICS_LINES else None
        if port != (None if expected is None else str(expected)):
            problems.append(f"neosl-dev: {name} serves metrics on {port}, not {expected}")
    return problems


def label_problems(processes: Processes) -> list[str]:
    """The alerts and the dashboard select only queues, tasks and processes that exist."""
    workloads = {*processes, *K8S_ONE_SHOT}
    known = {
        "queue": set(jobs.ALL_QUEUES),
        "task": {job.name for job in jobs.ALL_JOBS},
        "container": workloads,
        "app_kubernetes_io_component": workloads,
    }
    exprs = every_expr()
    return [
        f"alerts or dashboard: {label} {sorted(label_values(exprs, label) - names)}"
        for label, names in known.items()
        if label_values(exprs, label) - names
    ]


# --- all of them --------------------------------------------------------------------------


def test_every_place_names_each_service_alike(settings: Settings) -> None:
    processes = procfile()
    problems = [
        *folder_problems(),
        *queue_problems(),
        *procfile_problems(processes),
        *compose_problems(processes),
        *kubernetes_problems(processes),
        *dockerfile_problems(processes),
        *task_problems(settings),
        *dev_stack_problems(processes),
        *label_problems(processes),
    ]
    assert problems == []
