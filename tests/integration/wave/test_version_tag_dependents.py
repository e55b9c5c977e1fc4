"""The build playbook tags the image as OSBS did and imports every primary tag into the ImageStream (issue 15):
a dependent built FROM base:1.0 is rebuilt when a new 1.0-N of the base appears; one pinned FROM base:1.0-N is not;
and the wave carries on to a dependent built FROM the rebuilt dependent's version tag."""

from __future__ import annotations

import json
import re

import pytest

from osbs_local.registry_client import RegistryClient, RegistryError
from testlib import commit_files, make_git_repo, run_module, run_playbook, wait_for

pytestmark = pytest.mark.slow


def recap(output):
    match = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def playbook(engine, uri, tmp_path, autorebuild=False):
    report = tmp_path / ("report-%s.json" % uri.rsplit("/", 1)[-1])
    result = run_playbook(engine, "osbs.flow.build", {
        "git_uri": uri, "git_branch": "main", "registry_uri": engine.registry, "registry_secret": engine.registry_secret,
        "autorebuild": autorebuild, "autorebuild_report_path": str(report),
    })
    assert recap(result.stdout)["failed"] == 0, result.stdout[-4000:]
    return result, (json.loads(report.read_text()) if report.exists() else None)


def registry_put_count(engine):
    """The PUTs (manifests and blob uploads) the registry has answered: its access log."""
    text = (engine.state_dir / "registry" / "registry.log").read_text(errors="replace")
    return len(re.findall(r'"PUT /v2/', text))


def builds_of(engine, image):
    items = json.loads(engine.kubectl("get", "builds", "-o", "json", namespace=engine.namespace).stdout)["items"]
    return [b for b in items if (b["spec"]["output"]["to"]["name"]).rsplit(":", 1)[0].endswith("/" + image)]


def test_floating_version_dependent_is_rebuilt_and_a_pinned_one_is_not(osbs_engine, busybox_base, tmp_path):
    engine = osbs_engine
    with open(engine.env["REGISTRY_AUTH_FILE"]) as handle:
        registry = RegistryClient(engine.registry, json.load(handle)["auths"], ca_file=engine.env["OSBS_LOCAL_REGISTRY_CA"])

    base_path = tmp_path / "vt-base"
    base_uri, _ = make_git_repo(base_path, {
        "Dockerfile": "FROM %s\nLABEL name=osbs/vt-base version=1.0 release=1\nRUN echo one > /base\n" % busybox_base})
    first, _ = playbook(engine, base_uri, tmp_path)
    first_labels = registry.inspect("osbs/vt-base", "1.0")["config"]["config"]["Labels"]
    first_vr = "1.0-%s" % first_labels["release"]
    assert "nvr        : osbs-vt-base-%s" % first_vr in first.stdout, first.stdout[-3000:]
    assert registry.get_manifest("osbs/vt-base", first_vr)[2] == registry.get_manifest("osbs/vt-base", "latest")[2]

    floating_uri, _ = make_git_repo(tmp_path / "vt-floating", {
        "Dockerfile": "FROM %s/osbs/vt-base:1.0\nLABEL name=osbs/vt-floating version=3 release=1\nRUN echo f > /f\n"
                      % engine.registry})
    pinned_uri, _ = make_git_repo(tmp_path / "vt-pinned", {
        "Dockerfile": "FROM %s/osbs/vt-base:%s\nLABEL name=osbs/vt-pinned version=5 release=1\nRUN echo p > /p\n"
                      % (engine.registry, first_vr)})
    playbook(engine, floating_uri, tmp_path)
    playbook(engine, pinned_uri, tmp_path)
    # A dependent of the dependent, by its version tag: the wave carries on to it once vt-floating:3 moves.
    grand_uri, _ = make_git_repo(tmp_path / "vt-grand", {
        "Dockerfile": "FROM %s/osbs/vt-floating:3\nLABEL name=osbs/vt-grand version=7 release=1\nRUN echo g > /g\n"
                      % engine.registry})
    playbook(engine, grand_uri, tmp_path)
    floating_before = {b["metadata"]["name"] for b in builds_of(engine, "osbs/vt-floating")}
    pinned_before = {b["metadata"]["name"] for b in builds_of(engine, "osbs/vt-pinned")}

    # A new 1.0-N of the base: version-release, version and latest move, and the wave runs.
    commit_files(base_path, {
        "Dockerfile": "FROM %s\nLABEL name=osbs/vt-base version=1.0 release=2\nRUN echo two > /base\n" % busybox_base})
    # First without the wave: the engine's trigger on vt-base:1.0 builds vt-floating by itself. A wave in check mode
    # then adopts that build, says its tags would move and writes nothing (its new tags are not in the registry yet).
    playbook(engine, base_uri, tmp_path)
    wait_for(lambda: [b for b in builds_of(engine, "osbs/vt-floating")
                      if b["metadata"]["name"] not in floating_before and b["status"]["phase"] == "Complete"],
             timeout=300, what="the trigger's build of vt-floating")
    before = engine.metrics()
    checked = run_module(engine, "osbs_autorebuild", dict(
        namespace=engine.namespace, imagestreamtag="osbs-vt-base:latest", image_tags=True,
        registry_dockercfg_path=engine.env["REGISTRY_AUTH_FILE"], registry_ca_cert=engine.env["OSBS_LOCAL_REGISTRY_CA"],
    ), check_mode=True)
    assert not checked.get("failed"), checked.get("msg")
    [checked_row] = [row for row in checked["rows"] if row["buildconfig"].startswith("vt-floating")]
    assert checked_row["action"] == "adopted" and checked_row["nvr"].startswith("osbs-vt-floating-3-"), checked_row
    after = engine.metrics()
    assert {key for key in after if key[0] in ("create", "update", "patch", "delete") and after[key] != before.get(key, 0)} \
        <= {("create", "imagestreamimports")}  # previews store nothing
    with pytest.raises(RegistryError):
        registry.get_manifest("osbs/vt-floating", checked_row["nvr"][len("osbs-vt-floating-"):])

    second, rows = playbook(engine, base_uri, tmp_path, autorebuild=True)
    new_digest = registry.get_manifest("osbs/vt-base", "1.0")[2]
    assert new_digest != registry.get_manifest("osbs/vt-base", first_vr)[2]
    istag = json.loads(engine.kubectl("get", "imagestreamtag", "osbs-vt-base:1.0", "-o", "json",
                                      namespace=engine.namespace).stdout)
    assert istag["image"]["metadata"]["name"] == new_digest

    assert rows is not None, "no wave ran:\n" + second.stdout[-3000:]
    by_bc = {row["buildconfig"].rsplit("/", 1)[-1]: row for row in rows}
    [floating_row] = [row for name, row in by_bc.items() if name.startswith("vt-floating")]
    assert floating_row["action"] in ("rebuilt", "adopted"), rows
    assert not [name for name in by_bc if name.startswith("vt-pinned")], rows
    [grand_row] = [row for name, row in by_bc.items() if name.startswith("vt-grand")]
    assert grand_row["action"] in ("rebuilt", "adopted") and grand_row["depth"] == 2, rows

    floating_new = [b for b in builds_of(engine, "osbs/vt-floating") if b["metadata"]["name"] not in floating_before]
    assert len(floating_new) == 1, [b["metadata"]["name"] for b in floating_new]
    assert floating_new[0]["spec"]["strategy"]["dockerStrategy"]["from"]["name"].endswith("@" + new_digest)
    assert {b["metadata"]["name"] for b in builds_of(engine, "osbs/vt-pinned")} == pinned_before

    # The rebuilt dependent has an identity of its own too: its NVR and unique tags, and its version tag imported.
    rebuilt_digest = floating_row["digest"]
    assert floating_row["nvr"] and floating_row["nvr"].startswith("osbs-vt-floating-3-"), floating_row
    rebuilt_vr = floating_row["nvr"][len("osbs-vt-floating-"):]
    assert registry.get_manifest("osbs/vt-floating", rebuilt_vr)[2] == rebuilt_digest
    assert registry.get_manifest("osbs/vt-floating", floating_row["unique_pull_spec"].rsplit(":", 1)[1])[2] == rebuilt_digest
    version_tag = json.loads(engine.kubectl("get", "imagestreamtag", "osbs-vt-floating:3", "-o", "json",
                                            namespace=engine.namespace).stdout)
    assert version_tag["image"]["metadata"]["name"] == rebuilt_digest
    assert floating_row["nvr"] in second.stdout  # the wave's table shows it

    # A rerun finds every tag, ImageStreamTag and annotation in place: no registry write, no API write, no change.
    puts, writes = registry_put_count(engine), engine.writes()
    third, rows_again = playbook(engine, base_uri, tmp_path, autorebuild=True)
    assert recap(third.stdout)["changed"] == 0, third.stdout[-4000:]
    assert registry_put_count(engine) == puts and engine.writes() == writes
    assert [row["action"] for row in rows_again if row["buildconfig"].startswith(("vt-floating", "vt-grand"))] == \
        ["unchanged", "unchanged"]
