"""Issue 13 on the engine host: no value of a Build becomes a command option, a git server that never answers
fails the build in time, the engine's children get an environment built on purpose, and Pulp's database
refuses every local user but the engine's. Real git, buildah, docker-registry and PostgreSQL throughout."""

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from osbs_local.executor import runner
from osbs_local.executor.process import BuildFailure
from osbs_local.services.registry import pid_alive
from testlib import silent_server


@pytest.fixture(scope="module")
def engine_registry(engine):
    """The session engine's registry, as run_build is given it: host, dockercfg-shaped auths and the certs.d tree."""
    auths = json.loads(Path(engine.env["REGISTRY_AUTH_FILE"]).read_text())["auths"]
    return SimpleNamespace(host=engine.registry, auths=auths, cert_dir=engine.state_dir / "certs.d")


@pytest.fixture(scope="module")
def storage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("storage")


def git(path, *args):
    return subprocess.run(["git", "-C", str(path), "-c", "user.name=Ann", "-c", "user.email=ann@example.com", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def source(tmp_path, busybox_base):
    """A repository with a Dockerfile on main, and a marker path that a command run by an injected option would create."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(f"FROM {busybox_base}\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "app")
    return repo, tmp_path / "MARKER"


def run(engine_registry, storage_dir, tmp_path, build, **kwargs):
    lines = []
    try:
        return runner.run_build(build, workdir=tmp_path / "work", storage_dir=storage_dir, log=lines.append,
                                push_auths=engine_registry.auths, pull_auths=engine_registry.auths, ca_dir=engine_registry.cert_dir,
                                cancel=threading.Event(), **kwargs), lines
    except BuildFailure as failure:
        return failure, lines


def spec(uri, ref="main", strategy=None, context_dir=None, output=None):
    source = {"git": {"uri": uri, "ref": ref}}
    if context_dir is not None:
        source["contextDir"] = context_dir
    return {"kind": "Build", "metadata": {"name": "hostile-1", "namespace": "osbs"},
            "spec": {"source": source, "strategy": {"type": "Docker", "dockerStrategy": strategy or {}},
                     "output": {"to": {"kind": "DockerImage", "name": output}} if output else {}}}


@pytest.mark.parametrize("ref", ["--upload-pack=touch {marker}", "-u touch {marker}", "--config=core.sshCommand=touch {marker}",
                                 "main:refs/heads/--upload-pack=touch {marker}", "--upload-pack=touch {marker};main"])
def test_an_option_looking_ref_runs_nothing_and_fails_the_build(engine_registry, storage_dir, tmp_path, source, ref):
    repo, marker = source
    failure, lines = run(engine_registry, storage_dir, tmp_path, spec(f"file://{repo}", ref=ref.format(marker=marker)))
    assert not marker.exists(), "a command named in spec.source.git.ref ran on the engine host"
    assert isinstance(failure, BuildFailure) and failure.reason == "FetchSourceFailed", failure
    assert "was not found in the git repository" in failure.message


@pytest.mark.parametrize("uri", ["--upload-pack=touch {marker}", "-u{marker}", "ext::sh -c touch% {marker}",
                                 "ext::sh -c touch% {marker}%>&2", "fd::0", "--config=core.sshCommand=touch {marker}"])
def test_an_option_or_helper_uri_runs_nothing_and_fails_the_build(engine_registry, storage_dir, tmp_path, source, monkeypatch, uri):
    repo, marker = source
    # Even where the engine user's own git configuration allows the ext transport.
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[protocol \"ext\"]\n\tallow = always\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    failure, lines = run(engine_registry, storage_dir, tmp_path, spec(uri.format(marker=marker)))
    assert not marker.exists(), "a command named in spec.source.git.uri ran on the engine host"
    assert isinstance(failure, BuildFailure) and failure.reason == "FetchSourceFailed", failure
    assert "is not a git URI the builder reads" in failure.message


def test_a_ref_is_plain_data_branch_tag_and_commit_still_build(engine_registry, storage_dir, tmp_path, source):
    repo, _ = source
    git(repo, "tag", "v1")
    commit = git(repo, "rev-parse", "HEAD")
    for number, ref in enumerate(("main", "refs/heads/main", "v1", commit, "")):
        result, lines = run(engine_registry, storage_dir, tmp_path / str(number), spec(f"file://{repo}", ref=ref))
        assert not isinstance(result, BuildFailure), (ref, result, lines)
        assert result["revision"]["commit"] == commit


def test_option_looking_build_args_context_dir_and_dockerfile_path_are_plain_data(engine_registry, storage_dir, tmp_path, source):
    repo, marker = source
    (repo / "--context=x").mkdir()
    (repo / "--context=x" / "-f").write_text((repo / "Dockerfile").read_text())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "odd names")
    strategy = {"dockerfilePath": "-f",
                "buildArgs": [{"name": f"--iidfile={marker}", "value": f"--iidfile={marker}"},
                              {"name": "GREETING", "value": f"--iidfile={marker}"}]}
    result, lines = run(engine_registry, storage_dir, tmp_path, spec(f"file://{repo}", strategy=strategy, context_dir="--context=x",
                                                             output=f"{engine_registry.host}/osbs/hostile:latest"))
    assert not isinstance(result, BuildFailure), (result, lines)
    assert not marker.exists()
    assert result["digest"].startswith("sha256:")


@pytest.fixture
def silent_git_server():
    """A git server that accepts every connection and never answers."""
    with silent_server() as (port, held):
        yield f"127.0.0.1:{port}", held


@pytest.mark.parametrize("scheme", ["http", "git"])
def test_a_git_server_that_never_answers_fails_the_build_within_the_timeout(engine_registry, storage_dir, tmp_path, silent_git_server,
                                                                           scheme):
    address, accepted = silent_git_server
    started = time.monotonic()
    failure, lines = run(engine_registry, storage_dir, tmp_path, spec(f"{scheme}://{address}/app.git"), git_timeout=3)
    elapsed = time.monotonic() - started
    assert accepted, "git never connected"
    assert isinstance(failure, BuildFailure) and failure.reason == "FetchSourceFailed", failure
    assert elapsed < 30, elapsed
    assert f"the git server {address} did not answer within 3 s" in failure.message


def registry_line(engine) -> str:
    """`osbs-local status`'s registry line: "registry  : https://HOST  running" (or "not running")."""
    return next(line for line in engine.cli("status", check=False).stdout.splitlines() if line.startswith("registry "))


def test_the_registry_starts_with_registry_variables_in_the_callers_environment(engines, tmp_path):
    hostile = {"REGISTRY_AUTH_FILE": "/nonexistent/auth.json", "REGISTRY_HTTP_ADDR": "127.0.0.1:1",
               "REGISTRY_STORAGE": "s3", "REGISTRY_AUTH": "silly", "REGISTRY_HTTP_TLS_CERTIFICATE": "/nonexistent"}
    saved = {name: os.environ.get(name) for name in hostile}
    os.environ.update(hostile)
    try:
        engine = engines.start(tmp_path / "state")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        assert registry_line(engine).endswith(" running")
        pid = int((engine.state_dir / "registry" / "registry.pid").read_text())
        assert b"REGISTRY_AUTH_FILE" not in Path(f"/proc/{pid}/environ").read_bytes()
        os.kill(pid, 9)
        deadline = time.monotonic() + 30
        restarted = None
        while time.monotonic() < deadline:
            try:
                restarted = int((engine.state_dir / "registry" / "registry.pid").read_text())
            except (OSError, ValueError):
                restarted = None
            if restarted and restarted != pid and pid_alive(restarted) and registry_line(engine).endswith(" running"):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the registry was not restarted after kill -9; serve.log:\n"
                        + (engine.state_dir / "logs" / "serve.log").read_text()[-3000:])
    finally:
        engines.stop(engine)


@pytest.mark.pulp
def test_no_other_local_user_connects_to_pulps_database(tmp_path_factory):
    from osbs_local.services.pki import ensure_pki
    from osbs_local.services.pulp import PulpService

    state_dir = Path(tempfile.mkdtemp(prefix="osbs-pulp-security-"))
    state_dir.chmod(0o755)  # PostgreSQL runs as the postgres user
    service = PulpService(state_dir, ensure_pki(state_dir / "pki"))
    try:
        service.start()
        port = service.ports["postgres"]
        for user in ("nobody", "postgres"):
            attempt = subprocess.run(["runuser", "-u", user, "--", "psql", "-w", "-h", "127.0.0.1", "-p", str(port), "-U",
                                      "postgres", "-d", "pulp", "-Atc", "SELECT 1"], capture_output=True, text=True, cwd="/",
                                     env={"PATH": os.environ["PATH"], "LC_ALL": "C"})
            assert attempt.returncode != 0 and attempt.stdout.strip() != "1", (user, attempt.stdout, attempt.stderr)
        password_file = state_dir / "pulp" / "db-password"
        assert password_file.stat().st_mode & 0o077 == 0
        # The engine itself still gets in (Pulp answered above), and with the password only.
        status = service._status()
        assert status and status["database_connection"]["connected"]
    finally:
        service.stop()
        service.postgres.remove_fallback()
        subprocess.run(["rm", "-rf", str(state_dir)])

