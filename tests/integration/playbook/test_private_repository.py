"""The build playbook on a private git repository (HTTP with basic auth): the flow reads it with the
controller's git credentials (a credential helper, as a CI job would have), the cluster's build clones
it with the source secret the playbook names."""

from __future__ import annotations

import subprocess

import pytest

from git_http import GitHttpServer
from test_build_playbook import flow_vars, recap
from testlib import make_git_repo, run_playbook

pytestmark = pytest.mark.slow

USER, PASSWORD = "builder", "s3cret-flow-token"


def test_a_private_repository_builds_with_a_source_secret(osbs_engine, tmp_path):
    root = tmp_path / "git-root"
    root.mkdir()
    server = GitHttpServer(root, USER, PASSWORD).start()
    try:
        work = tmp_path / "pb-private"
        make_git_repo(work, {"Dockerfile": "FROM scratch\nCOPY hello /hello\nLABEL name=osbs/pb-private\n", "hello": "private\n"})
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "pb-private.git")], check=True)
        uri = "%s/pb-private.git" % server.base
        # The controller's credentials: a git credential store, configured through the environment.
        store = tmp_path / "git-credentials"
        store.write_text("http://%s:%s@127.0.0.1:%d\n" % (USER, PASSWORD, server.httpd.server_address[1]))
        store.chmod(0o600)
        git_env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": "store --file=%s" % store}

        osbs_engine.kubectl("create", "secret", "generic", "pb-git-creds", "--type=kubernetes.io/basic-auth",
                            "--from-literal=username=%s" % USER, "--from-literal=password=%s" % PASSWORD,
                            "--validate=false", namespace=osbs_engine.namespace)

        without = run_playbook(osbs_engine, "osbs.flow.build", flow_vars(osbs_engine, uri), env=git_env)
        assert recap(without.stdout)["failed"] == 1
        assert "the server wants credentials: give the BuildConfig a source secret" in without.stdout

        result = run_playbook(osbs_engine, "osbs.flow.build", flow_vars(osbs_engine, uri, git_source_secret="pb-git-creds"), env=git_env)
        assert recap(result.stdout)["failed"] == 0, result.stdout[-3000:]
        assert "Complete (started)" in result.stdout
        assert PASSWORD not in result.stdout
        bc_name = [line for line in result.stdout.splitlines() if "build      :" in line][0].split(":", 1)[1].split()[0].rsplit("-", 1)[0]
        assert '"pb-git-creds"' in osbs_engine.kubectl("get", "bc", bc_name, "-o", "jsonpath={.spec.source.sourceSecret}",
                                                        namespace=osbs_engine.namespace).stdout
    finally:
        server.stop()
