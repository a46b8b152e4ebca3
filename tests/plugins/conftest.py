"""A real api-server with the evaluator view, over a warehouse the real pipeline built.

``evaluator_view`` (module scope) does, in parallel where it can:

- the sample inbox of the demo (scale 0.1) and ``yuhang-pipeline run`` over it as of 2027-02-15
  (run -01); then a roster file a site "edited": one row with a wrong ID check character (a clear ID
  number and name that must never appear on a page) and one whose level is a ``<script>`` element
  (site-supplied text that must come back escaped), and a second run (-02); ``yuhang-pipeline
  watchdog``; and run -01 signed by every role of the policy (final);
- ``airflow db migrate`` and ``airflow api-server`` on a free port with a private AIRFLOW_HOME,
  SimpleAuthManager with a users setting and a passwords file (one ``viewer``), the project's
  plugins folder, and ``YUHANG_WAREHOUSE_URL`` pointing at a file that does not exist yet.

While the warehouse is still missing it fetches the pages once (the friendly message); then it
copies the built warehouse to that file and yields.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.include.loopback_servers import free_port, stop

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = PROJECT / ".venv" / "bin"
AS_OF = "2027-02-15"
USER, PASSWORD = "evaluator", "view-only-test-password"
CLEAR_ID = "330110199003070018"  # birth date and sequence valid; the right check character is 9, not 8
CLEAR_NAME = "欧阳明远"
SCRIPT = '<script>alert("site")</script>'
PAGES = ("", "sites", "sites/V01", "submissions", "runs/none")
SIGNERS = (("评价组", "李评"), ("复核", "周审"), ("负责人", "陈签"))  # the policy's sign-off roles, in order


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "YUHANG_", "PYTEST", "VIRTUAL_ENV"))}
    return {**env, "GX_ANALYTICS_ENABLED": "false", **extra}


def _check_character(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights)) % 11]


def plant_site_rows(inbox: Path) -> dict[str, str]:
    """Append two rows to V03's longest CSV roster (in its own encoding and header language): a
    resubmission the intake accepts in part, which changes the next run's inputs."""
    path = max(sorted(inbox.glob("*/V03/roster.csv")), key=lambda p: p.read_bytes().count(b"\n"))
    raw = path.read_bytes()
    encoding = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        encoding, text = "gb18030", raw.decode("gb18030")
    rows = list(csv.reader(io.StringIO(text)))
    header_at = next(i for i, r in enumerate(rows) if "身份证号" in r or "id_number" in r)
    header = rows[header_at]

    def col(*names: str) -> int:
        return next(header.index(n) for n in names if n in header)

    assert len(rows) > header_at + 1, f"{path} has no data rows"
    template = rows[-1]
    bad_id = list(template)
    bad_id[col("身份证号", "id_number")] = CLEAR_ID
    bad_id[col("姓名", "name")] = CLEAR_NAME
    scripted = list(template)
    scripted[col("等级", "level")] = SCRIPT
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows + [bad_id, scripted])
    path.write_bytes(out.getvalue().encode(encoding))
    return {"site": "V03", "file": str(path.relative_to(inbox)), "period": path.parts[-3]}


def http(url: str, token: str | None = None, accept: str = "text/html", method: str = "GET",
         body: bytes | None = None, content_type: str | None = None) -> tuple[int, str, dict[str, str]]:
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, headers=headers, method=method, data=body)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=60) as answer:
            return answer.status, answer.read().decode("utf-8", "replace"), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace"), dict(error.headers)


def get_token(base: str) -> str:
    status, text, _ = http(f"{base}/auth/token", accept="application/json", method="POST",
                           body=json.dumps({"username": USER, "password": PASSWORD}).encode(),
                           content_type="application/json")
    assert status == 201, (status, text[:500])
    return json.loads(text)["access_token"]


@pytest.fixture(scope="module")
def evaluator_view(tmp_path_factory):
    from yuhang_sample.generator import SampleOptions, generate

    root = tmp_path_factory.mktemp("evaluator-view")
    home, var, served = root / "airflow", root / "var", root / "served"
    home.mkdir()
    served.mkdir()
    (home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    served_url = f"sqlite:///{served / 'warehouse.sqlite'}"
    server_env = clean_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT / "plugins"),
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USER}:viewer",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__API_AUTH__JWT_SECRET="evaluator-view-test-secret-0123456789abcdef",
        AIRFLOW__API__SECRET_KEY="evaluator-view-test-key",
        YUHANG_WAREHOUSE_URL=served_url,
        YUHANG_VAR_DIR=str(served),
    )
    server_log = root / "api-server.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            ["bash", "-c", f"'{VENV_BIN}/airflow' db migrate >/dev/null && exec '{VENV_BIN}/airflow' api-server "
                           f"--host 127.0.0.1 --port {port} --workers 1"],
            cwd=PROJECT, env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pipeline_log = root / "pipeline.log"
    pipeline: dict[str, object] = {}

    def build() -> None:
        """Two evaluation runs (the second after a site resubmitted V03's roster with the planted
        rows), the watchdog, and the first run signed off by every role (final)."""
        inbox = root / "inbox"
        generate(inbox, SampleOptions(scale=0.1))
        cli = [str(VENV_BIN / "yuhang-pipeline")]
        common = ["--var-dir", str(var)]
        steps = [cli + ["run", "--inbox", str(inbox), "--as-of", AS_OF] + common, "plant",
                 cli + ["run", "--inbox", str(inbox), "--as-of", AS_OF] + common,
                 cli + ["watchdog", "--as-of", AS_OF] + common]
        steps += [cli + ["evaluation", "sign", "--run", f"{AS_OF[:4]}-{AS_OF.replace('-', '')}-01", "--role", role,
                         "--name", name] + common for role, name in SIGNERS]
        with pipeline_log.open("ab") as log:
            for step in steps:
                if step == "plant":
                    pipeline["planted"] = plant_site_rows(inbox)
                    continue
                if pipeline.get("stopped"):
                    return
                process = subprocess.Popen(step, cwd=PROJECT, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
                pipeline["process"] = process
                if process.wait(timeout=900):
                    pipeline["failed"] = " ".join(step)
                    return
        pipeline["inbox"] = inbox

    builder = threading.Thread(target=build, daemon=True)
    builder.start()
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, server_log.read_text(errors="replace")[-4000:]
            try:
                if http(f"{base}/api/v2/monitor/health", accept="application/json")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, server_log.read_text(errors="replace")[-4000:]
            time.sleep(1)
        token = get_token(base)
        empty = {page: http(f"{base}/yuhang-evaluation/{page}", token) for page in PAGES}

        builder.join(timeout=1200)
        assert "inbox" in pipeline, (pipeline, pipeline_log.read_text(errors="replace")[-4000:])
        for suffix in ("", "-wal", "-shm"):
            source = var / f"warehouse.sqlite{suffix}"
            if source.exists():
                shutil.copyfile(source, served / source.name)
        yield {"base": base, "port": port, "token": token, "empty": empty, "planted": pipeline["planted"],
               "warehouse_url": served_url, "log": server_log, "inbox": pipeline["inbox"], "var": var}
    finally:
        stop(server)
        pipeline["stopped"] = True
        if isinstance(pipeline.get("process"), subprocess.Popen):
            stop(pipeline["process"])
        builder.join(timeout=60)
