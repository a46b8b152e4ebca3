"""Assets the DAGs hand to each other (light: safe to import when a DAG file is parsed)."""

from airflow.sdk import Asset

STAGING = Asset(name="yuhang_staging", uri="file://yuhang/warehouse/staging")
INDICATORS = Asset(name="yuhang_indicators", uri="file://yuhang/warehouse/indicators")
EVALUATION = Asset(name="yuhang_evaluation", uri="file://yuhang/warehouse/evaluation")

DEFAULT_ARGS = {"owner": "yuhang-data", "retries": 2}
TAGS = ["yuhang"]
