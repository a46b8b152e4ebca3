"""The evaluator view as an Airflow plugin: the FastAPI app of ``yuhang_skills.evaluator_view``
mounted in the api-server under /yuhang-evaluation, and a nav entry "绩效评价 Evaluation" that shows
it inside the Airflow UI. Every route checks the Airflow user (see the app's module docstring)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from yuhang_skills.evaluator_view.app import URL_PREFIX, app


class YuhangEvaluatorView(AirflowPlugin):
    name = "yuhang_evaluator_view"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Yuhang evaluation (evaluator view)"}]
    external_views = [
        {
            "name": "绩效评价 Evaluation",
            "href": URL_PREFIX.lstrip("/") + "/",  # relative: works under a base URL or a proxy prefix
            "url_route": "yuhang-evaluation",  # shown inside the UI at <base>/plugin/yuhang-evaluation
            "destination": "nav",
            "nav_top_level": True,  # a button of its own in the nav bar, not under "Plugins"
        }
    ]
