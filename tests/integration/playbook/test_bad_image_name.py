"""Issue 13 item 9 through the flow: a Dockerfile whose `name` label cannot be a repository name stops the
playbook at the source step, saying which label, which value and what to do, before any object is written."""

from __future__ import annotations

import json

from testlib import make_git_repo, run_playbook


def test_a_bad_name_label_stops_the_playbook_before_any_write(osbs_engine, busybox_base, tmp_path):
    uri, _ = make_git_repo(tmp_path / "bad-label", {"Dockerfile": "FROM %s\nLABEL name=Bad/NAME\nRUN true\n" % busybox_base})
    writes = osbs_engine.writes()
    streams = json.loads(osbs_engine.kubectl("get", "is", "-o", "json", namespace=osbs_engine.namespace).stdout)["items"]
    result = run_playbook(osbs_engine, "osbs.flow.build", {
        "git_uri": uri, "git_branch": "main", "registry_uri": osbs_engine.registry,
        "registry_secret": osbs_engine.registry_secret, "osbs_namespace": osbs_engine.namespace, "autorebuild": False,
    })
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "the 'name' label 'Bad/NAME' cannot be the name of an image repository: it has upper-case letters" in output, output[-3000:]
    assert osbs_engine.writes() == writes
    bcs = json.loads(osbs_engine.kubectl("get", "bc", "-o", "json", namespace=osbs_engine.namespace).stdout)["items"]
    assert not [bc for bc in bcs if bc["spec"]["source"]["git"]["uri"] == uri]
    after = json.loads(osbs_engine.kubectl("get", "is", "-o", "json", namespace=osbs_engine.namespace).stdout)["items"]
    assert len(after) == len(streams)
