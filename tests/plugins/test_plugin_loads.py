"""The evaluator view loads as an Airflow plugin: through the README's command, and through
Airflow's plugins manager in this process; the plugin file stays thin."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "YUHANG_", "PYTEST", "VIRTUAL_ENV"))}
    return {**env, **extra}


def test_dev_airflow_plugins_lists_the_evaluator_view(tmp_path):
    """`./dev airflow plugins -o json`, as the README says, from a clean shell."""
    result = subprocess.run(["bash", "-c", "./dev airflow plugins -o json"], cwd=PROJECT, capture_output=True,
                            text=True, timeout=300, env=clean_env(AIRFLOW_HOME=str(tmp_path / "airflow")))
    assert result.returncode == 0, result.stderr[-3000:]
    listed = json.loads(result.stdout[result.stdout.index("["):])
    [plugin] = [p for p in listed if p["name"] == "yuhang_evaluator_view"]
    assert "/yuhang-evaluation" in str(plugin["fastapi_apps"])
    assert "绩效评价 Evaluation" in str(plugin["external_views"])
    assert plugin["source"].endswith("yuhang_evaluator_view.py")


def test_plugins_manager_loads_the_app_and_the_nav_entry():
    """Airflow's plugins manager, with the plugins folder conftest.py configures (the project's)."""
    from airflow import plugins_manager

    apps, _middlewares = plugins_manager.get_fastapi_plugins()
    mine = [a for a in apps if a["url_prefix"] == "/yuhang-evaluation"]
    assert len(mine) == 1
    routes = {getattr(r, "path", None) for r in mine[0]["app"].routes}
    assert {"/", "/runs/{run_id}", "/runs/{run_id}/files/{kind}", "/sites", "/sites/{site_code}",
            "/submissions"} <= routes
    views, _react_apps = plugins_manager._get_ui_plugins()
    assert [v["name"] for v in views if v.get("url_route") == "yuhang-evaluation"] == ["绩效评价 Evaluation"]
    assert "yuhang_evaluator_view" not in str(plugins_manager.get_import_errors())


def test_every_route_depends_on_airflows_get_user():
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.routing import APIRoute

    from yuhang_skills.evaluator_view.app import create_app

    app = create_app()
    assert any(d.dependency is get_user for d in app.router.dependencies)
    for route in app.routes:
        if isinstance(route, APIRoute):
            calls = []
            stack = list(route.dependant.dependencies)
            while stack:
                dep = stack.pop()
                calls.append(dep.call)
                stack.extend(dep.dependencies)
            assert get_user in calls, route.path
            assert route.methods <= {"GET", "HEAD"}, route.path  # reads only


def test_plugin_file_is_thin():
    source = (PROJECT / "plugins" / "yuhang_evaluator_view.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)] == ["YuhangEvaluatorView"]
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert len(source.splitlines()) < 40
