"""docker-compose.yml and .env.example, checked without a Docker engine.

The file is valid against the compose specification (and a broken one is not); every
variable the code reads reaches the services, with the code's own defaults; each service is
built from a Dockerfile that exists and runs what the Procfile runs; the schema is applied
before anything else starts; secrets go only where they are needed and none is committed.
The dev chain's image (devstack/Dockerfile) passes hadolint, installs the devstack from the
lock, and runs `neosl-dev chain` where the compose file expects it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from neo3.wallet.account import Account

from neosl.config import Settings, load_settings, new_key
from neosl.pricefeeds import catalog
from neosl_devstack.cli import build_parser
from neosl_devstack.neo import committee_wallet_file
from tests.deploy.test_images import module, run_build_stage_sync
from tests.envvars import variables_read

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DEVSTACK_DOCKERFILE = ROOT / "devstack" / "Dockerfile"
TOOLS = Path(sys.executable).parent

# What only one service may hold, and what must never have a value in the repository.
GASBANK_ONLY = {"NSL_HOT_WALLET_WIF", "NSL_RELAY_KEY"}
SECRETS = {
    "POSTGRES_PASSWORD",
    "NSL_SECRET_KEY",
    "NSL_SECRETS_KEY",
    "NSL_HOT_WALLET_WIF",
    "NSL_RELAY_KEY",
    "FLOWER_BASIC_AUTH",
}
# Set by the compose file itself rather than passed through from .env: the servers it
# runs, and how processes behave in containers.
FIXED = {
    "DATABASE_URL",
    "REDIS_URL",
    "NSL_LOG_FORMAT",
    "PROMETHEUS_MULTIPROC_DIR",
    "NSL_METRICS_HOST",
    "NSL_METRICS_PORT",
    "NSL_DEVNET_WALLET",
    # The dev stack's starter balance: off in every deployment.
    "NSL_DEV_STARTER_GAS",
    "NSL_DEV_FAUCET_ADDRESS",
}
# The API image's own copy of db/ rather than the code's default (the repository's).
IMAGE_DEFAULTS = {"NSL_DB_DIR"}
# The worker and loop processes: each serves /metrics and /healthz on NSL_METRICS_PORT.
WORKERS = ("executor", "scheduler", "scheduler-clock", "pricefeed", "pricefeed-clock", "gasbank")
# What a container's servers listen on.
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104
PASSTHROUGH = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):-(?P<default>[^}]*)\}$")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def environment(service: str) -> dict[str, Any]:
    env: dict[str, Any] = services()[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: environment must be a mapping"
    return env


def ours() -> set[str]:
    """The services running this repository's processes (not the servers, not the chain)."""
    return {
        name
        for name, service in services().items()
        if str(service["image"]).startswith("neosl/") and name != "neo"
    }


def registry_host(image: str) -> str | None:
    """The registry an image name names, if any (``host.example:5000/x`` → the host)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLS / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def procfile() -> dict[str, list[str]]:
    """The Procfile's processes, in its order: name → command (split as a shell would)."""
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = shlex.split(command)
    return processes


def in_container(command: list[str]) -> list[str]:
    """A Procfile command as a container runs it: from the program on (no shell words before
    it), gunicorn bound to every interface on the image's port 8000."""
    start = command.index("python") if "python" in command else command.index("gunicorn")
    found = command[start:]
    if found[0] == "gunicorn":
        bind = found.index("--bind") + 1
        found[bind] = f"{EVERY_INTERFACE}:8000"
    return found


def with_defaults(command: list[str]) -> list[str]:
    """``command`` with each ``${NAME:-default}`` replaced by its default."""
    return [PASSTHROUGH.sub(lambda m: m.group("default"), str(arg)) for arg in command]


def compose_command(service: str) -> list[str]:
    return [str(arg) for arg in services()[service]["command"]]


def env_example() -> dict[str, str]:
    """Every ``NAME=value`` of .env.example, commented-out examples included."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if m := re.fullmatch(r"(?:# )?([A-Z][A-Z0-9_]*)=(.*)", line.strip()):
            found[m.group(1)] = m.group(2)
    return found


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def dockerfile_final_stage(path: Path) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


# -- the specification -------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification() -> None:
    done = validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_compose_file_with_an_unknown_key_is_rejected(tmp_path: Path) -> None:
    text = COMPOSE.read_text()
    assert "\n  api:\n" in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("\n  api:\n", "\n  api:\n    not_a_compose_key: true\n", 1))
    done = validate(broken)
    assert done.returncode != 0
    assert "not_a_compose_key" in done.stdout + done.stderr


# -- configuration -----------------------------------------------------------------------


def test_every_variable_the_code_reads_reaches_the_services() -> None:
    named = {key for service in services() for key in environment(service)}
    read = variables_read()
    assert len(read) > 50
    assert read - named == set()
    # The one name the code makes at run time.
    for name in catalog.NAMES:
        assert f"NSL_PRICE_SOURCE_{name.upper()}_URL" in named


def test_every_setting_can_be_set_from_the_env_file() -> None:
    """Each value is ``${NAME:-default}`` of its own name, but for the few the file fixes."""
    for service in sorted(ours()):
        for key, value in environment(service).items():
            if key in FIXED or value is None:  # None: passed through as it is, or unset
                continue
            m = PASSTHROUGH.match(str(value))
            assert m is not None, f"{service}: {key}: {value!r} cannot be set from .env"
            if key != "NEO_RPC_URL":
                assert m.group("name") == key, f"{service}: {key} reads {m.group('name')}"


BASE = {
    "DATABASE_URL": "postgresql://neosl@postgres:5432/neosl",
    "REDIS_URL": "redis://redis:6379/0",
    "NEO_RPC_URL": "http://neo:50332",
    "NSL_SECRET_KEY": new_key(),
    "NSL_SECRETS_KEY": new_key(),
}


def defaults(service: str) -> dict[str, str]:
    """The service's passthroughs as they are with an empty .env: their defaults."""
    found = {}
    for key, value in environment(service).items():
        m = PASSTHROUGH.match(str(value))
        if key not in FIXED | IMAGE_DEFAULTS and key not in BASE and m is not None:
            found[key] = m.group("default")
    return found


@pytest.mark.parametrize("service", ["migrate", "api", *WORKERS, "devnet"])
def test_the_compose_defaults_are_the_codes_defaults(service: str) -> None:
    """With an empty .env the services run with the settings the code chooses itself."""
    code: Settings = load_settings(BASE)
    for key, default in defaults(service).items():
        assert load_settings({**BASE, key: default}) == code, f"{key}: {default!r}"
    assert load_settings({**BASE, **defaults(service)}) == code


def test_the_procfile_settings_have_the_procfiles_defaults() -> None:
    in_procfile = dict(
        re.findall(r"\$\{(NSL_[A-Z0-9_]+):-([^}]*)\}", (ROOT / "Procfile").read_text())
    )
    assert in_procfile
    for name, default in re.findall(r"\$\{(NSL_[A-Z0-9_]+):-([^}]*)\}", COMPOSE.read_text()):
        if name in in_procfile:
            assert default == in_procfile[name], name


def test_the_migrations_come_from_the_api_image() -> None:
    (db_dir,) = re.findall(
        r"^ENV NSL_DB_DIR=(\S+)$", (ROOT / "services/api/Dockerfile").read_text(), re.MULTILINE
    )
    for service in ("migrate", "api"):
        assert environment(service)["NSL_DB_DIR"] == f"${{NSL_DB_DIR:-{db_dir}}}"


def test_the_workers_serve_metrics_and_a_liveness_probe() -> None:
    for service in WORKERS:
        env = environment(service)
        assert env["NSL_METRICS_PORT"] == 9100, service
        assert env["NSL_METRICS_HOST"] == EVERY_INTERFACE, service
        assert env["NSL_LOG_FORMAT"] == "json", service
        probe = " ".join(services()[service]["healthcheck"]["test"])
        assert "http://127.0.0.1:9100/healthz" in probe, service
    for service in (*WORKERS, "api"):
        # A fresh folder at each start: stale files of dead processes would add up.
        multiproc_dir = environment(service)["PROMETHEUS_MULTIPROC_DIR"]
        assert multiproc_dir in services()[service]["tmpfs"], service


# -- images and commands -----------------------------------------------------------------


def test_each_service_is_built_from_a_dockerfile_that_exists() -> None:
    dockerfiles = {
        *(p.relative_to(ROOT).as_posix() for p in ROOT.glob("services/*/Dockerfile")),
        "devstack/Dockerfile",
    }
    used = set()
    for name, service in services().items():
        image = str(service["image"])
        assert registry_host(image) is None, f"{name}: {image} names a registry"
        if "build" not in service:
            assert not image.startswith("neosl/"), f"{name}: our image, but not built"
            continue
        build = service["build"]
        assert build["context"] == ".", name
        dockerfile = build["dockerfile"]
        assert (ROOT / dockerfile).is_file(), f"{name}: no {dockerfile}"
        # Named after its folder: neosl/api, neosl/gasbank, neosl/devstack…
        assert image == f"neosl/{Path(dockerfile).parent.name}", name
        used.add(dockerfile)
    assert used == dockerfiles


def test_the_commands_are_the_procfiles() -> None:
    for name, command in procfile().items():
        assert name in services(), f"the Procfile's {name} has no service"
        if name == "flower":
            continue
        assert compose_command(name) == in_container(command), name
        # A module of the service whose image it runs.
        service_dir = Path(services()[name]["build"]["dockerfile"]).parent
        package = module(compose_command(name)).split(".")[0]
        assert (ROOT / service_dir / "src" / package).is_dir(), name


def test_the_image_commands_are_the_compose_commands_by_default() -> None:
    """Where a service runs its image's own process, the image's CMD is that command with
    the Procfile's defaults filled in."""
    for name in ("api", "executor", "scheduler", "pricefeed", "gasbank"):
        dockerfile = ROOT / services()[name]["build"]["dockerfile"]
        (cmd,) = [args for word, args in dockerfile_instructions(dockerfile) if word == "CMD"]
        assert json.loads(cmd) == with_defaults(compose_command(name)), name


def test_flower_watches_the_broker_behind_basic_auth() -> None:
    flower = services()["flower"]
    command = [str(arg) for arg in flower["command"]]
    assert command[0] == "celery"
    assert command[command.index("--broker") + 1] == environment("api")["REDIS_URL"]
    assert "flower" in command
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == "${FLOWER_BASIC_AUTH:-}"
    (port,) = flower["ports"]
    assert port.startswith("127.0.0.1:"), "Flower is published on this machine only"


# -- order -------------------------------------------------------------------------------


def test_the_schema_is_applied_before_the_api_and_the_workers_start() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["neosl", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["image"] == "neosl/api"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", *WORKERS):
        depends = services()[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        # The dev chain may be left out (another network's RPC): then it is not waited for.
        assert depends["neo"] == {"condition": "service_healthy", "required": False}, name


def test_the_servers_keep_their_data_and_report_their_health() -> None:
    volumes = set(compose()["volumes"])
    for name, mount in (
        ("postgres", "/var/lib/postgresql/data"),
        ("redis", "/data"),
        ("neo", "/data"),
    ):
        service = services()[name]
        assert any(
            v.split(":")[0] in volumes and v.split(":")[1] == mount for v in service["volumes"]
        )
    assert services()["postgres"]["image"] == "postgres:17"
    assert "pg_isready" in services()["postgres"]["healthcheck"]["test"]
    assert services()["redis"]["image"] == "redis:7"
    assert services()["redis"]["command"] == ["redis-server", "--appendonly", "yes"]
    assert "ping" in services()["redis"]["healthcheck"]["test"]


# -- secrets -----------------------------------------------------------------------------


def test_secrets_go_only_to_the_services_that_need_them() -> None:
    holders: dict[str, set[str]] = {}
    for name in services():
        for key in environment(name):
            holders.setdefault(key, set()).add(name)
    for key in GASBANK_ONLY:
        assert holders[key] == {"gasbank"}, key
    assert holders["FLOWER_BASIC_AUTH"] == {"flower"}
    assert holders["POSTGRES_PASSWORD"] == {"postgres"}
    # Only the processes that use them: the token key the API, the secrets' master keys
    # the processes that read tenants' secrets.
    assert holders["NSL_SECRET_KEY"] == {"api"}
    assert holders["NSL_SECRETS_KEY"] == {"api", "executor", "pricefeed"}
    # No secret has a default value in the compose file.
    for name in services():
        for key, value in environment(name).items():
            if key in SECRETS:
                assert value == f"${{{key}:-}}", f"{name}: {key}"


def _is_key(value: str) -> bool:
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= 32


def _is_wif(value: str) -> bool:
    try:
        Account.from_wif(value)
    except ValueError:
        return False
    return True


def test_the_env_example_commits_no_secret() -> None:
    values = env_example()
    for key in SECRETS | {"NSL_DEPOSIT_ADDRESS", "NSL_RELAY_PUBLIC_KEY"}:
        assert key in values, f".env.example does not mention {key}"
    for key in SECRETS:
        value = values[key]
        assert value == "" or re.fullmatch(r"<[^<>]*>", value), f"{key}={value}"
    for key, value in values.items():
        for part in re.split(r"[:,]", value):
            assert not _is_key(part), f"{key} holds a key"
            assert not _is_wif(part), f"{key} holds a WIF"


def test_the_env_example_names_only_what_the_compose_file_reads() -> None:
    text = COMPOSE.read_text()
    for key in env_example():
        assert f"${{{key}:-" in text, f"{key} in .env.example is not used by the compose file"


def test_the_checks_recognise_secrets_and_registries() -> None:
    """So that the check above can fail."""
    assert _is_key(new_key())
    assert _is_wif(Account.private_key_to_wif(os.urandom(32)))
    for harmless in ("", "8000", "INFO", "http://neo:50332"):
        assert not _is_key(harmless)
        assert not _is_wif(harmless)
    assert registry_host("registry.example:5000/neosl/api") == "registry.example:5000"
    assert registry_host("localhost/neosl/api") == "localhost"
    for image in ("neosl/api", "postgres:17", "mher/flower:2.0"):
        assert registry_host(image) is None


# -- the dev chain -----------------------------------------------------------------------


def test_the_dev_chain_is_served_where_the_others_look_for_it() -> None:
    neo = services()["neo"]
    final = dockerfile_final_stage(DEVSTACK_DOCKERFILE)
    (cmd,) = [json.loads(args) for word, args in final if word == "CMD"]
    assert cmd[0] == "neosl-dev"
    args = build_parser().parse_args(cmd[1:])
    assert args.command == "chain"
    assert args.host == EVERY_INTERFACE
    (volume,) = [args for word, args in final if word == "VOLUME"]
    assert args.chain_dir == volume
    # The RPC port: the health check's, the published one, the one the services use.
    (healthcheck,) = [a for word, a in final if word == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{args.rpc_port}'" in healthcheck
    assert "getblockcount" in healthcheck
    assert neo["ports"] == [f"127.0.0.1:{args.rpc_port}:{args.rpc_port}"]
    assert environment("api")["NEO_RPC_URL"] == f"${{NEO_RPC_URL:-http://neo:{args.rpc_port}}}"
    assert neo["volumes"] == [f"neo-data:{volume}"]
    # The faucet: the chain's committee wallet, read from the same volume.
    devnet = services()["devnet"]
    (mount,) = devnet["volumes"]
    volume_name, target, mode = mount.split(":")
    assert (volume_name, mode) == ("neo-data", "ro")
    wallet = committee_wallet_file(Path(volume)).relative_to(volume)
    assert devnet["environment"]["NSL_DEVNET_WALLET"] == f"{target}/{wallet}"
    # Empty would be taken as the password; unset, the password file next to it is read.
    assert devnet["environment"]["NSL_DEVNET_WALLET_PASSWORD"] is None
    assert devnet["profiles"] == ["devnet"]
    assert devnet["depends_on"]["neo"]["condition"] == "service_healthy"


def test_hadolint_passes_on_the_dev_chain_dockerfile() -> None:
    done = subprocess.run(
        [str(TOOLS / "hadolint"), str(DEVSTACK_DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dev_chain_image_runs_as_a_non_root_user_from_a_slim_base() -> None:
    final = dockerfile_final_stage(DEVSTACK_DOCKERFILE)
    assert final[0] == ("FROM", "python:3.13-slim")
    assert ("USER", "10001:10001") in final
    words = [word for word, _ in final]
    assert "HEALTHCHECK" in words
    assert "VOLUME" in words
    # The final stage copies the environment only: no uv, no compilers.
    assert not any("pip install" in args or "uv sync" in args for _, args in final)


def test_the_dev_chain_build_stage_installs_the_devstack_from_the_lock(tmp_path: Path) -> None:
    (run,) = [
        args
        for word, args in dockerfile_instructions(DEVSTACK_DOCKERFILE)
        if word == "RUN" and "uv sync" in args
    ]
    sync, *after = [step.strip() for step in run.split("&&")]
    assert sync.startswith("uv sync ")
    for flag in ("--frozen", "--no-dev", "--no-editable", "--package neosl-devstack"):
        assert flag in sync
    run_build_stage_sync(sync, tmp_path)
    # The steps after it, on this copy (the image's /app is tmp_path here).
    for step in after:
        argv = [arg.replace("/app/", f"{tmp_path}/") for arg in shlex.split(step)]
        ran = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        assert ran.returncode == 0, ran.stderr
    # The image's command is installed and loads.
    venv = tmp_path / ".venv" / "bin"
    helped = subprocess.run(
        [str(venv / "neosl-dev"), "chain", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert helped.returncode == 0, helped.stderr
    assert "--host" in helped.stdout
    for tool in ("pytest", "mypy", "ruff", "boa3"):
        found = subprocess.run(
            [
                str(venv / "python"),
                "-c",
                f"import importlib.util as u, sys; sys.exit(bool(u.find_spec({tool!r})))",
            ],
            check=False,
        )
        assert found.returncode == 0, f"{tool} is installed in the dev chain image"
