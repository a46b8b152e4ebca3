"""Static checks of the container set-up: Dockerfile, docker-compose.yaml, .env.example, .dockerignore.

No Docker engine is needed (nor called): the files are parsed and compared with each other and with
requirements.lock, so that a drift (an Airflow upgrade in one place only, a new ${VAR} missing from
.env.example, a secret typed into the compose file) fails here instead of at deployment time. The one
piece of the set-up that runs outside a container, PostgreSQL's init script creating the warehouse,
is run against the local PostgreSQL. The services themselves run for real in test_distributed.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
LOCK_FILE = REPO / "requirements.lock"
ENV_EXAMPLE = REPO / ".env.example"
GITIGNORE = REPO / ".gitignore"
DOCKERIGNORE = REPO / ".dockerignore"
PYPROJECT = REPO / "pyproject.toml"
POSTGRES_INIT_DIR = REPO / "docker" / "postgres-init"
WAREHOUSE_INIT_SCRIPT = POSTGRES_INIT_DIR / "10-create-warehouse.sh"

PYTHON_VERSION = "3.11"

# The services of the official Airflow 3 docker-compose.yaml (CeleryExecutor flavour).
OFFICIAL_SERVICES = {
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
    "airflow-cli",
    "flower",
}
# Official services that only start with their profile, and that profile.
PROFILED_SERVICES = {"airflow-cli": "debug", "flower": "flower"}
# Airflow command of each long-running official service (the image's entrypoint prefixes `airflow`).
SERVICE_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
    "flower": "celery flower",
}
# Alert channels (Airflow connections) offered, commented out, in docker-compose.yaml and .env.example.
OPTIONAL_ALERT_CONNECTIONS = ("AIRFLOW_CONN_YUHANG_SMTP", "AIRFLOW_CONN_YUHANG_DINGTALK", "AIRFLOW_CONN_YUHANG_WEBHOOK")
# Long-running services that must report their health (others may depend on it).
HEALTHCHECKED_SERVICES = {
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
}
# Variables holding secrets: required (${VAR:?msg}, no default) wherever they are referenced.
SECRET_VARIABLES = {
    "POSTGRES_PASSWORD",
    "WAREHOUSE_DB_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "YUHANG_PII_KEY",
}
# Container environment keys whose whole value is a secret, and the .env variable it must come from.
SECRET_ENV_KEYS = {name: name for name in SECRET_VARIABLES} | {"AIRFLOW_VAR_YUHANG_PII_KEY": "YUHANG_PII_KEY"}
# Container environment keys whose value is a URL that may embed a password.
URL_ENV_KEYS = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?msg}, ${NAME?msg}, ${NAME:+alt}, or $NAME.
# `$$` is Compose's escape for a literal `$` and is skipped by the tokenizer below.
_BRACED = re.compile(r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
_BARE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def compose_references(text: str) -> Iterator[tuple[str, str | None]]:
    """(variable name, operator) for every interpolation in one string, following Compose's rules."""
    i = 0
    while (i := text.find("$", i)) != -1:
        nxt = text[i + 1 : i + 2]
        if nxt == "$":  # escaped literal dollar
            i += 2
            continue
        if nxt == "{":
            m = _BRACED.match(text, i + 1)
            assert m, f"unparsable interpolation in {text[i:i + 60]!r}"
            yield m["name"], m["op"]
            i = m.end()
            continue
        m = _BARE.match(text, i + 1)
        if m:
            yield m["name"], None
            i = m.end()
        else:
            i += 1


def walk_strings(node: Any) -> Iterator[str]:
    """Every string value (and mapping key) of a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                yield key
            yield from walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_strings(item)


def env_mapping(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE list form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        assert "=" in line, f"{path.name}:{number}: not KEY=VALUE: {raw!r}"
        key, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f"{path.name}:{number}: bad name {key!r}"
        assert key not in values, f"{path.name}:{number}: {key} defined twice"
        values[key] = value
    return values


def airflow_pin(lock_text: str) -> str:
    """The exact apache-airflow version pinned by a requirements/constraints file."""
    pins = re.findall(
        r"^\s*apache[-_.]airflow(?:\[[^\]]*\])?\s*===?\s*([A-Za-z0-9.+!-]+)",
        lock_text,
        flags=re.IGNORECASE | re.MULTILINE,
    )
    assert len(pins) == 1, f"expected exactly one 'apache-airflow==X' line, found {pins}"
    return pins[0]


def dockerfile_from() -> tuple[str, str, str]:
    """(image, airflow version, python version) of the Dockerfile's final FROM."""
    froms = re.findall(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", DOCKERFILE.read_text(), re.M | re.I)
    assert froms, "Dockerfile has no FROM line"
    m = re.fullmatch(r"(apache/airflow):(\d+\.\d+\.\d+)-python(\d+\.\d+)(?:@sha256:[0-9a-f]{64})?", froms[-1])
    assert m, f"FROM {froms[-1]!r} is not apache/airflow:<airflow version>-python<python version>"
    return m[1], m[2], m[3]


# ---------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)  # resolves the &anchors / <<: merges like Compose does
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if name.startswith("airflow-") or name == "flower"}


@pytest.fixture(scope="module")
def references(compose: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [ref for text in walk_strings(compose) for ref in compose_references(text)]


# ---------------------------------------------------------------------------------------------------
# services
# ---------------------------------------------------------------------------------------------------


def test_all_official_services_present(services):
    missing = OFFICIAL_SERVICES - services.keys()
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"


def test_optional_services_are_behind_profiles(services):
    for name, profile in PROFILED_SERVICES.items():
        assert services[name].get("profiles") == [profile], f"{name} must only start with profile {profile!r}"
    unprofiled = OFFICIAL_SERVICES - PROFILED_SERVICES.keys()
    assert not [name for name in unprofiled if services[name].get("profiles")], "core services must always start"


def test_airflow_services_extend_the_common_anchor():
    """Every Airflow service merges the x-airflow-common anchor, as the official file does."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert re.search(r"^x-airflow-common:\s*\n\s*&airflow-common\b", text, re.M), "no &airflow-common anchor"
    assert re.search(r"environment:\s*\n\s*&airflow-common-env\b", text), "no &airflow-common-env anchor"
    blocks = re.split(r"^  (?=[a-z][\w-]*:\s*$)", text.split("\nservices:\n", 1)[1], flags=re.M)
    merged = {b.split(":", 1)[0] for b in blocks if re.search(r"^\s+<<: \*airflow-common\s*$", b, re.M)}
    expected = {name for name in OFFICIAL_SERVICES if name.startswith("airflow-") or name == "flower"}
    assert expected <= merged, f"services not built on *airflow-common: {sorted(expected - merged)}"


def test_workers_can_be_scaled(services):
    """`docker compose up --scale airflow-worker=N`: nothing in the worker may be unique to one container."""
    worker = services["airflow-worker"]
    for key in ("container_name", "hostname", "ports"):
        assert key not in worker, f"airflow-worker sets {key}: --scale would clash"
    # Workers are told apart by Celery's default node name, celery@<container hostname>
    assert "--celery-hostname" not in str(worker["command"]) and "-H " not in str(worker["command"])


def test_airflow_services_share_the_common_build(compose, airflow_services):
    common = compose["x-airflow-common"]
    assert common.get("build"), "x-airflow-common must build the project image (./Dockerfile)"
    build = common["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (REPO / context / dockerfile).resolve() == DOCKERFILE
    for name, svc in airflow_services.items():
        assert svc.get("build") == build, f"{name} does not use the common build"
        assert svc.get("image") == common.get("image"), f"{name} does not use the common image tag"


def test_airflow_services_use_celery_executor(airflow_services):
    for name, svc in airflow_services.items():
        env = env_mapping(svc)
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name
        assert env.get("AIRFLOW__CELERY__BROKER_URL", "").startswith("redis://"), name
        assert env.get("AIRFLOW__CELERY__RESULT_BACKEND", "").startswith("db+postgresql://"), name


def test_airflow_configuration(airflow_services):
    for name, svc in airflow_services.items():
        env = env_mapping(svc)
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai", name
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow"), name
        assert re.fullmatch(
            r"postgresql://\w+:\$\{[^}]+\}@postgres:5432/warehouse", env["AIRFLOW_CONN_YUHANG_WAREHOUSE"]
        ), name
        assert env["AIRFLOW_VAR_YUHANG_POLICY_PATH"] == "/opt/airflow/include/yuhang_skills/policy/yuhang.yaml", name
        assert env["AIRFLOW_VAR_YUHANG_INBOX"] == "/opt/airflow/inbox", name
        assert env["AIRFLOW_VAR_YUHANG_OUTPUT_DIR"] == "/opt/airflow/outputs", name
        # Dependencies are installed at build time, never when a container starts
        assert not env.get("_PIP_ADDITIONAL_REQUIREMENTS"), name


@pytest.mark.parametrize("name", sorted(SERVICE_COMMANDS))
def test_service_commands(services, name):
    assert services[name]["command"] == SERVICE_COMMANDS[name]
    assert "entrypoint" not in services[name], f"{name} must go through the image's entrypoint"


def test_apiserver_and_init_commands(services):
    assert any(p.endswith(":8080") for p in map(str, services["airflow-apiserver"]["ports"]))
    init_script = " ".join(map(str, services["airflow-init"]["command"]))
    assert "airflow db migrate" in init_script


def test_image_tag_names_the_pinned_airflow_and_python():
    """The project image's default tag, and the one in .env.example, name the base image's Airflow and
    Python versions, which test_dockerfile_airflow_version_matches_lock ties to requirements.lock."""
    _image, airflow, python = dockerfile_from()
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    defaults = re.findall(r"image:\s*\$\{AIRFLOW_IMAGE_NAME:-([^}]+)\}", text)
    assert defaults, "x-airflow-common must use image: ${AIRFLOW_IMAGE_NAME:-<name>:<tag>}"
    configured = parse_env_file(ENV_EXAMPLE)["AIRFLOW_IMAGE_NAME"]
    for image in (*defaults, configured):
        assert image.rsplit(":", 1)[-1] == f"{airflow}-python{python}", (
            f"image {image!r} should be tagged {airflow}-python{python} (Dockerfile FROM, requirements.lock)"
        )
    assert airflow_pin(LOCK_FILE.read_text(encoding="utf-8")) == airflow


def test_warehouse_database_is_created(compose, services):
    postgres = services["postgres"]
    assert env_mapping(postgres)["POSTGRES_DB"] == "airflow"
    mounts = {volume_target(str(v)): str(v) for v in postgres["volumes"]}
    init_mount = mounts.get("/docker-entrypoint-initdb.d")
    assert init_mount, "no folder mounted at /docker-entrypoint-initdb.d"
    source = re.sub(r"\$\{AIRFLOW_PROJ_DIR:-\.\}", ".", init_mount).split(":")[0]
    assert (REPO / source).resolve() == POSTGRES_INIT_DIR.resolve()
    assert init_mount.endswith(":ro")
    # The postgres image executes executable *.sh files (and only sources the others)
    assert WAREHOUSE_INIT_SCRIPT.is_file() and os.access(WAREHOUSE_INIT_SCRIPT, os.X_OK)
    assert "WAREHOUSE_DB_PASSWORD" in env_mapping(postgres)
    # The connection names the database and role the script creates by default
    conn = env_mapping(compose["x-airflow-common"])["AIRFLOW_CONN_YUHANG_WAREHOUSE"]
    assert re.fullmatch(r"postgresql://warehouse:\$\{WAREHOUSE_DB_PASSWORD:\?[^}]*\}@postgres:5432/warehouse", conn)
    check = " ".join(services["postgres"]["healthcheck"]["test"])
    assert "-d warehouse" in check, "postgres must only report healthy once the warehouse database exists"


def test_warehouse_init_script_runs_on_postgresql(tmp_path):
    """Run the init script as the postgres image would (psql as the superuser, variables from the
    environment) against the local PostgreSQL, with throw-away names, and check what it made."""
    import sqlalchemy as sa

    admin_url = sa.engine.make_url(
        os.environ.get("YUHANG_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    )
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {admin_url.render_as_string()} is not reachable ({exc.orig}); start it (.ci/run)")
    name = f"yuhang_wh_init_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PGHOST": admin_url.host or "127.0.0.1",
        "PGPORT": str(admin_url.port or 5432),
        "POSTGRES_USER": admin_url.username or "postgres",
        "POSTGRES_DB": admin_url.database or "postgres",
        "WAREHOUSE_DB_NAME": name,
        "WAREHOUSE_DB_USER": f"{name}_owner",
        "WAREHOUSE_DB_PASSWORD": "it's a \"secret\" \\ with quotes",
    }
    if admin_url.password:
        env["PGPASSWORD"] = admin_url.password
    try:
        done = subprocess.run([str(WAREHOUSE_INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        with admin.connect() as conn:
            owner, public_connect = conn.execute(sa.text(
                "select datdba::regrole::text, has_database_privilege('public', oid, 'CONNECT') "
                "from pg_database where datname = :n"), {"n": name}).one()
            can_login = conn.execute(sa.text("select rolcanlogin from pg_roles where rolname = :r"),
                                     {"r": f"{name}_owner"}).scalar_one()
        assert owner == f"{name}_owner" and can_login and not public_connect
        # A second run (volume re-initialised by hand) fails loudly instead of half-succeeding
        again = subprocess.run([str(WAREHOUSE_INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode != 0
        # The password is required
        missing = subprocess.run([str(WAREHOUSE_INIT_SCRIPT)], env={**env, "WAREHOUSE_DB_PASSWORD": ""},
                                 capture_output=True, text=True, timeout=60)
        assert missing.returncode != 0 and "WAREHOUSE_DB_PASSWORD" in missing.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}"'))
            conn.execute(sa.text(f'drop role if exists "{name}_owner"'))
        admin.dispose()


def test_pii_key_is_an_airflow_variable_for_the_workers_only(compose, services):
    """The personal-data key reaches the pipeline as the Airflow variable yuhang_pii_key, and only in
    the containers that run tasks; no YUHANG_* override bypasses Airflow's configuration."""
    holders = {name for name, svc in services.items() if "AIRFLOW_VAR_YUHANG_PII_KEY" in env_mapping(svc)}
    assert holders == {"airflow-worker", "airflow-cli"}, holders
    assert "AIRFLOW_VAR_YUHANG_PII_KEY" not in env_mapping(compose["x-airflow-common"])
    for name, svc in [("x-airflow-common", compose["x-airflow-common"]), *services.items()]:
        overrides = sorted(k for k in env_mapping(svc) if k.startswith("YUHANG_") and k not in ("YUHANG_PROJECT_DIR",
                                                                                                 "YUHANG_VAR_DIR"))
        assert not overrides, f"{name} configures the pipeline outside Airflow: {overrides}"


def test_optional_alert_connections_are_offered_commented_out(compose):
    """The alert channels are Airflow connections a deployment may add: shown in both files, commented
    out, so that an unset channel is absent rather than an empty connection."""
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    example_text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in OPTIONAL_ALERT_CONNECTIONS:
        assert re.search(rf"^\s*#\s*{name}:\s*\"?\$\{{{name}\}}", compose_text, re.M), f"{name} not offered in compose"
        assert re.search(rf"^#\s*{name}=\S", example_text, re.M), f"{name} has no commented example in .env.example"
        assert name not in env_mapping(compose["x-airflow-common"])
        assert name not in parse_env_file(ENV_EXAMPLE)


@pytest.mark.parametrize("name", sorted(HEALTHCHECKED_SERVICES))
def test_healthchecks(services, name):
    check = services[name].get("healthcheck") or {}
    test = check.get("test")
    assert test and test != ["NONE"] and not check.get("disable"), f"{name} has no health check"
    joined = test if isinstance(test, str) else " ".join(test)
    expected = {
        "airflow-apiserver": "/api/v2/version",
        "airflow-worker": "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping",
        "airflow-scheduler": "8974/health",
        "postgres": "pg_isready",
        "redis": "redis-cli",
    }.get(name)
    if expected:
        assert expected in joined, f"{name}: health check {joined!r} does not use {expected!r}"


def test_start_order_waits_for_health(compose, services, airflow_services):
    common = compose["x-airflow-common"]["depends_on"]
    for dep in ("postgres", "redis"):
        assert common[dep]["condition"] == "service_healthy"
    for name, svc in airflow_services.items():
        deps = svc.get("depends_on") or {}
        for dep in ("postgres", "redis"):
            assert deps.get(dep, {}).get("condition") == "service_healthy", f"{name} -> {dep}"
        if name not in ("airflow-init", "airflow-cli"):
            assert deps.get("airflow-init", {}).get("condition") == "service_completed_successfully", name
    worker_deps = services["airflow-worker"]["depends_on"]
    assert worker_deps["airflow-apiserver"]["condition"] == "service_healthy"


def volume_target(spec: str) -> str:
    """Container path of a short-syntax volume (`source:target[:mode]`, source may hold ${VAR:-x})."""
    return re.sub(r"\$\{[^}]*\}", "VAR", spec).split(":")[1]


def test_volumes(compose, services):
    targets = {volume_target(str(v)) for v in compose["x-airflow-common"]["volumes"]}
    for folder in ("dags", "plugins", "include", "inbox", "outputs", "logs"):
        assert f"/opt/airflow/{folder}" in targets, f"/opt/airflow/{folder} is not mounted"
    # Services overriding the volume list must keep the common mounts
    common = set(map(str, compose["x-airflow-common"]["volumes"]))
    missing = common - set(map(str, services["airflow-apiserver"]["volumes"]))
    assert not missing, f"airflow-apiserver lost common volumes: {missing}"


# ---------------------------------------------------------------------------------------------------
# variables and secrets
# ---------------------------------------------------------------------------------------------------


def test_every_compose_variable_is_in_env_example(references):
    defined = parse_env_file(ENV_EXAMPLE)
    missing = sorted({name for name, _ in references} - defined.keys())
    assert not missing, f"variables used in docker-compose.yaml but not defined in .env.example: {missing}"


def test_env_example_defines_only_used_variables(references):
    unused = sorted(parse_env_file(ENV_EXAMPLE).keys() - {name for name, _ in references})
    assert not unused, f".env.example defines variables docker-compose.yaml never uses: {unused}"


def test_secrets_are_required_and_never_defaulted(references):
    used = {name for name, _ in references}
    assert SECRET_VARIABLES <= used, f"secrets not wired into the compose file: {SECRET_VARIABLES - used}"
    for name, op in references:
        if name in SECRET_VARIABLES:
            assert op == ":?", f"${{{name}}} must be written ${{{name}:?message}} (required, no default)"


def test_no_secret_literals_in_compose(compose):
    containers = [compose["x-airflow-common"], *compose["services"].values()]
    for svc in containers:
        for key, value in env_mapping(svc).items():
            if key in SECRET_ENV_KEYS:
                source = SECRET_ENV_KEYS[key]
                assert re.fullmatch(r"\$\{%s:\?[^}]*\}" % re.escape(source), value), (
                    f"{key} must come from .env as ${{{source}:?...}}, found {value!r}"
                )
            if key in URL_ENV_KEYS or key.startswith("AIRFLOW_CONN_"):
                m = re.match(r"^[\w+.-]+://[^:/@]*:([^@]*)@", value)
                if m and m[1]:
                    assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", m[1]), f"{key} embeds a literal password"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = parse_env_file(ENV_EXAMPLE)
    for name in SECRET_VARIABLES:
        if example.get(name):
            assert example[name] not in text, f".env.example's {name} copied into docker-compose.yaml"
    assert not re.search(r"fernet_key\s*:\s*['\"]?[A-Za-z0-9_-]{43}=", text, re.I), "literal Fernet key"


def test_env_example_secrets_are_placeholders():
    values = parse_env_file(ENV_EXAMPLE)
    for name in SECRET_VARIABLES:
        assert name in values, f"{name} missing from .env.example"
        assert "change-me" in values[name], f".env.example must hold a change-me placeholder for {name}"


def test_dotenv_is_git_ignored():
    patterns = {line.strip() for line in GITIGNORE.read_text(encoding="utf-8").splitlines()}
    assert patterns & {".env", "/.env"}, ".env (the real secrets) must be listed in .gitignore"


def test_dockerignore_keeps_secrets_and_data_out_of_the_build_context():
    patterns = {
        line.strip().rstrip("/").removeprefix("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    for required in (".env", ".venv", ".git", "var", "outputs", "**/__pycache__"):
        assert required in patterns, f".dockerignore must exclude {required}"


# ---------------------------------------------------------------------------------------------------
# Dockerfile and versions
# ---------------------------------------------------------------------------------------------------


def test_dockerfile_installs_libreoffice_writer_and_cjk_fonts_for_the_official_report():
    """The official report's PDF is made by LibreOffice Writer headless with Noto CJK fonts: the
    image installs both as root and goes back to the unprivileged user before the pip installs."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    install = re.search(r"USER root\nRUN apt-get update.*?apt-get install[^\n]*\n(.*?)\n &&", text, flags=re.S)
    assert install, "the Dockerfile must apt-get install as root"
    packages = install.group(1).split()
    assert "libreoffice-writer-nogui" in packages and "fonts-noto-cjk" in packages, packages
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users[-1] == "airflow"
    assert text.index("USER airflow") > text.index("USER root") and text.index("RUN pip install") > text.index("USER airflow")


def test_dockerfile_base_image_python_version():
    image, _airflow, python = dockerfile_from()
    assert image == "apache/airflow"
    assert python == PYTHON_VERSION
    requires = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["requires-python"]
    assert re.search(r">=\s*3\.11\b", requires), f"pyproject requires-python {requires!r} excludes 3.11"


def test_dockerfile_airflow_version_matches_lock():
    if not LOCK_FILE.exists():
        pytest.skip(f"{LOCK_FILE.name} does not exist yet ({LOCK_FILE})")
    _image, airflow, _python = dockerfile_from()
    lock = LOCK_FILE.read_text(encoding="utf-8")
    pinned = airflow_pin(lock)
    assert pinned == airflow, (
        f"Dockerfile FROM apache/airflow:{airflow} but {LOCK_FILE.name} pins apache-airflow=={pinned}"
    )
    # The lock is installed with `pip install -r` inside the image: no local or editable entries
    for number, line in enumerate(lock.splitlines(), 1):
        stripped = line.strip()
        assert not re.match(r"^(-e|--editable)\b|^(\.|/|file:)", stripped), (
            f"{LOCK_FILE.name}:{number}: local/editable entry cannot be installed in the image: {line!r}"
        )
        assert not re.match(r"^yuhang[-_.]skills[-_.]assessment\b", stripped, re.I), (
            f"{LOCK_FILE.name}:{number}: the project itself is installed separately (--no-deps -e .)"
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alembic==1.20.1\napache-airflow==3.3.2\napache-airflow-core==3.3.2\n", "3.3.2"),
        ("Apache_Airflow[celery,postgres] == 3.3.2 ; python_version >= '3.11'\n", "3.3.2"),
        ("apache-airflow==3.3.2 \\\n    --hash=sha256:" + "0" * 64 + "\n", "3.3.2"),
    ],
)
def test_airflow_pin_parser(tmp_path, text, expected):
    lock = tmp_path / "requirements.lock"
    lock.write_text(text, encoding="utf-8")
    assert airflow_pin(lock.read_text(encoding="utf-8")) == expected


def test_airflow_pin_parser_rejects_missing_pin():
    with pytest.raises(AssertionError):
        airflow_pin("apache-airflow-core==3.3.2\napache-airflow-task-sdk==1.3.2\n")


def test_dockerfile_installs_pinned_dependencies_at_build_time():
    text = DOCKERFILE.read_text(encoding="utf-8")
    # Join continuation lines so each instruction is one logical line
    instructions = re.sub(r"\\\n", " ", text)
    runs = [line for line in instructions.splitlines() if re.match(r"\s*RUN\s", line)]
    assert any(re.search(r"pip install .*--no-cache-dir.*-r \S*requirements\.lock", r) for r in runs)
    assert any(re.search(r"pip install .*--no-deps", r) for r in runs)
    users = re.findall(r"^\s*USER\s+(\S+)", text, re.M)
    assert users and users[-1] in {"airflow", "50000"}, "the image must end as the airflow user"
    first_pip = next(
        i for i, line in enumerate(instructions.splitlines()) if re.match(r"\s*RUN\s.*pip install", line)
    )
    last_user_before = [
        u for i, line in enumerate(instructions.splitlines()) if i < first_pip
        for u in re.findall(r"^\s*USER\s+(\S+)", line)
    ]
    assert last_user_before and last_user_before[-1] in {"airflow", "50000"}, "pip must run as airflow"
    for folder in ("dags", "plugins", "include"):
        assert re.search(rf"^\s*COPY\s.*\b{folder}/?\s+/opt/airflow/{folder}/?\s*$", text, re.M), folder
    assert re.search(r"GX_ANALYTICS_ENABLED=false", text)
    assert re.search(r"YUHANG_PROJECT_DIR=/opt/airflow\b", text)


def test_apiserver_serves_the_evaluator_view(services):
    """The evaluator view (plugins/yuhang_evaluator_view.py) loads in the api-server: the plugins
    folder and the package it imports are mounted, the warehouse connection reaches the api-server
    (the plugin reads it like the DAGs), and so do the run outputs it offers for download."""
    api = services["airflow-apiserver"]
    volumes = [str(v) for v in api["volumes"]]
    assert "${AIRFLOW_PROJ_DIR:-.}/plugins:/opt/airflow/plugins:ro" in volumes
    assert "${AIRFLOW_PROJ_DIR:-.}/include:/opt/airflow/include:ro" in volumes
    assert any(v.endswith(":/opt/airflow/outputs") for v in volumes)
    env = env_mapping(api)
    assert env.get("AIRFLOW__CORE__PLUGINS_FOLDER", "/opt/airflow/plugins") == "/opt/airflow/plugins"
    assert re.fullmatch(r"postgresql://warehouse:\$\{WAREHOUSE_DB_PASSWORD:\?[^}]*\}@postgres:5432/warehouse",
                        env["AIRFLOW_CONN_YUHANG_WAREHOUSE"])
    assert env["AIRFLOW_VAR_YUHANG_OUTPUT_DIR"] == "/opt/airflow/outputs"
    assert (REPO / "plugins" / "yuhang_evaluator_view.py").is_file()
    assert "COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/" in DOCKERFILE.read_text(encoding="utf-8")
