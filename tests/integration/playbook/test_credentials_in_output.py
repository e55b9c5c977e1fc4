"""No credential in what the build playbook prints (issue 13 item 2): a git_uri or pulp_url carrying
user:password@ is refused, and neither the play's name, the tasks' names, the messages nor any report
the run writes shows the user or the password, at default verbosity and at -v. The autorebuild role's
printed and written report is checked with a dependent whose BuildConfig (written with `oc`, which
the cluster allows) carries them."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from git_http import GitHttpServer
from test_build_playbook import flow_vars, recap
from testlib import make_git_repo, run_playbook

# Words that appear nowhere else in a run's output, so any occurrence is the credential leaking.
USER, PASSWORD = "flowuser-q7x", "s3cret-in-the-uri-9k2"


def assert_no_credential(result, *report_files):
    output = result.stdout + result.stderr
    for secret in (USER, PASSWORD):
        assert secret not in output, "%r printed:\n%s" % (secret, "\n".join(line for line in output.splitlines() if secret in line))
    for report in report_files:
        if report.exists():
            text = report.read_text()
            assert USER not in text and PASSWORD not in text, "credential in %s:\n%s" % (report, text)


@pytest.fixture
def private_repository(tmp_path):
    """A real private repository behind basic auth: the URI with USER:PASSWORD@ would fetch it."""
    root = tmp_path / "git-root"
    root.mkdir()
    server = GitHttpServer(root, USER, PASSWORD).start()
    work = tmp_path / "pb-creds"
    make_git_repo(work, {"Dockerfile": "FROM scratch\nCOPY hello /hello\nLABEL name=osbs/pb-creds\n", "hello": "creds\n"})
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "pb-creds.git")], check=True)
    host_port = "127.0.0.1:%d" % server.httpd.server_address[1]
    try:
        yield "http://%s:%s@%s/pb-creds.git" % (USER, PASSWORD, host_port), "http://%s/pb-creds.git" % host_port
    finally:
        server.stop()


# ANSIBLE_VERBOSITY is the setting -v counts into (the option's default), so 1 is exactly -v.
@pytest.mark.parametrize("verbosity", ["0", "1"], ids=["default", "-v"])
def test_a_git_uri_with_credentials_is_refused_without_printing_them(osbs_engine, private_repository, tmp_path, verbosity):
    uri_with_credentials, _plain_uri = private_repository
    report = tmp_path / "autorebuild-report.json"
    values = flow_vars(osbs_engine, uri_with_credentials, autorebuild=True, autorebuild_report_path=str(report))
    result = run_playbook(osbs_engine, "osbs.flow.build", values, env={"ANSIBLE_VERBOSITY": verbosity})
    assert recap(result.stdout)["failed"] == 1, result.stdout[-3000:]
    assert "carries credentials" in result.stdout
    # The URI is still recognisable, with its user info masked.
    assert "http://***@127.0.0.1:" in result.stdout
    assert_no_credential(result, report)


@pytest.mark.parametrize("verbosity", ["0", "1"], ids=["default", "-v"])
def test_a_pulp_url_with_credentials_is_not_printed(osbs_engine, private_repository, verbosity):
    """pulp_url is shown when the Pulp settings are incomplete (no password): shown masked."""
    _uri_with_credentials, plain_uri = private_repository
    values = flow_vars(osbs_engine, plain_uri, pulp_url="https://%s:%s@pulp.example.com" % (USER, PASSWORD), pulp_password="")
    result = run_playbook(osbs_engine, "osbs.flow.build", values, env={"ANSIBLE_VERBOSITY": verbosity, "PULP_PASSWORD": ""})
    assert recap(result.stdout)["failed"] == 1, result.stdout[-3000:]
    assert "pulp_url is set (https://***@pulp.example.com)" in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert_no_credential(result)


STREAM = "pb-cred-base"


@pytest.fixture(scope="module")
def dependent_with_credentials(osbs_engine, busybox_base):
    """An ImageStreamTag and a BuildConfig that depends on it with USER:PASSWORD@ in its git URI."""
    engine, namespace = osbs_engine, osbs_engine.namespace
    imported = engine.session().post(
        "%s/apis/image.openshift.io/v1/namespaces/%s/imagestreamimports" % (engine.base, namespace),
        json={"kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": STREAM},
              "spec": {"import": True, "images": [{"from": {"kind": "DockerImage", "name": busybox_base}, "to": {"name": "latest"}}]}},
        timeout=60,
    )
    assert imported.status_code in (200, 201), imported.text
    # Port 9 (discard) refuses the connection: the dependent's row fails at once, naming the masked URI.
    uri = "https://%s:%s@127.0.0.1:9/containers/pb-cred-app.git" % (USER, PASSWORD)
    buildconfig = {
        "kind": "BuildConfig", "apiVersion": "build.openshift.io/v1",
        "metadata": {"name": "pb-cred-app", "namespace": namespace,
                     "annotations": {"osbs.flow/bump-release": json.dumps({"git_ref": "c" * 40, "git_branch": "main"})}},
        "spec": {
            "source": {"type": "Git", "git": {"uri": uri, "ref": "main"}},
            "strategy": {"type": "Docker", "dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": STREAM + ":latest"}}},
            "output": {"to": {"kind": "DockerImage", "name": "%s/osbs/pb-cred-app:latest" % engine.registry}},
            "triggers": [{"type": "ImageChange", "imageChange": {"paused": True}}],
        },
    }
    created = engine.session().post("%s/apis/build.openshift.io/v1/namespaces/%s/buildconfigs" % (engine.base, namespace),
                                    json=buildconfig, timeout=60)
    assert created.status_code == 201, created.text
    return STREAM + ":latest"


@pytest.mark.parametrize("verbosity", ["0", "1"], ids=["default", "-v"])
def test_the_autorebuild_report_of_a_dependent_with_credentials_shows_none(osbs_engine, dependent_with_credentials, tmp_path,
                                                                          verbosity):
    play = tmp_path / "autorebuild.yml"
    play.write_text(textwrap.dedent("""\
        - name: Rebuild the dependents of {{ osbs_import.imagestreamtag }}
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Run the autorebuild role
              ansible.builtin.include_role:
                name: osbs.flow.autorebuild
        """))
    report = tmp_path / "report.json"
    result = run_playbook(osbs_engine, play, {
        "osbs_namespace": osbs_engine.namespace,
        "osbs_import": {"imagestreamtag": dependent_with_credentials, "digest": ""},
        "osbs_autorebuild_report_path": str(report),
        "osbs_wait_timeout": 60,
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }, env={"ANSIBLE_VERBOSITY": verbosity})
    assert recap(result.stdout)["failed"] == 1, result.stdout[-3000:]
    assert "Autorebuild failed for pb-cred-app" in result.stdout, result.stdout[-3000:]
    rows = {row["buildconfig"]: row for row in json.loads(report.read_text())}
    assert "***@127.0.0.1:9" in rows["pb-cred-app"]["reason"], rows["pb-cred-app"]
    assert_no_credential(result, report)
