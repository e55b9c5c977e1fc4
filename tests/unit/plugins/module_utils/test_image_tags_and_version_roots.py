"""The pure part of issue 15's tags: the unique tag, the additional-tags file, the planned tags, and the wave's roots."""

import json

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.image_tags import (
    additional_tags_path,
    build_annotations,
    is_valid_tag,
    parse_additional_tags,
    planned_tags,
    unique_tag,
)
from ansible_collections.osbs.flow.plugins.module_utils.wave_graph import ROOT, build_graph

UID = "3f9a2c1b-0d4e-4b7a-9c2d-aa00bb11cc22"


def test_unique_tag_is_valid_grammar_and_differs_per_build():
    tag = unique_tag("main", "2026-12-04T18:53:09Z", UID)
    assert tag == "main-20261204185309-3f9a2c1b"
    assert unique_tag("main", "2026-12-04T18:53:09Z", "00000000-0000-4000-8000-000000000001") != tag
    # Characters outside the tag grammar, a long branch, no branch: still one valid tag of at most 128 characters.
    for branch in ("feature/ünïcode+x", "x" * 300, "", None, ".hidden"):
        made = unique_tag(branch, "2026-12-04T18:53:09Z", UID)
        assert is_valid_tag(made) and len(made) <= 128, made
    assert unique_tag(None, "2026-12-04T18:53:09Z", UID).startswith("none-")
    with pytest.raises(OsbsFlowError, match="creationTimestamp"):
        unique_tag("main", "yesterday", UID)


def test_additional_tags_file_keeps_valid_tags_and_names_the_others():
    valid, refused = parse_additional_tags("stable\n\n  v1.0  \nnot-valid\nbad/tag\nstable\n" + "y" * 129 + "\n")
    assert valid == ["stable", "v1.0"]
    assert [tag for tag, _why in refused] == ["not-valid", "bad/tag", "y" * 129]
    assert parse_additional_tags(None) == ([], [])
    assert additional_tags_path("sub", "docker/Dockerfile") == "sub/docker/additional-tags"
    assert additional_tags_path("", "Dockerfile") == "additional-tags"


def test_planned_tags_for_a_build_a_scratch_build_and_missing_labels():
    labels = {"name": "containers/app", "version": "1.0", "release": "3"}
    plan, warnings = planned_tags(labels, "u", additional=["extra", "latest"])
    assert plan == [("u", "unique"), ("1.0-3", "primary"), ("1.0", "floating"), ("latest", "floating"), ("extra", "additional")]
    assert warnings == []
    assert planned_tags(labels, "u", additional=["extra"], scratch=True)[0] == [("u", "unique")]
    plan, warnings = planned_tags({"name": "a"}, "u")
    assert plan == [("u", "unique"), ("latest", "floating")]
    assert any("no 'version' label" in w for w in warnings) and any("no 'release' label" in w for w in warnings)
    plan, warnings = planned_tags({"version": "1 0", "release": "1"}, "u")
    assert ("1 0", "floating") not in plan and any("'1 0'" in w for w in warnings)


def test_annotations_as_store_metadata_in_osv3_wrote_them():
    tags = [("u", "unique", True), ("1.0-3", "primary", True), ("latest", "floating", True), ("old", "primary", False)]
    annotations = build_annotations("r.example.com", "app", tags, "sha256:" + "a" * 64,
                                    "application/vnd.oci.image.manifest.v1+json", "sha256:" + "b" * 64, "c" * 40,
                                    "r.example.com/base:1", "sha256:" + "d" * 64, "FROM base\n")
    assert json.loads(annotations["repositories"]) == {
        "primary": ["r.example.com/app:1.0-3"], "floating": ["r.example.com/app:latest"], "unique": ["r.example.com/app:u"]}
    assert {entry["tag"] for entry in json.loads(annotations["digests"])} == {"u", "1.0-3", "latest"}
    assert json.loads(annotations["digests"])[0]["version"] == "oci"
    assert annotations["commit_id"] == "c" * 40 and annotations["dockerfile"] == "FROM base\n"


def _bc(name, base_tag, output):
    return {
        "metadata": {"name": name, "namespace": "osbs"},
        "spec": {
            "triggers": [{"type": "ImageChange", "imageChange": {}}],
            "strategy": {"type": "Docker", "dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": base_tag}}},
            "output": {"to": {"kind": "DockerImage", "name": "registry.example.com/%s:latest" % output}},
        },
    }


def test_the_wave_starts_from_every_tag_of_the_new_image():
    items = [_bc("floating", "base:1.0", "floating"), _bc("pinned", "base:1.0-3", "pinned"),
             _bc("latest", "base:latest", "lat"), _bc("child", "floating:latest", "child")]
    graph = build_graph(items, ("osbs", "base:latest"), also=[("osbs", "base:1.0"), ("osbs", "base:1.0-4")])
    assert sorted(name for _ns, name in graph.nodes) == ["child", "floating", "latest"]
    assert graph.base_parent[("osbs", "floating")] == ROOT
    assert graph.parents[("osbs", "child")] == {("osbs", "floating")}
    assert sorted(name for _ns, name in build_graph(items, ("osbs", "base:latest")).nodes) == ["latest"]


def test_tags_are_ascii_as_registries_take_them():
    assert not is_valid_tag("ünï")
    assert unique_tag("feature/ünï", "2026-12-04T18:53:09Z", UID) == "feature_n_-20261204185309-3f9a2c1b"


def test_a_dependents_version_tag_carries_the_wave_on():
    items = [_bc("floating", "base:1.0", "floating"), _bc("grand", "floating:3", "grand"),
             _bc("pinned", "floating:3-1", "pinned")]
    graph = build_graph(items, ("osbs", "base:1.0"),
                        moving_with=lambda key, out: [("osbs", "floating:3")] if key == ("osbs", "floating") else [])
    assert sorted(name for _ns, name in graph.nodes) == ["floating", "grand"]
    assert graph.parents[("osbs", "grand")] == {("osbs", "floating")}
    assert graph.base_parent[("osbs", "grand")] == ("osbs", "floating")
    assert sorted(name for _ns, name in build_graph(items, ("osbs", "base:1.0")).nodes) == ["floating"]


def test_only_a_repository_and_a_tag_or_digest_reach_a_registry_url():
    from ansible_collections.osbs.flow.plugins.module_utils.registry_api import RegistryClient

    assert RegistryClient._path("osbs/app", "manifests", "1.0-3") == "/v2/osbs/app/manifests/1.0-3"
    assert RegistryClient._path("osbs/app", "blobs", "sha256:" + "a" * 64).endswith("/blobs/sha256:" + "a" * 64)
    for repository, reference in (("osbs/app", "../x"), ("Osbs", "x"), ("osbs", "a/b"), ("osbs", "x?y"), ("", "x"),
                                  ("osbs/app", "-x")):
        with pytest.raises(OsbsFlowError, match="is not a repository and a tag or digest"):
            RegistryClient._path(repository, "manifests", reference)


def test_image_creation_times_compare_whatever_their_fraction_and_offset():
    from ansible_collections.osbs.flow.plugins.module_utils.tag_build import instant

    assert instant("2026-12-04T18:53:09Z") < instant("2026-12-04T18:53:09.5Z")
    assert instant("2026-12-04T18:53:09.123456789Z") > instant("2026-12-04T18:53:09.1234Z")
    assert instant("2026-12-04T20:53:09+02:00") == instant("2026-12-04T18:53:09Z")
    assert instant("yesterday") is None and instant(None) is None


def test_the_base_image_annotation_is_read_from_any_dockerfile():
    from ansible_collections.osbs.flow.plugins.module_utils.tag_build import base_image_of

    assert base_image_of("FROM r.example.com/base:1.0 AS build\nFROM build\nLABEL name=app\n") == "r.example.com/base:1.0"
    # No name label (a BuildConfig adopted from OSBS): the image is still tagged, the annotation names its base.
    assert base_image_of("FROM r.example.com/base:2\nRUN true\n") == "r.example.com/base:2"
    assert base_image_of(None) is None and base_image_of("RUN true\n") is None


def test_a_hostile_additional_tags_file_is_bounded_and_split_as_tag_from_config_read_it():
    from ansible_collections.osbs.flow.plugins.module_utils.image_tags import MAX_ADDITIONAL_TAGS, additional_tags_warnings

    # CRLF and a lone CR end lines (Python's universal newlines, as tag_from_config's `for tag in tags_file`);
    # U+2028 and form feed do not, so such a line is one invalid tag, not two valid ones.
    valid, refused = parse_additional_tags("one\r\ntwo\rthree\u2028four\nfive\x0csix\n")
    assert valid == ["one", "two"]
    assert [tag for tag, _why in refused] == ["three\u2028four", "five\x0csix"]
    # A file of a hundred thousand valid tags does not become a hundred thousand PUTs.
    valid, refused = parse_additional_tags("".join("t%d\n" % n for n in range(100000)))
    assert len(valid) == MAX_ADDITIONAL_TAGS and valid[-1] == "t%d" % (MAX_ADDITIONAL_TAGS - 1)
    assert refused[-1][1].startswith("the file has more than %d tags" % MAX_ADDITIONAL_TAGS)
    # Warnings stay short whatever the file holds: a few lines named, each cut, then how many more.
    _valid, refused = parse_additional_tags("".join("-%s%d\n" % ("z" * 5000, n) for n in range(50)))
    warnings = additional_tags_warnings(refused)
    assert len(warnings) <= 11 and all(len(w) < 400 for w in warnings), [len(w) for w in warnings]
    assert "40 more lines" in warnings[-1]


def test_a_trailing_newline_is_no_part_of_a_tag_a_digest_or_a_repository():
    """Python's `$` matches before a final newline: a base image's `release` label '1\\n' made the tag '1.0-1\\n',
    which went into a registry URL and an ImageStreamTag name."""
    from ansible_collections.osbs.flow.plugins.module_utils.images import check_tag
    from ansible_collections.osbs.flow.plugins.module_utils.registry_api import RegistryClient

    assert not is_valid_tag("latest\n")
    plan, warnings = planned_tags({"name": "app", "version": "1.0", "release": "1\n"}, "main-1-abcdef12")
    assert [tag for tag, _kind in plan] == ["main-1-abcdef12", "1.0", "latest"] and "'release'" in warnings[0]
    with pytest.raises(OsbsFlowError):
        check_tag("1.0\n", "tags item")
    for repository, reference in (("app\n", "latest"), ("app", "latest\n"), ("app", "sha256:%s\n" % ("a" * 64))):
        with pytest.raises(OsbsFlowError):
            RegistryClient._path(repository, "manifests", reference)


def test_an_image_from_scratch_has_an_empty_base_image_name_as_store_metadata_in_osv3_wrote():
    from ansible_collections.osbs.flow.plugins.module_utils.tag_build import base_image_of

    # atomic-reactor 1.6: `if base_image is not None and not base_from_scratch` ... else base_image_name = "".
    assert base_image_of("FROM scratch\nLABEL name=app\n") is None
    assert base_image_of("FROM busybox AS b\nFROM SCRATCH\nCOPY --from=b / /\n") is None
