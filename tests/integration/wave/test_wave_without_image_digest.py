"""The wave against an osbs-local whose builds complete without status.output.to.imageDigest (issue 14 item 5).

OpenShift's builder records the digest only when the push returned one (openshift/builder pkg/build/builder/docker.go,
DockerBuilder.Build; the API says "may not always be set"); the engine's test switch test_build_without_image_digest
completes every build that way. The wave then verifies each dependent's image by the labels the builder writes
(io.openshift.build.name/namespace) before it moves the dependent's tag, and refuses, moving nothing, when the image
at the pushed tag is another build's.

nodigest-base <- nodigest-a (its ImageChange trigger paused, so only the wave and the test start builds of it).
"""

from __future__ import annotations

import pytest

from osbs_local.state import load_config, save_config
from testlib import commit_files, make_git_repo, run_module, start_engine, stop_engine
from wavelib import WaveGraph

pytestmark = pytest.mark.slow

MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from osbs_local.executor.base_image import build_busybox_base

    state_dir = tmp_path_factory.mktemp("osbs-local-nodigest")
    config = load_config(state_dir)
    config.update(test_build_without_image_digest=True)
    save_config(state_dir, config)
    engine = start_engine(state_dir)
    engine.base_image = "%s/osbs/busybox:latest" % engine.registry
    build_busybox_base(engine.base_image, storage_dir=tmp_path_factory.mktemp("nodigest-base-storage"),
                       auth_file=engine.env["REGISTRY_AUTH_FILE"], cert_dir=engine.state_dir / "certs.d" / engine.registry)
    yield engine
    stop_engine(engine)


class NoDigestGraph(WaveGraph):
    """Images are imported as the playbook does when a build has no digest: verified by the build's labels."""

    def import_image(self, short, build, **extra):
        assert build["image_digest"] is None
        result = run_module(self.engine, "reactor_import_image", dict(
            namespace=self.namespace, image=build["output_image"], expected_build=build["name"], **extra))
        assert not result.get("failed"), result.get("msg")
        assert result["verified_by"] == "build labels"
        return result

    def new_base(self, content):
        path, _ = self.repos["base"]
        _, commit = commit_files(path, {"version.txt": content + "\n"}, message="base " + content)
        return self.import_image("base", self.user_build("base", commit))


@pytest.fixture(scope="module")
def graph(engine, tmp_path_factory):
    graph = NoDigestGraph(engine, engine.base_image, tmp_path_factory.mktemp("nodigest"), prefix="nodigest-",
                          parents={"base": None, "a": "base"})
    graph.build_and_import("base", "a")
    graph.set_triggers_paused(True, shorts=("a",))
    return graph


def image_labels(graph, digest):
    image = graph.get("imagestreamimage", "%sa@%s" % (graph.prefix, digest))["image"]
    return image["dockerImageMetadata"]["Config"]["Labels"]


def test_the_waves_dependents_are_imported_verified_by_their_labels(graph):
    new_base = graph.new_base("2")
    before = {b["metadata"]["name"] for b in graph.builds("a")}

    result = run_module(graph.engine, "osbs_autorebuild", dict(
        namespace=graph.namespace, imagestreamtag=new_base["imagestreamtag"], digest=new_base["digest"]))
    assert result.get("failed") is not True, result.get("msg")
    [row] = [r for r in result["rows"] if r["buildconfig"] == graph.buildconfigs["a"]]
    assert row["action"] == "rebuilt", result["report_table"]
    [build] = [b for b in graph.builds("a") if b["metadata"]["name"] not in before]
    assert row["build"] == build["metadata"]["name"]
    assert not ((build["status"].get("output") or {}).get("to") or {}).get("imageDigest")
    # The tag moved to the image that build pushed, the one the report names.
    assert row["digest"] and graph.istag_digest("a") == row["digest"]
    assert image_labels(graph, row["digest"])["io.openshift.build.name"] == build["metadata"]["name"]


def test_a_dependent_whose_pushed_tag_another_build_overwrote_fails_and_its_tag_stays(graph, tmp_path_factory):
    new_base = graph.new_base("3")
    tag_before = graph.istag_digest("a")
    # The build of nodigest-a for the new base, made before the wave (as the cluster's trigger would)...
    built = run_module(graph.engine, "osbs_build", dict(
        namespace=graph.namespace, buildconfig=graph.buildconfigs["a"], mode="autorebuild",
        base_image_digest=new_base["digest"]))
    assert built.get("failed") is not True and built["phase"] == "Complete", built.get("msg")
    assert built["image_digest"] is None

    # ...and then someone else's build pushes to the same image before the wave imports it.
    uri, commit = make_git_repo(tmp_path_factory.mktemp("nodigest-other") / "other", {
        "Dockerfile": "FROM %s\nRUN echo other > /other.txt\n" % graph.engine.base_image})
    other_bc = run_module(graph.engine, "osbs_buildconfig", dict(
        namespace=graph.namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=graph.engine.base_image,
        image="osbs/nodigest-other", registry_uri=graph.engine.registry, registry_secret=graph.engine.registry_secret))
    assert not other_bc.get("failed"), other_bc.get("msg")
    patched = graph.engine.session().patch(
        "%s/apis/build.openshift.io/v1/namespaces/%s/buildconfigs/%s" % (graph.engine.base, graph.namespace, other_bc["name"]),
        json={"spec": {"output": {"to": {"kind": "DockerImage", "name": built["output_image"]}}}}, headers=MERGE)
    assert patched.status_code == 200, patched.text
    other = run_module(graph.engine, "osbs_build", dict(namespace=graph.namespace, buildconfig=other_bc["name"], git_commit=commit))
    assert other.get("failed") is not True and other["phase"] == "Complete", other.get("msg")

    result = run_module(graph.engine, "osbs_autorebuild", dict(
        namespace=graph.namespace, imagestreamtag=new_base["imagestreamtag"], digest=new_base["digest"], fail_on_error=False))
    [row] = [r for r in result["rows"] if r["buildconfig"] == graph.buildconfigs["a"]]
    assert row["action"] == "failed" and row["build"] == built["name"], result["report_table"]
    assert "completed without an image digest" in row["reason"], row["reason"]
    assert "%s/%s" % (graph.namespace, other["name"]) in row["reason"] and "was not moved" in row["reason"], row["reason"]
    assert result["failed_dependents"] == [graph.buildconfigs["a"]]
    assert graph.istag_digest("a") == tag_before
