"""spec.output.imageLabels validated as OpenShift does (OAS pkg/build/apis/build/validation/validation.go
ValidateImageLabels, called from validateOutput for BuildConfigs and directly created Builds): a name is required,
must be a qualified name, and may appear once."""

from __future__ import annotations

BUILD_API = "/apis/build.openshift.io/v1"


def test_image_labels_need_a_qualified_name_once(engine, http, namespace, make_bc):
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    bc = make_bc("labelled")
    bc["spec"]["output"]["imageLabels"] = [{"name": "release", "value": "3"}, {"name": "com.redhat.build-host", "value": "h"},
                                           {"name": "example.com/vcs-ref", "value": "c"}]
    created = http.post(url, json=bc)
    assert created.status_code == 201, created.text

    for kind, plural in (("BuildConfig", "buildconfigs"), ("Build", "builds")):
        bad = make_bc("bad-labels")
        bad["kind"] = kind
        bad["spec"]["output"]["imageLabels"] = [{"name": "", "value": "x"}, {"name": "not a name", "value": "x"},
                                                {"name": "release", "value": "1"}, {"name": "release", "value": "2"}]
        answer = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/{plural}", json=bad)
        assert answer.status_code == 422, answer.text
        causes = [(c["field"], c["reason"]) for c in answer.json()["details"]["causes"]]
        assert causes == [("spec.output.imageLabels[0].name", "FieldValueRequired"),
                          ("spec.output.imageLabels[1].name", "FieldValueInvalid"),
                          ("spec.output.imageLabels[3].name", "FieldValueInvalid")], (kind, causes)
        assert "duplicate name" in answer.text and "name part must consist of alphanumeric characters" in answer.text
