"""Issue 13 item 2 through the wave: a BuildConfig someone wrote with `oc` whose git URI carries a user and a
password (osbs_buildconfig refuses such a URI, the cluster does not) depends on the new image. Its row fails
(the git server does not exist), and the password is nowhere in the module's result: not in the rows (the
report file is written from them), the table, the message or the echoed arguments."""

from __future__ import annotations

import json

from testlib import run_module

PASSWORD = "s3cret-Wave-pa55"
STREAM = "cred-base"


def test_a_password_in_a_dependents_git_uri_is_in_no_part_of_the_wave_result(osbs_engine, busybox_base):
    engine, namespace = osbs_engine, osbs_engine.namespace
    imported = engine.session().post(
        "%s/apis/image.openshift.io/v1/namespaces/%s/imagestreamimports" % (engine.base, namespace),
        json={"kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": STREAM},
              "spec": {"import": True, "images": [{"from": {"kind": "DockerImage", "name": busybox_base},
                                                   "to": {"name": "latest"}}]}},
        timeout=60,
    )
    assert imported.status_code in (200, 201), imported.text
    uri = "https://builder:%s@127.0.0.1:9/containers/cred-app.git" % PASSWORD
    buildconfig = {
        "kind": "BuildConfig", "apiVersion": "build.openshift.io/v1",
        "metadata": {"name": "cred-app", "namespace": namespace,
                     "annotations": {"osbs.flow/bump-release": json.dumps({"git_ref": "b" * 40, "git_branch": "main"})}},
        "spec": {
            "source": {"type": "Git", "git": {"uri": uri, "ref": "main"}},
            "strategy": {"type": "Docker", "dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": STREAM + ":latest"}}},
            "output": {"to": {"kind": "DockerImage", "name": "%s/osbs/cred-app:latest" % engine.registry}},
            "triggers": [{"type": "ImageChange", "imageChange": {"paused": True}}],
        },
    }
    created = engine.session().post("%s/apis/build.openshift.io/v1/namespaces/%s/buildconfigs" % (engine.base, namespace),
                                    json=buildconfig, timeout=60)
    assert created.status_code == 201, created.text

    for fail_on_error in (True, False):
        result = run_module(engine, "osbs_autorebuild", dict(namespace=namespace, imagestreamtag=STREAM + ":latest",
                                                             fail_on_error=fail_on_error, wait_timeout=60))
        shown = json.dumps(result)
        rows = {row["buildconfig"]: row for row in result["rows"]}
        assert rows["cred-app"]["action"] == "failed", result["report_table"]
        assert "***@127.0.0.1:9" in rows["cred-app"]["reason"], rows["cred-app"]["reason"]
        assert PASSWORD not in shown, shown[:3000]
