"""The package works from a normal install: a wheel of the project, installed (not editable) into a
fresh virtual environment beside the locked dependencies, runs the demo's steps from a folder
outside the checkout, reading its SQL models, policy files and expectation suites from
site-packages and writing nothing there.

Building and installing take seconds (uv links the locked packages from its cache); the intake,
indicators and evaluation run over a small sample inbox of three months.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from yuhang_skills.core.migrations import head_revision

PROJECT_DIR = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")
AS_OF = "2027-02-15"

pytestmark = pytest.mark.wheel_install

# Runs inside the fresh environment. An audit hook records every file Python opens (modules
# included), so the test sees where the package data came from and that nothing came from the
# checkout.
PIPELINE = r'''
import json
import os
import sys
import sysconfig

opened = []
WRITING = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT


def record(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2] or 0
        writes = bool(flags & WRITING) or (isinstance(mode, str) and any(c in mode for c in "wax+"))
        opened.append((os.path.abspath(os.fsdecode(args[0])), writes))


sys.addaudithook(record)

from yuhang_skills.core import settings as settings_module
from yuhang_skills.orchestration import tasks

as_of = sys.argv[1]
settings = settings_module.load_settings()
schema = tasks.migrate_warehouse()  # every DAG's first task
reference = tasks.load_reference()
batches = tasks.discover_submissions(str(settings.inbox_dir), as_of)
ingested = [tasks.ingest_site(batch["site_code"], batch["files"], batch["as_of"]) for batch in batches]
published = tasks.publish_staging()
integrity = tasks.run_integrity_checks()
built = tasks.build_models()
headline = tasks.run_evaluation(None, as_of)
print(json.dumps({
    "purelib": sysconfig.get_paths()["purelib"],
    "package": settings_module.PACKAGE_DIR.as_posix(),
    "project_dir": settings_module.PROJECT_DIR.as_posix(),
    "warehouse_url": settings.warehouse_url,
    "schema": schema,
    "files": sum(len(batch["files"]) for batch in batches),
    "published": published,
    "integrity_checks": sorted(integrity),
    "models": sorted(built),
    "headline": headline,
    "opened": opened,
}, default=str))
'''


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _tree(root: Path) -> set[str]:
    """Every file under ``root`` except compiled bytecode (Python caches modules beside them)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources, so the build leaves nothing in the checkout."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy2(PROJECT_DIR / "pyproject.toml", source / "pyproject.toml")
    shutil.copytree(PROJECT_DIR / "include", source / "include",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    _run([str(UV), "build", "--wheel", "--out-dir", str(out), str(source)], cwd=source, env=dict(os.environ))
    (built,) = out.glob("yuhang_skills_assessment-*.whl")
    return built


def test_the_wheel_carries_the_sql_policy_suites_and_templates(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = PROJECT_DIR / "include" / "yuhang_skills"
    data = {f"yuhang_skills/{p.relative_to(package).as_posix()}" for pattern in
            ("sql/*/*.sql", "policy/*", "expectations/*.json", "evaluator_view/templates/*")
            for p in package.glob(pattern)}
    assert {n for n in data if n.startswith("yuhang_skills/sql/")} and \
        {n for n in data if n.startswith("yuhang_skills/policy/")} and \
        {n for n in data if n.startswith("yuhang_skills/expectations/")} and \
        {n for n in data if n.startswith("yuhang_skills/evaluator_view/templates/")}
    assert data - names == set()
    assert "yuhang_sample/generator.py" in names
    assert {"yuhang_skills/core/migrations/env.py", "yuhang_skills/core/migrations/script.py.mako",
            "yuhang_skills/core/migrations/versions/0001_baseline.py"} <= names
    assert not any(n.startswith(("tests/", "dags/", "include/")) for n in names)


def test_an_installed_wheel_runs_the_demo_steps_from_site_packages(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=tmp_path, env=dict(os.environ))
    python = venv / "bin" / "python"
    _run([str(UV), "pip", "install", "--quiet", "--python", str(python), "-r", str(PROJECT_DIR / "requirements.lock")],
         cwd=tmp_path, env=dict(os.environ))
    _run([str(UV), "pip", "install", "--quiet", "--python", str(python), "--no-deps", str(wheel)],
         cwd=tmp_path, env=dict(os.environ))
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=tmp_path, env=dict(os.environ)).stdout.strip())
    assert not (purelib / "__editable__.yuhang_skills_assessment-0.1.0.pth").exists()
    installed_before = _tree(venv)

    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YUHANG_", "AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONNOUSERSITE="1", GX_ANALYTICS_ENABLED="false", AIRFLOW_HOME=str(work / "airflow"), TMPDIR=str(work / "tmp"),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")

    # With no project folder named, an installed package works in the current folder.
    default = _run([str(python), "-c", "from yuhang_skills.core import settings; print(settings.DEFAULT_VAR_DIR)"],
                   cwd=work, env=env).stdout.strip()
    assert Path(default) == work / "var"

    env.update(YUHANG_PROJECT_DIR=str(work), YUHANG_VAR_DIR=str(work / "var"),
               YUHANG_WAREHOUSE_URL=f"sqlite:///{work / 'warehouse.sqlite'}")
    sample = _run([str(venv / "bin" / "yuhang-sample"), "--inbox", str(work / "var" / "inbox"), "--clean",
                   "--scale", "0.05", "--start", "2026-10", "--end", "2026-12"], cwd=work, env=env)
    assert "files in" in sample.stdout
    (work / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    report = json.loads(_run([str(python), "pipeline.py", AS_OF], cwd=work, env=env).stdout.splitlines()[-1])

    installed = Path(report["purelib"]) / "yuhang_skills"
    assert Path(report["package"]) == installed and Path(report["purelib"]) == purelib
    assert Path(report["project_dir"]) == work and report["warehouse_url"].endswith(f"{work}/warehouse.sqlite")
    opened = [Path(path) for path, _ in report["opened"]]
    for folder, suffix in (("sql", ".sql"), ("policy", ".yaml"), ("policy", ".csv"), ("expectations", ".json"),
                           ("core/migrations/versions", ".py")):
        read = [p for p in opened if p.suffix == suffix and p.is_relative_to(installed / folder)]
        assert read, f"no {folder}/*{suffix} read from {installed}"
    assert [p for p in opened if p.is_relative_to(PROJECT_DIR)] == []
    written = {Path(path) for path, writes in report["opened"] if writes and "__pycache__" not in Path(path).parts}
    assert written and [p for p in written if not p.is_relative_to(work)] == []
    assert _tree(venv) == installed_before  # nothing written inside the environment

    assert report["schema"] == {"revision": head_revision()}
    assert report["files"] > 0 and report["published"]["current"] > 0
    assert "ind_site_year" in " ".join(report["models"])
    headline = report["headline"]
    assert headline["evaluation_year"] == 2027 and headline["as_of"] == AS_OF
    assert headline["grade"] and float(headline["score"]) >= 0 and headline["run_id"].startswith("2027-")
    assert headline["person_times_reported"] > 0
