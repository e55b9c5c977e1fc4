import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import (
    ImageReference,
    imagestreamtag_for_image,
    is_trackable,
    parse_image_reference,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "image, expected",
    [
        ("fedora", ImageReference(None, "fedora", None, None)),
        ("fedora:39", ImageReference(None, "fedora", "39", None)),
        ("registry.example.com/ns/base:1.0", ImageReference("registry.example.com", "ns/base", "1.0", None)),
        ("127.0.0.1:5000/osbs/base", ImageReference("127.0.0.1:5000", "osbs/base", None, None)),
        ("localhost/base:x", ImageReference("localhost", "base", "x", None)),
        ("ns/base@" + DIGEST, ImageReference(None, "ns/base", None, DIGEST)),
        ("r.io:443/a/b/c:t@" + DIGEST, ImageReference("r.io:443", "a/b/c", "t", DIGEST)),
    ],
)
def test_parse_image_reference(image, expected):
    assert parse_image_reference(image) == expected


@pytest.mark.parametrize(
    "image, expected",
    [
        ("registry.example.com/fedora/base:30", "fedora-base:30"),
        ("registry.example.com/fedora/base", "fedora-base:latest"),
        ("127.0.0.1:5000/osbs/base", "osbs-base:latest"),
        ("base", "base:latest"),
        ("base:1.2-3", "base:1.2-3"),
        ("a/b/c:t", "a-b-c:t"),
    ],
)
def test_imagestreamtag_for_image(image, expected):
    assert imagestreamtag_for_image(image) == expected


@pytest.mark.parametrize(
    "image, message",
    [
        ("r.io/ns/base@" + DIGEST,
         "base image 'r.io/ns/base@%s' is pinned by digest, so no ImageStreamTag can track it and it cannot trigger "
         "autorebuilds: refer to it by tag (for example ns/base:latest) to enable autorebuilds" % DIGEST),
        ("", "image reference '' is empty: give an image such as registry.example.com/ns/base:1"),
        ("r.io/Ns/base", "image reference 'r.io/Ns/base' has an invalid repository component 'Ns': use lower-case letters, "
                         "digits and single separators (. _ -)"),
        ("r.io/ns/base:bad/tag", "image reference 'r.io/ns/base:bad/tag' has an invalid repository component 'base:bad': "
                                 "use lower-case letters, digits and single separators (. _ -)"),
        ("base:!", "image reference 'base:!' has an invalid tag '!': tags are up to 128 of [A-Za-z0-9_.-]"),
        ("base@md5", "image reference 'base@md5' has an invalid digest 'md5': a digest looks like sha256:<64 hex digits>"),
    ],
)
def test_imagestreamtag_errors(image, message):
    with pytest.raises(OsbsFlowError) as exc:
        imagestreamtag_for_image(image)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "image, trackable",
    [("scratch", False), ("ns/base@" + DIGEST, False), ("ns/base", True), ("r.io/ns/base:1", True)],
)
def test_is_trackable(image, trackable):
    assert is_trackable(image) is trackable
