"""The build playbook and the roles' argument specs, against osbs-local with real builds."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from testlib import make_git_repo, run_playbook


def recap(output):
    match = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def flow_vars(engine, uri, **extra):
    values = {
        "git_uri": uri,
        "git_branch": "main",
        "registry_uri": engine.registry,
        "registry_secret": engine.registry_secret,
        "osbs_namespace": engine.namespace,
        "autorebuild": False,
    }
    values.update(extra)
    return values


def scratch_image_repo(path, name):
    return make_git_repo(path, {
        "Dockerfile": "FROM scratch\nCOPY hello /hello\nLABEL name=%s\n" % name,
        "hello": "hello from %s\n" % name,
    })


@pytest.mark.slow
def test_second_run_builds_nothing_and_check_mode_writes_nothing(osbs_engine, tmp_path):
    uri, _ = scratch_image_repo(tmp_path / "pb-scratch", "osbs/pb-scratch")
    playbook = "osbs.flow.build"

    writes = osbs_engine.writes()
    checked = run_playbook(osbs_engine, playbook, flow_vars(osbs_engine, uri), check=True)
    assert recap(checked.stdout)["failed"] == 0, checked.stdout[-3000:]
    assert osbs_engine.writes() == writes, "check mode sent a write request"

    first = run_playbook(osbs_engine, playbook, flow_vars(osbs_engine, uri))
    assert recap(first.stdout)["failed"] == 0, first.stdout[-3000:]
    assert recap(first.stdout)["changed"] >= 3
    assert "Complete (started)" in first.stdout
    assert "osbs-pb-scratch:latest (updated)" in first.stdout

    writes = osbs_engine.writes()
    second = run_playbook(osbs_engine, playbook, flow_vars(osbs_engine, uri))
    assert recap(second.stdout) == {"ok": recap(second.stdout)["ok"], "changed": 0, "unreachable": 0, "failed": 0}
    assert "Complete (existing)" in second.stdout
    assert osbs_engine.writes() == writes, "a run with nothing new sent a write request"


def test_playbook_without_git_uri_says_what_to_set(osbs_engine):
    result = run_playbook(osbs_engine, "osbs.flow.build", {"git_branch": "main", "registry_uri": osbs_engine.registry})
    assert result.returncode != 0
    assert "Set git_uri, git_branch and registry_uri" in result.stdout


def write_role_play(tmp_path, role, variables):
    play = tmp_path / ("play-%s.yml" % role)
    play.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: osbs.flow.%s
              vars: %s
        """) % (role, variables))
    return play


def test_role_with_a_missing_variable_fails_before_any_work(osbs_engine, tmp_path):
    writes = osbs_engine.writes()
    play = write_role_play(tmp_path, "buildconfig", '{"osbs_source": {"git_uri": "x"}, "osbs_registry_uri": "r.io"}')
    result = run_playbook(osbs_engine, play)
    assert result.returncode != 0
    assert "Validating arguments against arg spec" in result.stdout
    assert "osbs_namespace" in result.stdout
    assert osbs_engine.writes() == writes


def test_role_with_a_wrongly_typed_variable_names_it(osbs_engine, tmp_path):
    play = write_role_play(
        tmp_path, "build",
        '{"osbs_source": {}, "osbs_buildconfig": {}, "osbs_namespace": "osbs", "osbs_wait_timeout": "soon"}',
    )
    result = run_playbook(osbs_engine, play)
    assert result.returncode != 0
    assert "osbs_wait_timeout" in result.stdout
    assert "int" in result.stdout


@pytest.mark.slow
def test_module_defaults_group_sets_the_connection(osbs_engine, tmp_path):
    play = tmp_path / "defaults.yml"
    play.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/osbs.flow.openshift:
              kubeconfig: %s
          tasks:
            - osbs.flow.osbs_build:
                namespace: %s
                buildconfig: does-not-exist
              register: result
              ignore_errors: true
            - ansible.builtin.assert:
                that:
                  - result is failed
                  - "'does not exist' in result.msg"
        """) % (osbs_engine.kubeconfig, osbs_engine.namespace))
    env_without_kubeconfig = dict(osbs_engine.env)
    env_without_kubeconfig.pop("K8S_AUTH_KUBECONFIG")
    engine = type(osbs_engine)(osbs_engine.state_dir, env_without_kubeconfig)
    result = run_playbook(engine, play)
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap(result.stdout)["failed"] == 0


@pytest.mark.slow
def test_without_registry_secret_the_builder_service_account_pushes_and_a_rerun_builds_nothing(osbs_engine, tmp_path):
    # On OpenShift a Build whose BuildConfig names no push secret gets one from the builder ServiceAccount
    # (the build controller fills spec.output.pushSecret); the rerun must not see that as another recipe.
    uri, _ = scratch_image_repo(tmp_path / "pb-builder-sa", "osbs/pb-builder-sa")
    without_secret = flow_vars(osbs_engine, uri, registry_secret="")

    first = run_playbook(osbs_engine, "osbs.flow.build", without_secret)
    assert recap(first.stdout)["failed"] == 0, first.stdout[-3000:]
    assert "Complete (started)" in first.stdout
    listed = osbs_engine.kubectl("get", "builds", "-o", "json", namespace=osbs_engine.namespace)
    ours = [b for b in json.loads(listed.stdout)["items"] if b["metadata"]["name"].startswith("pb-builder-sa-")]
    assert len(ours) == 1, [b["metadata"]["name"] for b in ours]
    assert ours[0]["spec"]["output"]["pushSecret"]["name"].startswith("builder-dockercfg-"), ours[0]["spec"]["output"]

    writes = osbs_engine.writes()
    second = run_playbook(osbs_engine, "osbs.flow.build", without_secret)
    assert recap(second.stdout)["changed"] == 0 and recap(second.stdout)["failed"] == 0, second.stdout[-3000:]
    assert "Complete (existing)" in second.stdout
    assert osbs_engine.writes() == writes, "a run with nothing new sent a write request"
