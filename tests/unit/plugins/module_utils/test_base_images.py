"""The pure parts of base_images.py: how a base image entry is read, and what a trigger last fired for."""

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.base_images import (
    canonical_image,
    check_base_images,
    recorded_trigger_image,
    shown_image,
)
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError

DIGEST = "sha256:" + "b" * 64


@pytest.mark.parametrize("image, expected", [
    ("registry.example.com/ubi9:latest", "registry.example.com/ubi9:latest"),
    ("registry.example.com/ubi9", "registry.example.com/ubi9:latest"),
    ("127.0.0.1:5000/vendor/ubi:9.4", "127.0.0.1:5000/vendor/ubi:9.4"),
    ("fedora", "docker.io/library/fedora:latest"),  # as the registry and OpenShift's importer read it
    ("docker.io/fedora:40", "docker.io/library/fedora:40"),
    ("index.docker.io/library/fedora:40", "docker.io/library/fedora:40"),
    ("quay.io/fedora/fedora:40", "quay.io/fedora/fedora:40"),
])
def test_canonical_image(image, expected):
    assert canonical_image(image) == expected


@pytest.mark.parametrize("image, words", [
    ("registry.example.com/UBI9:latest", "is not an image reference"),
    ("registry.example.com/ubi9:-x", "is not an image reference"),
    ("registry.example.com/ubi9@" + DIGEST, "is pinned by digest"),
    ("", "is not an image reference"),
])
def test_bad_entries_are_named(image, words):
    with pytest.raises(OsbsFlowError) as error:
        canonical_image(image)
    assert words in str(error.value) and repr(image) in str(error.value)


def test_credentials_in_an_entry_are_refused_and_never_shown():
    with pytest.raises(OsbsFlowError) as error:
        canonical_image("builder:s3cret@registry.example.com/ubi9:latest")
    assert "holds credentials" in str(error.value) and "s3cret" not in str(error.value)
    assert "s3cret" not in shown_image("builder:s3cret@registry.example.com/ubi9:latest")


def test_entries_are_checked_all_before_use_and_kept_once():
    assert check_base_images(["fedora", "docker.io/library/fedora:latest", "quay.io/a/b:1"]) == {
        "docker.io/library/fedora:latest": "fedora", "quay.io/a/b:1": "quay.io/a/b:1"}
    with pytest.raises(OsbsFlowError, match="base_images is empty"):
        check_base_images([])
    with pytest.raises(OsbsFlowError, match="'bad:-'"):
        check_base_images(["quay.io/a/b:1", "bad:-"])


def test_the_trigger_records_its_image_in_status_and_formerly_in_spec():
    bc = {"metadata": {"namespace": "osbs", "name": "app"},
          "spec": {"strategy": {"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "ubi:latest"}}},
                   "triggers": [{"type": "ImageChange", "imageChange": {"lastTriggeredImageID": "old@" + DIGEST}}]},
          "status": {}}
    assert recorded_trigger_image(bc, ("osbs", "ubi:latest")) == "old@" + DIGEST  # clusters before 4.8
    bc["status"]["imageChangeTriggers"] = [{"from": {"name": "ubi:latest", "namespace": "osbs"},
                                            "lastTriggeredImageID": "new@" + DIGEST}]
    assert recorded_trigger_image(bc, ("osbs", "ubi:latest")) == "new@" + DIGEST
    assert recorded_trigger_image(bc, ("other", "ubi:latest")) is None
