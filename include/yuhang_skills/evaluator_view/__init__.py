"""The evaluator's view inside Airflow: read-only pages over the warehouse (data.py), served by a
FastAPI app (app.py) that the plugin in ``plugins/yuhang_evaluator_view.py`` mounts in the api-server."""
