# syntax=docker/dockerfile:1
#
# Image for every Airflow component of the Yuhang skills-assessment pipeline (api-server, scheduler,
# dag-processor, celery worker, triggerer, init). Built once by docker-compose.yaml and shared by all
# services.
#
# Everything is installed at BUILD time from requirements.lock (the project's exact freeze); nothing is
# pip-installed when a container starts (no _PIP_ADDITIONAL_REQUIREMENTS).
#
# The Airflow and Python versions in the tag below must match the apache-airflow pin in requirements.lock,
# requires-python in pyproject.toml and the tag docker-compose.yaml gives the built image
# (AIRFLOW_IMAGE_NAME, <airflow>-python<python>); tests/test_docker_compose.py checks all three.
FROM apache/airflow:3.3.2-python3.11

# Project-wide settings baked into the image (docker-compose.yaml repeats them for clarity).
#   GX_ANALYTICS_ENABLED=false  - Great Expectations must not send usage analytics (personal data pipeline,
#                                 and the production network has no route to the internet anyway).
#   YUHANG_PROJECT_DIR          - the project folder; runs write under its var/ unless told otherwise
#                                 (the SQL, policy and expectation suites ship inside the package).
ENV GX_ANALYTICS_ENABLED=false \
    YUHANG_PROJECT_DIR=/opt/airflow

# The official evaluation report (绩效评价报告) is converted from DOCX to PDF by LibreOffice Writer
# headless; the Chinese fonts are Noto CJK (serif for 仿宋-style body text, sans for 黑体-style headings).
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libreoffice-writer-nogui fonts-noto-cjk \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

# The base image already runs as the unprivileged 'airflow' user (uid 50000, gid 0) with
# AIRFLOW_HOME=/opt/airflow; say so explicitly so that the pip installs below never run as root.
USER airflow
WORKDIR /opt/airflow

# 1. Third-party dependencies, pinned exactly. Copied on their own so this slow layer is rebuilt only when
#    the lock changes. apache-airflow is also named with the base image's own version, so that a lock
#    pinning a different Airflow makes pip fail here instead of silently replacing the image's Airflow.
COPY --chown=airflow:0 requirements.lock /opt/airflow/requirements.lock
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.lock

# 2. The domain package (include/yuhang_skills). Its dependencies are already in the lock, hence
#    --no-deps. Editable, so that docker-compose.yaml can bind-mount ./include over /opt/airflow/include
#    during development and the workers import the mounted code.
COPY --chown=airflow:0 pyproject.toml /opt/airflow/pyproject.toml
COPY --chown=airflow:0 include/ /opt/airflow/include/
RUN pip install --no-cache-dir --no-deps -e /opt/airflow \
 && python -c "import yuhang_skills"

# 3. DAGs and plugins, plus the folders the pipeline reads from / writes to:
#    inbox/ (incoming files), outputs/ (reports) and var/ (YUHANG_VAR_DIR: archive, data docs).
#    docker-compose.yaml bind-mounts them; they are created here so the image also works without mounts.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
RUN mkdir -p /opt/airflow/inbox /opt/airflow/outputs /opt/airflow/var
