import pytest

from ansible_collections.osbs.flow.plugins.module_utils.dockerfile import read_dockerfile
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError


@pytest.mark.parametrize(
    "content, build_args, base, name",
    [
        ('FROM registry.example.com/ns/base:1\nLABEL name="ns/app"\n', None, "registry.example.com/ns/base:1", "ns/app"),
        ("FROM base\nLABEL name=app version=1\n", None, "base", "app"),
        ("ARG BASE=r.io/ns/base:1\nFROM ${BASE}\nLABEL name=app\n", None, "r.io/ns/base:1", "app"),
        ("ARG BASE=r.io/ns/base:1\nFROM $BASE\nLABEL name=app\n", {"BASE": "r.io/other:2"}, "r.io/other:2", "app"),
        ("FROM r.io/builder:1 AS build\nRUN make\nFROM r.io/runtime:2\nCOPY --from=build /a /a\nLABEL name=app\n",
         None, "r.io/runtime:2", "app"),
        ("FROM r.io/base:1 AS base\nRUN x\nFROM base AS mid\nRUN y\nFROM mid\nLABEL name=app\n", None, "r.io/base:1", "app"),
        ("FROM scratch\nLABEL name=base\n", None, "scratch", "base"),
        ('FROM base\nENV N=ns/tool\nLABEL name="$N"\n', None, "base", "ns/tool"),
        ('FROM base\nLABEL com.redhat.component=app-container name=ns/app\n', None, "base", "ns/app"),
    ],
)
def test_read_dockerfile(content, build_args, base, name):
    result = read_dockerfile(content, build_args)
    assert (result["base_image"], result["image_name"]) == (base, name)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "Dockerfile has no FROM instruction: add one naming the base image, for example FROM registry.example.com/base:1"),
        ("# only a comment\nRUN true\n",
         "Dockerfile has no FROM instruction: add one naming the base image, for example FROM registry.example.com/base:1"),
        ("FROM base\n", "Dockerfile has no 'name' label in its final stage: add LABEL name=\"<namespace>/<image>\" naming the image to build"),
        ("FROM base\nLABEL com.redhat.component=app-container\n",
         "Dockerfile has no 'name' label in its final stage: add LABEL name=\"<namespace>/<image>\" naming the image to build"),
        ("ARG BASE\nFROM $BASE\nLABEL name=app\n",
         "Dockerfile: the base image '$BASE' has an unresolved variable: give a default in its ARG or pass the value in build_args"),
    ],
)
def test_read_dockerfile_errors(content, message):
    with pytest.raises(OsbsFlowError) as exc:
        read_dockerfile(content)
    assert str(exc.value) == message
