"""An adopted osbs-client BuildConfig ends with one ImageChange trigger for its base image: osbs-client's kept when
it watches the same ImageStreamTag (with what it has seen), replaced when the base image moved; on a BuildConfig
osbs.flow wrote, an ImageChange trigger someone added is kept."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import desired_spec, merge_buildconfig
from ansible_collections.osbs.flow.plugins.module_utils.osbs_adoption import base_image_triggers

DATA = Path(__file__).resolve().parents[3] / "data" / "osbs-client" / "buildconfig-0.48.json"
SEEN = "registry.example.com/osbs/busybox@sha256:" + "1" * 64


def legacy():
    bc = json.loads(DATA.read_text())["buildconfig"]
    bc["spec"]["triggers"][0]["imageChange"]["lastTriggeredImageID"] = SEEN
    return bc


def params(base_image):
    record = json.loads(DATA.read_text())
    return dict(git_uri=record["git_uri"], git_branch=record["git_branch"], git_commit=record["git_commit"],
                git_source_secret=None, base_image=base_image, image="osbs/legacy", image_tag="latest",
                registry_uri="registry.example.com", registry_secret=None, dockerfile_path="Dockerfile", context_dir=None,
                build_args={}, no_cache=False, image_optimization_policy=None, repo_config_file=".osbs-repo-config",
                autorebuild_enabled=True, run_policy="Serial", labels={})


def image_change(buildconfig):
    return [t["imageChange"] for t in buildconfig["spec"]["triggers"] if t["type"] == "ImageChange"]


def test_osbs_clients_trigger_on_the_same_base_is_kept_with_what_it_has_seen():
    existing = legacy()
    merged = merge_buildconfig(existing, existing["metadata"]["name"], "osbs", desired_spec(params("registry.example.com/osbs/busybox:latest")))
    assert image_change(merged) == [{"from": {"kind": "ImageStreamTag", "name": "osbs-busybox:latest"}, "lastTriggeredImageID": SEEN}]


def test_osbs_clients_trigger_on_an_older_base_is_replaced_not_kept_beside_the_new_one():
    existing = legacy()
    assert base_image_triggers(existing) == {"osbs-busybox:latest"}
    merged = merge_buildconfig(existing, existing["metadata"]["name"], "osbs", desired_spec(params("registry.example.com/ubi9:9.4")),
                               seen_image="registry.example.com/ubi9@sha256:" + "2" * 64)
    assert image_change(merged) == [{"from": {"kind": "ImageStreamTag", "name": "ubi9:9.4"},
                                     "lastTriggeredImageID": "registry.example.com/ubi9@sha256:" + "2" * 64}]


def test_on_a_buildconfig_osbs_flow_wrote_an_added_image_change_trigger_stays():
    existing = legacy()
    ours = merge_buildconfig(existing, existing["metadata"]["name"], "osbs", desired_spec(params("registry.example.com/osbs/busybox:latest")))
    added = copy.deepcopy(ours)
    added["spec"]["triggers"].append({"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "tools:latest"}}})
    assert base_image_triggers(added) == set()
    merged = merge_buildconfig(added, added["metadata"]["name"], "osbs", desired_spec(params("registry.example.com/osbs/busybox:latest")))
    assert [t["from"]["name"] for t in image_change(merged)] == ["osbs-busybox:latest", "tools:latest"]
