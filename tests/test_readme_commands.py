"""The README's commands work as written.

Every command of a ```bash block in README.md must be listed in COVERAGE with the test or CI step
that runs it (a new command without one fails here). The cheap ones run here literally, from a
shell in the project folder with a clean environment; the demo runs at a small scale in a folder
of its own (CI runs the literal `./dev demo`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"

# command (regular expression over the command with comments stripped) -> where it runs
COVERAGE: list[tuple[str, str]] = [
    (r"\./dev demo", ".ci/run; tests/test_readme_commands.py::test_dev_demo_runs_in_a_sandbox_of_its_own"),
    (r"\./dev test( -p no:cacheprovider)?", ".ci/run"),
    (r"\./dev test tests/include/test_policy\.py -q", "tests/test_readme_commands.py::test_cheap_commands_run_as_written"),
    (r"\./dev test -m distributed -s", "tests/test_distributed.py::test_pipeline_on_celery_cluster"),
    (r"\./dev setup", "tests/test_readme_commands.py::test_cheap_commands_run_as_written"),
    (r"\./dev lint", "tests/test_readme_commands.py::test_dev_lint_runs_every_check_and_dev_test_runs_them_first"),
    (r"\./dev airflow standalone",
     "tests/test_dev_standalone.py::test_dev_airflow_standalone_starts_healthy_on_localhost_only"),
    (r"\./dev airflow plugins -o json",
     "tests/plugins/test_plugin_loads.py::test_dev_airflow_plugins_lists_the_evaluator_view"),
    (r"\.venv/bin/yuhang-pipeline run --help", "tests/test_readme_commands.py::test_cheap_commands_run_as_written"),
    (r"\.venv/bin/yuhang-pipeline run --inbox \S+ --as-of \S+( --warehouse \S+ --output-dir \S+)?",
     "tests/test_end_to_end.py::test_headline_matches_an_independent_computation"),
    (r"\.venv/bin/yuhang-pipeline status", "tests/test_readme_commands.py::test_cheap_commands_run_as_written"),
    (r"\.venv/bin/yuhang-pipeline evaluation (list|supersede) .*",
     "tests/include/test_runs.py::test_sign_off_makes_a_run_final_and_a_second_final_needs_supersede"),
    (r"\.venv/bin/yuhang-pipeline evaluation (sign|diff) .*",
     "tests/test_end_to_end.py::test_sign_off_then_a_rerun_with_one_more_file_is_a_new_run_and_the_final_stays"),
    (r"\.venv/bin/yuhang-pipeline run --inbox \S+ --as-of \S+ --provisional",
     "tests/include/test_runs.py::test_the_run_command_writes_a_provisional_run_only_when_asked"),
    (r"\.venv/bin/yuhang-pipeline watchdog --as-of \S+( --send)?",
     "tests/include/test_cli_ops.py::test_watchdog_command_rebuilds_only_unless_send"),
    (r"\.venv/bin/yuhang-pipeline warehouse (current|migrate)",
     "tests/test_readme_commands.py::test_warehouse_commands_run_as_written"),
    (r"\.venv/bin/alembic -x url=\S+ upgrade head",
     "tests/test_readme_commands.py::test_warehouse_commands_run_as_written (on a warehouse of its own)"),
    (r"\.venv/bin/alembic -x url=\S+ revision --autogenerate --rev-id \S+ -m .*",
     "manual step: writes a revision file; on a warehouse at head it finds nothing to write, as "
     "tests/include/test_migrations.py::test_the_models_match_the_migrations checks"),
    (r"\./dev test tests/include/test_migrations\.py -q", ".ci/run"),
    (r"export AIRFLOW_CONN_YUHANG_(SMTP|DINGTALK|WEBHOOK)=.*",
     "tests/test_readme_commands.py::test_connection_examples_are_valid_connections"),
    (r"\.venv/bin/yuhang-sample .*", "tests/include/test_sample.py"),
    (r"\.venv/bin/python scripts/benchmark_(intake|integrity)\.py .*", "not run by the tests: minutes at scale 115"),
    (r"\.venv/bin/python scripts/benchmark_floor\.py .*",
     "tests/scripts/test_benchmark_floor.py (the floor of a tiny generated inbox; minutes at scale 115)"),
    (r"\.venv/bin/python scripts/benchmark_pipeline\.py .*",
     "tests/scripts/test_benchmark_pipeline.py::test_pipeline_benchmark_prints_one_row_per_scale_with_the_evaluations_score "
     "(the same script at scale 0.05; at scales 12, 115 and 350 it takes minutes)"),
    (r"cp \.env\.example \.env && chmod 600 \.env", "tests/test_docker_compose.py"),
    (r"\$EDITOR \.env", "manual step"),
    (r"docker compose .*", "tests/test_docker_compose.py (static: no Docker daemon on the test machine)"),
]


def readme_commands() -> list[str]:
    """Each command of the README's bash blocks: comments stripped, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        pending = ""
        quote_open = False
        for raw in block.splitlines():
            line = raw if quote_open else re.sub(r"(^|\s)#.*$", "", raw).rstrip()
            if not line.strip() and not pending:
                continue
            pending = f"{pending} {line.strip()}" if pending else line.strip()
            quote_open = pending.count("'") % 2 == 1
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip()
                continue
            if not quote_open:
                commands.append(pending)
                pending = ""
    return commands


def test_every_readme_command_says_where_it_runs():
    commands = readme_commands()
    assert len(commands) >= 15
    uncovered = [c for c in commands if not any(re.fullmatch(p, c) for p, _ in COVERAGE)]
    assert uncovered == [], "README commands no test or CI step runs: add them to COVERAGE"
    ci = (PROJECT / ".ci" / "run").read_text()
    for _, where in COVERAGE:
        for ref in re.findall(r"(tests/[\w/]+\.py)(?:::(\w+))?", where):
            path, name = ref
            source = (PROJECT / path).read_text(encoding="utf-8")
            assert not name or f"def {name}(" in source, ref
        if where.startswith(".ci/run"):
            assert "./dev test" in ci
    assert "./dev demo" in ci


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "YUHANG_", "PYTEST", "VIRTUAL_ENV"))}
    return {**env, **extra}


def shell(command: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_cheap_commands_run_as_written(tmp_path):
    env = clean_env(YUHANG_VAR_DIR=str(tmp_path / "var"))  # status reads this folder, not the project's var/
    commands = readme_commands()
    for command in ("./dev setup", ".venv/bin/yuhang-pipeline run --help", ".venv/bin/yuhang-pipeline status",
                    "./dev test tests/include/test_policy.py -q"):
        assert command in commands
        result = shell(command, env)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
        if "status" in command:
            assert "no data yet: run yuhang_intake first" in result.stdout
            assert str(tmp_path / "var" / "warehouse.sqlite") in result.stdout
        if "--help" in command:
            assert "--as-of" in result.stdout and "--inbox" in result.stdout
        if "test_policy" in command:
            assert " passed" in result.stdout and "failed" not in result.stdout


def test_warehouse_commands_run_as_written(tmp_path):
    """`warehouse current` and `warehouse migrate` on the default warehouse of a fresh var folder, and
    the developers' `alembic … upgrade head` (alembic.ini) on a warehouse of its own."""
    env = clean_env(YUHANG_VAR_DIR=str(tmp_path / "var"))
    commands = readme_commands()
    current, migrate = ".venv/bin/yuhang-pipeline warehouse current", ".venv/bin/yuhang-pipeline warehouse migrate"
    assert current in commands and migrate in commands
    outputs = []
    for command in (current, migrate, migrate, current):
        result = shell(command, env)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
        outputs.append(result.stdout.strip())
    from yuhang_skills.core.migrations import head_revision

    head = head_revision()
    assert outputs[0].startswith("none (empty, or made before migrations")
    assert outputs[1] == f"warehouse sqlite:///{tmp_path / 'var' / 'warehouse.sqlite'}: migrated from no revision " \
                         f"(empty, or made before migrations) to {head} (head)"
    assert outputs[2].endswith(f"already at {head} (head)")
    assert outputs[3] == f"{head} (head)"

    (upgrade,) = [c for c in commands if c.startswith(".venv/bin/alembic") and c.endswith("upgrade head")]
    scratch = f"sqlite:///{tmp_path / 'schema.sqlite'}"
    result = shell(re.sub(r"url=\S+", f"url={scratch}", upgrade), env)
    assert result.returncode == 0, result.stderr[-2000:]
    result = shell(f".venv/bin/alembic -x url={scratch} current", env)
    assert result.returncode == 0 and result.stdout.strip() == f"{head} (head)", (result.stdout, result.stderr)


def test_connection_examples_are_valid_connections():
    from airflow.models.connection import Connection

    exports = [c for c in readme_commands() if c.startswith("export AIRFLOW_CONN_")]
    assert len(exports) == 3
    for command in exports:
        name, value = re.fullmatch(r"export (AIRFLOW_CONN_\w+)='(.*)'", command, flags=re.S).groups()
        spec = json.loads(value)
        connection = Connection.from_json(value, conn_id=name.removeprefix("AIRFLOW_CONN_").lower())
        assert connection.conn_type == spec["conn_type"] and connection.host == spec["host"]


@pytest.mark.parametrize("scale", ["0.1"])
def test_dev_demo_runs_in_a_sandbox_of_its_own(tmp_path, scale):
    """`./dev demo` (small scale, own folder): the headline, and its runs recorded in
    <var-dir>/demo/airflow, not in the local UI's metadata."""
    env = clean_env(AIRFLOW_HOME=str(tmp_path / "ui-airflow"))
    result = shell(f"./dev demo --scale {scale} --var-dir {tmp_path / 'var'}", env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "2027 performance evaluation (as of 2027-02-15)" in out
    for label in ("score", "released", "recoveries", "net release", "run", "integrity", "workbook", "report", "official",
                  "tables",
                  "run times"):
        assert re.search(rf"^  {label} +\S", out, flags=re.M), label
    assert (tmp_path / "var" / "demo" / "airflow" / "airflow.db").is_file()
    assert not (tmp_path / "ui-airflow" / "airflow.db").exists()
    run_id = re.search(r"^  run +(2027-20270215-\d\d) \(draft\)", out, flags=re.M).group(1)
    for suffix in ("xlsx", "html", "docx", "pdf"):
        assert (tmp_path / "var" / "demo" / "outputs" / f"evaluation_2027_{run_id}.{suffix}").is_file()
        assert (tmp_path / "var" / "demo" / "outputs" / f"evaluation_2027_latest.{suffix}").is_file()
    assert "  official     " in out and out.count("(+ .pdf)") == 1


def test_dev_lint_runs_every_check_and_dev_test_runs_them_first(tmp_path):
    """`./dev lint` with this project's settings, on a small project of the same layout beside it: a
    clean one passes; a format slip, a lint finding and a type error are each named, all three in one
    run. `./dev test` runs the checks before the suite and stops on a failure; `./dev test <file>`
    runs only the tests."""
    for name in ("dev", "pyproject.toml", "requirements.lock"):
        shutil.copy2(PROJECT / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(PROJECT / ".venv")  # ./dev setup: the same lock, nothing to install
    for folder in ("include/ledger", "dags", "plugins", "scripts", "tests"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "include/ledger/__init__.py").write_text("")
    (tmp_path / "include/ledger/sums.py").write_text(
        "def total_fen(amounts: list[int]) -> int:\n    return sum(amounts)\n")
    for folder in ("dags", "plugins", "scripts"):
        (tmp_path / folder / "wiring.py").write_text(
            "from ledger.sums import total_fen\n\nTOTAL = total_fen([100, 250])\n")
    (tmp_path / "tests/test_sums.py").write_text(
        "from ledger.sums import total_fen\n\n\ndef test_total():\n    assert total_fen([100, 250]) == 350\n")
    env = clean_env()

    def dev(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["./dev", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    clean = dev("lint")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert [line for line in clean.stdout.splitlines() if line.startswith("== ")] == [
        "== ruff format --check", "== ruff check", "== mypy"]
    suite = dev("test", "-q", "-p", "no:cacheprovider")
    assert suite.returncode == 0 and "== mypy" in suite.stdout and "1 passed" in suite.stdout, suite.stdout

    (tmp_path / "scripts/layout.py").write_text("SHARES = {'district':1}\n")  # quotes and spacing
    (tmp_path / "dags/unused.py").write_text("import os\n")
    (tmp_path / "plugins/wrong.py").write_text("def yuan(fen: int) -> str:\n    return fen / 100\n")
    dirty = dev("lint")
    out = dirty.stdout + dirty.stderr
    assert dirty.returncode != 0
    assert "scripts/layout.py" in out  # ruff format --check
    assert "F401" in out and "dags/unused.py" in out  # ruff check
    assert 'plugins/wrong.py:2: error: Incompatible return value type (got "float", expected "str")' in out  # mypy
    stopped = dev("test", "-q", "-p", "no:cacheprovider")
    assert stopped.returncode != 0 and "passed" not in stopped.stdout
    one_file = dev("test", "tests/test_sums.py", "-q", "-p", "no:cacheprovider")
    assert one_file.returncode == 0 and "1 passed" in one_file.stdout and "== " not in one_file.stdout
