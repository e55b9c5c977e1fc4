"""No credential in what the build playbook prints (issue 13 item 2): a git_uri or pulp_url carrying
user:password@ is refused, and neither the play's name, the tasks' names, the messages nor any report
the run writes shows the user or the password, at default verbosity and at -v."""

from __future__ import annotations

import subprocess

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
