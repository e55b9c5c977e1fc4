"""What OpenShift rewrites, defaults or refuses on BuildConfigs and Builds (docs/openshift-fidelity.md A1-A6, B6).

Each assertion names the OpenShift function it follows (OAS = openshift/openshift-apiserver).
"""

from __future__ import annotations

import requests

BUILD_API = "/apis/build.openshift.io/v1"
IMAGE_API = "/apis/image.openshift.io/v1"


def _invalid(response: requests.Response) -> dict:
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Invalid", 422)
    return body


def _istag_strategy(tag="base:1", **extra):
    return {"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": tag}, **extra}}


def test_dockerfile_path_and_context_dir_are_cleaned(engine, http, namespace, make_bc):
    """OAS validation.go validateDockerStrategy/validateRelativePath and validateSource: path.Clean, `.` is empty."""
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    bc = make_bc("clean")
    bc["spec"]["strategy"]["dockerStrategy"]["dockerfilePath"] = "./sub//Dockerfile"
    bc["spec"]["source"]["contextDir"] = "sub/"
    created = http.post(url, json=bc)
    assert created.status_code == 201, created.text
    spec = created.json()["spec"]
    assert spec["strategy"]["dockerStrategy"]["dockerfilePath"] == "sub/Dockerfile"
    assert spec["source"]["contextDir"] == "sub"

    current = created.json()
    current["spec"]["strategy"]["dockerStrategy"]["dockerfilePath"] = "."
    current["spec"]["source"]["contextDir"] = "./"
    spec = http.put(f"{url}/clean", json=current).json()["spec"]
    assert "dockerfilePath" not in spec["strategy"]["dockerStrategy"]
    assert "contextDir" not in spec["source"]

    for path in ("../Dockerfile", "..", "/etc/Dockerfile", "a/../../Dockerfile"):
        outside = make_bc("outside")
        outside["spec"]["strategy"]["dockerStrategy"]["dockerfilePath"] = path
        body = _invalid(http.post(url, json=outside))
        causes = body["details"]["causes"]
        assert [(c["field"], c["reason"]) for c in causes] == [("spec.strategy.dockerStrategy.dockerfilePath", "FieldValueInvalid")], path
        assert "dockerfilePath must be a relative path within your source location" in causes[0]["message"]
    outside = make_bc("outside")
    outside["spec"]["source"]["contextDir"] = "../up"
    body = _invalid(http.post(url, json=outside))
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.source.contextDir"]
    assert "context dir must not be a relative path" in body["message"]

    # A Build created directly is validated the same way (OAS ValidateBuild -> validateCommonSpec).
    build = make_bc("direct")
    build["kind"] = "Build"
    build["spec"]["strategy"]["dockerStrategy"]["dockerfilePath"] = "./Dockerfile"
    build["spec"]["source"]["contextDir"] = "./sub/./dir/"
    created = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds", json=build)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["strategy"]["dockerStrategy"]["dockerfilePath"] == "Dockerfile"
    assert created.json()["spec"]["source"]["contextDir"] == "sub/dir"


def test_history_limits_are_defaulted_on_create_only(engine, http, namespace, make_bc):
    """OAS registry/buildconfig/strategy.go groupStrategy.PrepareForCreate; PrepareForUpdate does not default them."""
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    created = http.post(url, json=make_bc("limits")).json()
    assert (created["spec"]["successfulBuildsHistoryLimit"], created["spec"]["failedBuildsHistoryLimit"]) == (5, 5)
    assert created["spec"]["runPolicy"] == "Serial"
    del created["spec"]["successfulBuildsHistoryLimit"]
    del created["spec"]["failedBuildsHistoryLimit"]
    updated = http.put(f"{url}/limits", json=created)
    assert updated.status_code == 200, updated.text
    assert "successfulBuildsHistoryLimit" not in updated.json()["spec"]
    assert "failedBuildsHistoryLimit" not in updated.json()["spec"]


def test_trigger_defaults_and_unknown_triggers_are_dropped(engine, http, namespace, make_bc):
    """OAS v1/defaults.go SetDefaults_BuildTriggerPolicy (`imageChange: {}`); strategy.go dropUnknownTriggers;
    v1/conversion.go (deprecated type names; a from-less ImageChange trigger goes when the strategy has no
    ImageStreamTag)."""
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    bc = make_bc("triggers", strategy=_istag_strategy(), triggers=[
        {"type": "ImageChange"}, {"type": "Bogus"}, {"type": "ConfigChange"}, {"type": "generic", "generic": {"secret": "s"}},
    ])
    created = http.post(url, json=bc)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["triggers"] == [
        {"type": "ImageChange", "imageChange": {}}, {"type": "ConfigChange"}, {"type": "Generic", "generic": {"secret": "s"}},
    ]
    docker = make_bc("docker-from", triggers=[{"type": "ImageChange", "imageChange": {}}, {"type": "ConfigChange"}])
    assert http.post(url, json=docker).json()["spec"]["triggers"] == [{"type": "ConfigChange"}]
    # A trigger's own `from` must be an ImageStreamTag (OAS validation.go validateTrigger).
    wrong_kind = make_bc("wrong-kind", triggers=[{"type": "ImageChange", "imageChange": {"from": {"kind": "DockerImage", "name": "x:1"}}}])
    body = _invalid(http.post(url, json=wrong_kind))
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.triggers[0].imageChange.from.kind"]


def test_two_image_change_triggers_on_one_tag_are_refused(engine, http, namespace, make_bc):
    """OAS validation.go ValidateBuildConfig: the fromRefs map keyed by refKey; a from-less trigger is the strategy's tag."""
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    default_and_explicit = make_bc("dup-default", strategy=_istag_strategy(), triggers=[
        {"type": "ImageChange", "imageChange": {}},
        {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "base:1"}}},
    ])
    body = _invalid(http.post(url, json=default_and_explicit))
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.triggers"]
    assert "multiple ImageChange triggers refer to the same image stream tag" in body["message"]
    # The namespace defaults to the BuildConfig's when comparing.
    same_namespace = make_bc("dup-namespace", strategy=_istag_strategy(), triggers=[
        {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "other:2"}}},
        {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "other:2", "namespace": namespace}}},
    ])
    _invalid(http.post(url, json=same_namespace))
    # Two tags, or one tag in two namespaces, are fine; so is the change that makes two triggers collide refused.
    distinct = make_bc("distinct", strategy=_istag_strategy(), triggers=[
        {"type": "ImageChange", "imageChange": {}},
        {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "base:1", "namespace": "elsewhere"}}},
    ])
    created = http.post(url, json=distinct)
    assert created.status_code == 201, created.text
    current = created.json()
    current["spec"]["triggers"][1]["imageChange"]["from"].pop("namespace")
    _invalid(http.put(f"{url}/distinct", json=current))


def test_build_labels_are_cut_to_63_characters_and_longer_selector_values_are_refused(engine, http, namespace, make_bc):
    """OAS generator.go setBuildAnnotationAndLabel/labelValue; apimachinery labels/selector.go NewRequirement."""
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    name = ("bc-with-a-long-name-" * 4)[:62] + ".and-more"
    assert len(name) > 63 and name[62] == "."
    assert http.post(url, json=make_bc(name)).status_code == 201
    build = http.post(f"{url}/{name}/instantiate", json={"metadata": {"name": name}})
    assert build.status_code == 201, build.text
    metadata = build.json()["metadata"]
    label = name[:62]  # the 63rd character is `.`, which may not end a label value
    assert metadata["labels"]["openshift.io/build-config.name"] == label
    assert metadata["labels"]["buildconfig"] == label
    assert metadata["annotations"]["openshift.io/build-config.name"] == name
    assert build.json()["status"]["config"]["name"] == name

    builds = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds"
    found = http.get(builds, params={"labelSelector": f"openshift.io/build-config.name={label}"})
    assert [b["metadata"]["name"] for b in found.json()["items"]] == [metadata["name"]]
    refused = http.get(builds, params={"labelSelector": f"openshift.io/build-config.name={name}"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["reason"] == "BadRequest"
    assert "must be no more than 63 characters" in refused.json()["message"]
    assert http.get(builds, params={"labelSelector": f"buildconfig in ({name})"}).status_code == 400


def test_imagestream_lookup_policy_is_always_returned(engine, http, namespace):
    """openshift/api image/v1 types.go: ImageStreamSpec.LookupPolicy is a struct, so `{local: false}` is always there."""
    url = f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams"
    created = http.post(url, json={"metadata": {"name": "plain"}, "spec": {}})
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["lookupPolicy"] == {"local": False}
