#!/usr/bin/env bash
# Creates the pipeline's warehouse next to Airflow's metadata database: a login role and a database
# it owns, closed to everyone else. docker-compose.yaml mounts this folder at
# /docker-entrypoint-initdb.d, where the postgres image runs it once, when its data volume is
# still empty, with psql talking to the image's temporary server as POSTGRES_USER.
#
#   WAREHOUSE_DB_PASSWORD   password of the role (required; from .env)
#   WAREHOUSE_DB_NAME       database name (default: warehouse)
#   WAREHOUSE_DB_USER       role name (default: warehouse)
#
# The Airflow connection yuhang_warehouse (AIRFLOW_CONN_YUHANG_WAREHOUSE) must name the same
# database, role and password. A volume created before this script existed needs it run by hand:
#   docker compose exec postgres /docker-entrypoint-initdb.d/10-create-warehouse.sh
set -euo pipefail

: "${WAREHOUSE_DB_PASSWORD:?WAREHOUSE_DB_PASSWORD is not set (see .env.example)}"

psql -v ON_ERROR_STOP=1 --no-psqlrc \
     --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
     -v warehouse_db="${WAREHOUSE_DB_NAME:-warehouse}" \
     -v warehouse_user="${WAREHOUSE_DB_USER:-warehouse}" \
     -v warehouse_password="${WAREHOUSE_DB_PASSWORD}" <<'EOSQL'
CREATE ROLE :"warehouse_user" LOGIN PASSWORD :'warehouse_password';
CREATE DATABASE :"warehouse_db" OWNER :"warehouse_user";
REVOKE ALL ON DATABASE :"warehouse_db" FROM PUBLIC;
EOSQL
echo "warehouse database ${WAREHOUSE_DB_NAME:-warehouse} created, owned by ${WAREHOUSE_DB_USER:-warehouse}"
