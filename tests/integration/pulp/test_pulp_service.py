"""osbs_local.pulp.PulpService: a real Pulp that starts idempotently, stops fully and keeps its data."""

import json
import os

import pytest
import requests

from osbs_local.services import pulp as pulp_module

pytestmark = pytest.mark.pulp


def process_runs(pid):
    """True while pid exists and is not a zombie (this sandbox's pid 1 may never reap orphans)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def api(env, method, path, **kwargs):
    return requests.request(
        method, env["PULP_URL"] + path, auth=(env["PULP_USERNAME"], env["PULP_PASSWORD"]),
        verify=env["PULP_CA_BUNDLE"], timeout=30, **kwargs,
    )


def test_start_gives_a_tls_api_with_an_online_worker_and_content_app(pulp, pki):
    env = pulp.env()
    assert env["PULP_URL"].startswith("https://127.0.0.1:")
    assert env["PULP_USERNAME"] == "admin"
    assert env["PULP_CA_BUNDLE"] == str(pki["ca_cert"])
    status = api(env, "GET", "/pulp/api/v3/status/").json()
    assert status["online_workers"] and status["online_content_apps"]
    versions = {item["component"]: item["version"] for item in status["versions"]}
    assert versions["core"] == pulp_module.PULPCORE_VERSION
    assert versions["container"] == pulp_module.PULP_CONTAINER_VERSION
    assert api(dict(env, PULP_PASSWORD="wrong"), "GET", "/pulp/api/v3/users/").status_code == 401
    assert oct((pulp.dir / "admin-password").stat().st_mode & 0o777) == "0o600"
    timings = json.loads((pulp.dir / "timings.json").read_text())
    assert timings["total"] > 0


def test_start_again_while_running_is_a_no_op(pulp):
    env = pulp.env()
    pids = json.loads((pulp.dir / "pids.json").read_text())
    assert pulp.start() == env
    assert set(pulp.timings) == {"already_running"}
    assert json.loads((pulp.dir / "pids.json").read_text()) == pids


def test_stop_ends_every_process_and_a_restart_keeps_the_data(pulp):
    env = pulp.env()
    created = api(env, "POST", "/pulp/api/v3/repositories/container/container/", json={"name": "kept-across-restart"})
    assert created.status_code == 201, created.text
    pids = json.loads((pulp.dir / "pids.json").read_text())
    postgres_pid = int((pulp.pg_data / "postmaster.pid").read_text().split()[0])

    pulp.stop()
    for pid in [*pids.values(), postgres_pid]:
        assert not process_runs(pid), pid
    with pytest.raises(requests.ConnectionError):
        api(env, "GET", "/pulp/api/v3/status/")
    pulp.stop()  # stopping a stopped Pulp is fine

    assert pulp.start() == env  # same ports and password: DIR/env stays valid
    assert "db_restore" not in pulp.timings and "db_migrate" not in pulp.timings
    found = api(env, "GET", "/pulp/api/v3/repositories/container/container/", params={"name": "kept-across-restart"})
    assert found.json()["count"] == 1


def test_a_state_dir_the_postgres_user_cannot_reach_gets_its_cluster_outside_and_destroy_removes_it(tmp_path, pki):
    # pytest's tmp_path lies under a 0700 directory: PostgreSQL (run as the postgres user) cannot enter it.
    service = pulp_module.PulpService(tmp_path / "state", pki)
    cluster = None
    try:
        env = service.start()
        cluster = service.pg_dir
        assert cluster.parent == pulp_module.PG_FALLBACK_ROOT
        assert (service.pg_dir / "state-dir").read_text().strip() == str((tmp_path / "state").resolve())
        assert api(env, "GET", "/pulp/api/v3/status/").json()["online_workers"]
    finally:
        service.destroy()
    assert cluster is not None and not cluster.exists()
