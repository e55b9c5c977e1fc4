"""osbs.flow.rebuild_dependents: a vendor's new base image (not built by the flow) rebuilds what is built on it.

The vendor's image is pushed to the registry by the test with buildah, as a vendor publishes an errata; `app` is
built FROM it and `leaf` FROM app; `off` is built FROM it too, but its repository disables autorebuilds, so its
trigger is paused (as the build playbook leaves it) and the wave skips it. The engine's ImageChange triggers are live, as on a cluster: builds they start
are adopted by the wave, never duplicated. Scheduled imports run every few seconds on the session engine
(conftest.py), only for tags with importPolicy.scheduled.
"""

from __future__ import annotations

import json
import threading

import pytest

from testlib import make_git_repo, run_module, run_playbook, wait_for
from vendorlib import Vendor, imagestream
from wavelib import WaveGraph

SHORTS = ("app", "leaf")


def make_graph(engine, busybox_base, root, prefix):
    """A vendor image published once, `app` FROM it and `leaf` FROM app, built and imported by the flow's modules,
    and `off` FROM it with autorebuilds disabled."""
    vendor = Vendor(engine, busybox_base, "%s/vendor/%subi:latest" % (engine.registry, prefix), root / "storage")
    vendor.publish("1")
    graph = WaveGraph(engine, busybox_base, root, prefix=prefix, parents={"app": None, "leaf": "app", "off": None})
    graph.base_images["app"] = graph.base_images["off"] = vendor.image
    graph.build_and_import(*SHORTS)
    add_disabled_dependent(engine, graph)
    return graph, vendor


def add_disabled_dependent(engine, graph):
    """`off`, whose .osbs-repo-config disables autorebuilds, set up as the build playbook does after reading it:
    osbs_buildconfig with autorebuild_enabled=false (its ImageChange trigger paused), a user build, its import."""
    graph.make_repo("off", "[autorebuild]\nenabled = false\n")
    _, uri = graph.repos["off"]
    bc = run_module(engine, "osbs_buildconfig", dict(
        namespace=engine.namespace, git_uri=uri, git_branch="main", git_commit=graph.commits["off"],
        base_image=graph.base_images["off"], image=graph.prefix + "off", registry_uri=engine.registry,
        registry_secret=engine.registry_secret, autorebuild_enabled=False))
    assert not bc.get("failed"), bc.get("msg")
    graph.buildconfigs["off"] = bc["name"]
    build = run_module(engine, "osbs_build", dict(namespace=engine.namespace, buildconfig=bc["name"],
                                                  git_commit=graph.commits["off"], wait_timeout=600))
    assert build.get("phase") == "Complete", build.get("msg")
    graph.import_image("off", build)
    triggers = [t for t in graph.get("bc", bc["name"])["spec"]["triggers"] if t["type"] == "ImageChange"]
    assert triggers and all(t["imageChange"].get("paused") for t in triggers), triggers


def build_names(graph):
    return {short: [b["metadata"]["name"] for b in graph.builds(short)] for short in SHORTS}


def new_builds(graph, before):
    return {short: [b for b in graph.builds(short) if b["metadata"]["name"] not in before[short]] for short in SHORTS}


def base_digest(build):
    return build["spec"]["strategy"]["dockerStrategy"]["from"]["name"].rsplit("@", 1)[1]


def rebuild_dependents(engine, vendor, tmp_path=None, **extra):
    """The playbook for the vendor's image (or extra's base_images), the report in tmp_path/report.json if given."""
    extra_vars = {"base_images": [vendor.image], "osbs_namespace": engine.namespace, "wait_timeout": 600, **extra}
    if tmp_path is not None:
        extra_vars["autorebuild_report_path"] = str(tmp_path / "report.json")
    return run_playbook(engine, "osbs.flow.rebuild_dependents", extra_vars)


def vendor_stream_name(vendor):
    """The ImageStream osbs_buildconfig made for the vendor's image (its repository, '/' as '-')."""
    return vendor.image.split("/", 1)[1].rsplit(":", 1)[0].replace("/", "-")


def vendor_stream(graph, vendor):
    return imagestream(graph, vendor_stream_name(vendor))


def vendor_digest(graph, vendor):
    return graph.get("imagestreamtag", vendor_stream_name(vendor) + ":latest")["image"]["metadata"]["name"]


def assert_cascade(graph, vendor_digest, before):
    """app and leaf each got exactly one build, app from the vendor's image and leaf from app's new image, both imported."""
    made = new_builds(graph, before)
    assert {short: len(builds) for short, builds in made.items()} == {"app": 1, "leaf": 1}, made
    [app_build], [leaf_build] = made["app"], made["leaf"]
    assert base_digest(app_build) == vendor_digest
    assert app_build["status"]["phase"] == leaf_build["status"]["phase"] == "Complete"
    assert graph.istag_digest("app") == app_build["status"]["output"]["to"]["imageDigest"]
    assert base_digest(leaf_build) == graph.istag_digest("app")
    assert graph.istag_digest("leaf") == leaf_build["status"]["output"]["to"]["imageDigest"]
    return app_build, leaf_build


def assert_nothing_written(engine, graph, vendor, tmp_path):
    """A run with nothing new: no wave, no build, the stream untouched; its one request that is a POST is the preview.
    `off` never had a build for the vendor's new image (its trigger is paused): that does not make a wave due."""
    stream_before, builds_before = vendor_stream(graph, vendor), build_names(graph)
    off_builds = [b["metadata"]["name"] for b in graph.builds("off")]
    metrics_before, writes_before = engine.metrics(), engine.writes()
    again = rebuild_dependents(engine, vendor, tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    metrics_after = engine.metrics()
    previews = metrics_after.get(("create", "imagestreamimports"), 0) - metrics_before.get(("create", "imagestreamimports"), 0)
    assert previews == 1  # the ImageStreamImport with import: false, which stores nothing
    assert engine.writes() - writes_before == previews, sorted(set(metrics_after.items()) - set(metrics_before.items()))
    assert vendor_stream(graph, vendor)["metadata"]["resourceVersion"] == stream_before["metadata"]["resourceVersion"]
    assert build_names(graph) == builds_before
    assert [b["metadata"]["name"] for b in graph.builds("off")] == off_builds
    assert "its dependents have their images" in again.stdout, again.stdout[-3000:]
    assert "Rebuild the dependents of %s/" % engine.namespace not in again.stdout  # no wave ran


@pytest.fixture(scope="module")
def vendor_graph(osbs_engine, busybox_base, tmp_path_factory):
    return make_graph(osbs_engine, busybox_base, tmp_path_factory.mktemp("rebuild-dependents"), "rd-")


@pytest.mark.slow
def test_a_new_vendor_image_rebuilds_its_dependents_once_and_a_rerun_writes_nothing(osbs_engine, vendor_graph, tmp_path):
    graph, vendor = vendor_graph
    before = build_names(graph)
    old_digest = vendor_digest(graph, vendor)
    new_digest = vendor.publish("2")

    # The module in check mode with diff: the tag that would move, from which image to which; no wave is returned.
    tag = "%s/%s:latest" % (osbs_engine.namespace, vendor_stream_name(vendor))
    diffed = run_module(osbs_engine, "osbs_base_images", dict(namespace=osbs_engine.namespace, base_images=[vendor.image]),
                        check_mode=True, diff=True)
    assert diffed["changed"] is True and diffed["waves"] == [], diffed
    assert diffed["diff"] == {"before": {tag: {"digest": old_digest, "scheduled": False}},
                              "after": {tag: {"digest": new_digest, "scheduled": False}}}, diffed["diff"]

    # Check mode: the new image is seen, nothing is imported or built.
    writes, stream = osbs_engine.writes(), vendor_stream(graph, vendor)
    checked = run_playbook(osbs_engine, "osbs.flow.rebuild_dependents", {
        "base_images": [vendor.image], "osbs_namespace": osbs_engine.namespace}, check=True)
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert "%s (new): check mode: the wave would run" % new_digest in checked.stdout, checked.stdout[-3000:]
    assert osbs_engine.writes() - writes == 1  # the preview
    assert vendor_stream(graph, vendor)["metadata"]["resourceVersion"] == stream["metadata"]["resourceVersion"]
    assert build_names(graph) == before

    result = rebuild_dependents(osbs_engine, vendor, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    [wave] = json.loads((tmp_path / "report.json").read_text())
    # The wave's own report, as the build playbook writes it, beside the combined one.
    own = json.loads((tmp_path / ("report-%s-%s-latest.json" % (osbs_engine.namespace, vendor_stream_name(vendor)))).read_text())
    assert own == wave["rows"]
    assert wave["base_image"] == vendor.image and wave["digest"] == new_digest
    actions = {row["buildconfig"]: row["action"] for row in wave["rows"]}
    assert sorted(actions) == sorted(graph.buildconfigs[short] for short in SHORTS + ("off",))
    assert {actions[graph.buildconfigs[short]] for short in SHORTS} <= {"rebuilt", "adopted"}, wave["rows"]
    assert actions[graph.buildconfigs["off"]] == "skipped", wave["rows"]
    assert vendor_digest(graph, vendor) == new_digest
    assert_cascade(graph, new_digest, before)

    (tmp_path / "report.json").unlink()
    assert_nothing_written(osbs_engine, graph, vendor, tmp_path)
    assert not (tmp_path / "report.json").exists()


@pytest.mark.slow
def test_two_runs_at_once_start_each_dependent_once(osbs_engine, vendor_graph, tmp_path):
    graph, vendor = vendor_graph
    before = build_names(graph)
    new_digest = vendor.publish("3")
    results = [None, None]

    def run(index):
        results[index] = rebuild_dependents(osbs_engine, vendor)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert result.returncode == 0, result.stdout[-3000:]
    assert_cascade(graph, new_digest, before)


@pytest.mark.slow
def test_a_run_racing_the_build_playbook_starts_no_build_twice_for_one_image(osbs_engine, vendor_graph, tmp_path):
    """rebuild_dependents for a new vendor image, and at the same time the build playbook of app (when_running=wait).

    The build playbook may make a user build of app beside the autorebuild (the recipe is the user's), and then its
    own wave rebuilds leaf from that image; what must never happen is two builds for one trigger: one autorebuild
    of app for the vendor's image, and one build of leaf per image of app.
    """
    graph, vendor = vendor_graph
    before = build_names(graph)
    new_digest = vendor.publish("4")
    _, uri = graph.repos["app"]
    results = {}
    runs = {
        "rebuild": lambda: rebuild_dependents(osbs_engine, vendor),
        "build": lambda: run_playbook(osbs_engine, "osbs.flow.build", {
            "git_uri": uri, "git_branch": "main", "registry_uri": osbs_engine.registry,
            "registry_secret": osbs_engine.registry_secret, "osbs_namespace": osbs_engine.namespace,
            "when_running": "wait", "wait_timeout": 600}),
    }
    threads = [threading.Thread(target=lambda name=name, run=run: results.__setitem__(name, run())) for name, run in runs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stdout[-3000:])

    made = new_builds(graph, before)
    autorebuilds = [b for b in made["app"] if any((c.get("imageChangeBuild") or {}).get("imageID", "").endswith(new_digest)
                                                    for c in b["spec"].get("triggeredBy") or [])]
    assert len(autorebuilds) == 1, [b["metadata"]["name"] for b in made["app"]]
    assert len(made["app"]) <= 2  # the autorebuild, and the playbook's user build when the recipe differs
    app_images = {b["status"]["output"]["to"]["imageDigest"] for b in made["app"]}
    leaf_bases = [base_digest(b) for b in made["leaf"]]
    assert sorted(set(leaf_bases)) == sorted(leaf_bases), leaf_bases  # one leaf build per image of app
    assert set(leaf_bases) <= app_images and graph.istag_digest("app") in leaf_bases
    assert base_digest(graph.builds("leaf")[-1]) == graph.istag_digest("app")


@pytest.mark.slow
def test_a_base_image_whose_registry_fails_is_named_after_the_others_waves_ran(osbs_engine, vendor_graph, tmp_path):
    graph, vendor = vendor_graph
    gone = "%s/vendor/rd-gone:latest" % osbs_engine.registry  # never pushed: every import of it fails
    created = graph.kubectl("create", "--validate=false", "-f", "-", check=False, stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": "rd-gone"},
         "spec": {"tags": [{"name": "latest", "from": {"kind": "DockerImage", "name": gone}}]}},
        {"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": "rd-on-gone"},
         "spec": {"source": {"git": {"uri": graph.repos["leaf"][1], "ref": "main"}},
                  "strategy": {"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "rd-gone:latest"}}},
                  "output": {"to": {"kind": "DockerImage", "name": "%s/rd-on-gone:latest" % osbs_engine.registry}},
                  "triggers": [{"type": "ImageChange", "imageChange": {}}]}},
    ]}))
    assert created.returncode == 0, created.stderr
    before = build_names(graph)
    new_digest = vendor.publish("5")

    result = rebuild_dependents(osbs_engine, vendor, tmp_path, base_images=[gone, vendor.image])
    assert result.returncode != 0
    assert "Base images not checked: %s (ImageStreamTag %s/rd-gone:latest)" % (gone, osbs_engine.namespace) in result.stdout, \
        result.stdout[-3000:]
    assert "The other base images and dependents went on" in result.stdout
    [wave] = json.loads((tmp_path / "report.json").read_text())
    assert wave["digest"] == new_digest
    assert_cascade(graph, new_digest, before)
    graph.kubectl("delete", "bc/rd-on-gone", "is/rd-gone")


@pytest.mark.slow
def test_a_dependent_that_failed_for_the_new_base_fails_every_later_run_naming_its_build(osbs_engine, busybox_base, tmp_path):
    """app's recipe does not build on the vendor's errata 2. The run that imports it fails; so does every later run,
    naming app's failed build, with no wave and no write but the preview (before: rc 0, 'its dependents have their
    images', so a schedule went green after one red run)."""
    vendor = Vendor(osbs_engine, busybox_base, "%s/vendor/rf-ubi:latest" % osbs_engine.registry, tmp_path / "storage")
    vendor.publish("1")
    graph = WaveGraph(osbs_engine, busybox_base, tmp_path, prefix="rf-", parents={"app": None})
    path = tmp_path / "app"
    uri, commit = make_git_repo(path, {"Dockerfile": 'FROM %s\nLABEL name=rf-app\nRUN test "$VENDOR_ERRATA" != 2\n' % vendor.image})
    graph.repos["app"], graph.commits["app"], graph.base_images["app"] = (path, uri), commit, vendor.image
    graph.import_image("app", graph.user_build("app"))
    before = [b["metadata"]["name"] for b in graph.builds("app")]
    new_digest = vendor.publish("2")

    first = rebuild_dependents(osbs_engine, vendor)
    assert first.returncode != 0 and "Autorebuild failed for" in first.stdout, first.stdout[-3000:]
    # The trigger's build, and the wave's own when the trigger's had failed before the wave looked at it.
    made = [b for b in graph.builds("app") if b["metadata"]["name"] not in before]
    assert made and all(b["status"]["phase"] == "Failed" and base_digest(b) == new_digest for b in made), \
        [(b["metadata"]["name"], b["status"]["phase"], b["spec"].get("triggeredBy")) for b in made]
    failed = made[-1]
    before += [b["metadata"]["name"] for b in made]

    for _ in range(2):
        writes = osbs_engine.writes()
        again = rebuild_dependents(osbs_engine, vendor)
        assert again.returncode != 0, again.stdout[-3000:]
        assert "its dependents have their images" not in again.stdout
        assert "Dependents failed for the base image their tag names now" in again.stdout, again.stdout[-3000:]
        assert "%s/%s" % (osbs_engine.namespace, failed["metadata"]["name"]) in again.stdout
        assert "run the build playbook" in again.stdout
        assert "Rebuild the dependents of %s/" % osbs_engine.namespace not in again.stdout  # no wave: a schedule does not rebuild it every interval
        assert osbs_engine.writes() - writes == 1  # the preview
        assert [b["metadata"]["name"] for b in graph.builds("app")] == before


@pytest.fixture(scope="module")
def scheduled_graph(osbs_engine, busybox_base, tmp_path_factory):
    return make_graph(osbs_engine, busybox_base, tmp_path_factory.mktemp("rebuild-scheduled"), "rs-")


@pytest.mark.slow
def test_a_scheduled_import_starts_the_first_level_and_the_next_run_finishes_the_cascade(osbs_engine, scheduled_graph, tmp_path):
    graph, vendor = scheduled_graph
    # The option sets importPolicy.scheduled on the tag; the image did not move, so no wave runs.
    scheduled = rebuild_dependents(osbs_engine, vendor, tmp_path, scheduled_import=True)
    assert scheduled.returncode == 0, scheduled.stdout[-3000:]
    [spec_tag] = [t for t in vendor_stream(graph, vendor)["spec"]["tags"] if t["name"] == "latest"]
    assert spec_tag["importPolicy"].get("scheduled") is True, spec_tag
    assert not (tmp_path / "report.json").exists()

    before = build_names(graph)
    new_digest = vendor.publish("2")
    # Nobody runs a playbook: the engine's scheduled import notices the image, and app's trigger starts its build.
    wait_for(lambda: vendor_digest(graph, vendor) == new_digest, timeout=90, what="the scheduled import of the new image")
    [app_build] = wait_for(lambda: new_builds(graph, before)["app"], timeout=60, what="the build app's trigger starts")
    assert app_build["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"].endswith(new_digest)
    assert new_builds(graph, before)["leaf"] == []  # app's image is not imported: leaf's tag has not moved

    result = rebuild_dependents(osbs_engine, vendor, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    [wave] = json.loads((tmp_path / "report.json").read_text())
    assert wave["digest"] == new_digest, wave
    # The tag did not move in this run: the wave runs because the cluster's cascade is unfinished.
    assert any(words in wave["reason"] for words in ("in progress", "has not fired", "is not in")), wave["reason"]
    actions = {row["buildconfig"]: row["action"] for row in wave["rows"]}
    assert actions[graph.buildconfigs["app"]] == "adopted", wave["rows"]
    assert actions[graph.buildconfigs["leaf"]] in ("rebuilt", "adopted"), wave["rows"]
    app_again, _ = assert_cascade(graph, new_digest, before)
    assert app_again["metadata"]["name"] == app_build["metadata"]["name"]

    # The cascade is done: the next scheduled imports find the same image and the next run finds nothing to do.
    (tmp_path / "report.json").unlink()
    assert_nothing_written(osbs_engine, graph, vendor, tmp_path)


def test_bad_base_images_are_refused_by_name_before_anything_is_written(osbs_engine, tmp_path):
    writes = osbs_engine.writes()
    for value, expected in (
        ("Registry.example.com/UBI9:latest", "is not an image reference"),
        ("registry.example.com/ubi9@sha256:" + "a" * 64, "is pinned by digest"),
        ("builder:s3cret@registry.example.com/ubi9:latest", "holds credentials"),
        ("registry.example.com/ubi9:-bad", "is not an image reference"),
    ):
        result = run_playbook(osbs_engine, "osbs.flow.rebuild_dependents", {
            "base_images": ["registry.example.com/fine:latest", value], "osbs_namespace": osbs_engine.namespace})
        assert result.returncode != 0
        assert expected in result.stdout, result.stdout[-2000:]
        assert "s3cret" not in result.stdout + result.stderr
    assert osbs_engine.writes() == writes


def test_credentials_in_a_base_images_entry_are_masked_in_the_invocation_and_at_vvv(osbs_engine):
    """A list option's entries are echoed in the module's invocation (-vvv, AWX job events): their secrets masked."""
    entries = ["registry.example.com/fine:latest", "builder:s3cret@registry.example.com/ubi9:latest",
               "t0ken-only@registry.example.com/ubi9:latest"]
    for entry in entries[1:]:
        result = run_module(osbs_engine, "osbs_base_images", dict(namespace=osbs_engine.namespace, base_images=[entries[0], entry]))
        assert result.get("failed") and "holds credentials" in result["msg"], result
        assert result["invocation"]["module_args"]["base_images"][0] == entries[0]
        assert "s3cret" not in json.dumps(result) and "t0ken-only" not in json.dumps(result), result["invocation"]
    played = run_playbook(osbs_engine, "osbs.flow.rebuild_dependents", {
        "base_images": entries, "osbs_namespace": osbs_engine.namespace}, env={"ANSIBLE_VERBOSITY": "3"})
    assert played.returncode != 0 and '"invocation"' in played.stdout, played.stdout[-3000:]
    assert "s3cret" not in played.stdout + played.stderr and "t0ken-only" not in played.stdout + played.stderr


@pytest.mark.slow
def test_osbs_buildconfig_makes_the_base_tag_scheduled_when_asked(osbs_engine, busybox_base, tmp_path):
    vendor = Vendor(osbs_engine, busybox_base, "%s/vendor/sb-ubi:latest" % osbs_engine.registry, tmp_path / "storage")
    vendor.publish("1")
    graph = WaveGraph(osbs_engine, busybox_base, tmp_path, prefix="sb-", parents={"app": None, "other": None})
    graph.base_images.update(app=vendor.image, other=vendor.image)
    graph.make_repo("app")
    graph.make_repo("other")

    def scheduled():
        [spec_tag] = [t for t in vendor_stream(graph, vendor)["spec"]["tags"] if t["name"] == "latest"]
        return spec_tag["importPolicy"].get("scheduled", False)

    graph.ensure_buildconfig("app")  # the default, as OpenShift's: not scheduled
    assert scheduled() is False

    def ensure_other(check_mode=False):
        _, uri = graph.repos["other"]
        return run_module(osbs_engine, "osbs_buildconfig", dict(
            namespace=osbs_engine.namespace, git_uri=uri, git_branch="main", git_commit=graph.commits["other"],
            base_image=vendor.image, image="sb-other", registry_uri=osbs_engine.registry,
            registry_secret=osbs_engine.registry_secret, base_image_scheduled_import=True,
        ), check_mode=check_mode)

    checked = ensure_other(check_mode=True)
    assert checked["changed"] is True and scheduled() is False, checked
    made = ensure_other()
    assert not made.get("failed"), made.get("msg")
    assert made["base_imagestream_created"] == vendor_stream_name(vendor) and scheduled() is True
    writes = osbs_engine.writes()
    again = ensure_other()
    assert again["changed"] is False and osbs_engine.writes() == writes, again


@pytest.mark.slow
def test_the_build_playbook_passes_base_image_scheduled_import(osbs_engine, busybox_base, tmp_path):
    vendor = Vendor(osbs_engine, busybox_base, "%s/vendor/sp-ubi:latest" % osbs_engine.registry, tmp_path / "storage")
    vendor.publish("1")
    graph = WaveGraph(osbs_engine, busybox_base, tmp_path, prefix="sp-", parents={"app": None})
    graph.base_images["app"] = vendor.image
    graph.make_repo("app")
    result = run_playbook(osbs_engine, "osbs.flow.build", {
        "git_uri": graph.repos["app"][1], "git_branch": "main", "registry_uri": osbs_engine.registry,
        "registry_secret": osbs_engine.registry_secret, "osbs_namespace": osbs_engine.namespace,
        "base_image_scheduled_import": True, "autorebuild": False})
    assert result.returncode == 0, result.stdout[-3000:]
    [spec_tag] = [t for t in vendor_stream(graph, vendor)["spec"]["tags"] if t["name"] == "latest"]
    assert spec_tag["importPolicy"].get("scheduled") is True, spec_tag
