"""Issue 13, recovery on the engine host: after `kill -9` of the engine and `osbs-local up`, no process of an
interrupted build survives and none of its credential files is left; three simultaneous `up` on a fresh state
directory end with one engine. Real engines, real buildah builds, real kill -9."""

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

from osbs_local.executor.base_image import build_busybox_base
from osbs_local.handle import OSBS_LOCAL
from osbs_local.services.registry import pid_alive
from osbs_local.sample_repo import make_git_repo
from testlib import wait_for

BUILDS = "/apis/build.openshift.io/v1/namespaces/osbs"


def processes_with(marker: str) -> list[int]:
    """pids (not zombies) whose command line contains marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes() and pid_alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_no_process_or_credential_file_of_a_build_outlives_a_killed_engine(engines, tmp_path):
    engine = engines.start(tmp_path / "state")
    marker = f"osbs-orphan-{uuid.uuid4().hex[:12]}"
    try:
        base = f"{engine.registry}/osbs/busybox:latest"
        build_busybox_base(base, storage_dir=tmp_path / "base-storage", auth_file=engine.env["REGISTRY_AUTH_FILE"],
                           cert_dir=engine.state_dir / "certs.d" / engine.registry)
        uri, _ = make_git_repo(tmp_path / "repo", {"Dockerfile": f"FROM {base}\nRUN echo sleeping && sleep 600 && echo {marker}\n"})
        http = engine.session()
        bc = {"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": "slow"},
              "spec": {"source": {"git": {"uri": uri, "ref": "main"}},
                       "strategy": {"type": "Docker", "dockerStrategy": {}},
                       "output": {"to": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/slow:latest"}}}}
        assert http.post(f"{engine.base}{BUILDS}/buildconfigs", json=bc).status_code == 201
        response = http.post(f"{engine.base}{BUILDS}/buildconfigs/slow/instantiate",
                             json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": "slow"}})
        assert response.status_code == 201, response.text
        build_dir = engine.state_dir / "builds" / "osbs" / "slow-1"
        wait_for(lambda: "sleeping" in (build_dir / "build.log").read_text().splitlines() if (build_dir / "build.log").exists()
                 else False, timeout=180, what="the build's RUN step")
        assert processes_with(marker), "the build's step is not running"
        assert list(build_dir.glob("work/*-auth.json")), "the build's credential files were not where this test looks"

        serve_pid = int((engine.state_dir / "serve.pid").read_text())
        os.kill(serve_pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(serve_pid), timeout=10, what="the engine to die")
        engines.start(engine.state_dir)

        phase = http.get(f"{engine.base}{BUILDS}/builds/slow-1").json()["status"]
        assert phase["phase"] == "Error" and phase["reason"] == "EngineRestarted", phase
        survivors = processes_with(marker)
        kill_all(survivors)
        assert not survivors, "processes of the interrupted build survived the engine: %s" % survivors
        assert not list(build_dir.glob("work/*-auth.json")), "the interrupted build's credential files were left behind"
    finally:
        kill_all(processes_with(marker))
        engines.stop(engine)


def test_three_simultaneous_ups_on_a_fresh_state_dir_start_one_engine(engines, tmp_path):
    state_dir = tmp_path / "state"
    ups = [subprocess.Popen([OSBS_LOCAL, "up", "--state-dir", str(state_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for _ in range(3)]
    try:
        outputs = [up.communicate(timeout=300)[0] for up in ups]
        assert [up.returncode for up in ups] == [0, 0, 0], outputs
        pids = set()
        for output in outputs:
            pids.update(int(pid) for pid in re.findall(r"\(pid (\d+)\)", output))
        assert len(pids) == 1, outputs
        pid = pids.pop()
        assert pid_alive(pid), outputs
        assert int((state_dir / "serve.pid").read_text()) == pid
        assert sum("started" in output for output in outputs) == 1, outputs
    finally:
        subprocess.run([OSBS_LOCAL, "down", "--state-dir", str(state_dir)], capture_output=True, timeout=120)


def test_down_after_a_killed_engine_stops_the_registry_it_left(engines, tmp_path):
    """`down` after a kill -9 of the engine stops the registry the dead engine left running."""
    engine = engines.start(tmp_path / "state")
    registry_pid = int((engine.state_dir / "registry" / "registry.pid").read_text())
    os.kill(int((engine.state_dir / "serve.pid").read_text()), signal.SIGKILL)
    engine.cli("down")
    wait_for(lambda: not pid_alive(registry_pid), timeout=20, what="the registry to stop")
