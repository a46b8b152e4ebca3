"""What the Airflow DAGs call: the task functions, the assets they hand to each other, how tasks fail and
the failure alerts."""
