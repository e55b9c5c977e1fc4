"""osbs_buildconfig's check of registry_secret (docs/openshift-fidelity.md C3) when secrets cannot be read."""

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import check_push_secret
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.openshift import ApiError


class Client:
    def __init__(self, answer):
        self.answer = answer

    def get(self, kind, namespace, name):
        assert (kind, namespace, name) == ("Secret", "osbs", "push")
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Module:
    def __init__(self, answer):
        self.client = Client(answer)
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)


def test_without_get_secrets_the_check_is_skipped_with_a_warning():
    module = Module(ApiError(403, "Forbidden", 'secrets "push" is forbidden: User "dev" cannot get resource "secrets"'))
    check_push_secret(module, "osbs", "push")
    assert len(module.warnings) == 1 and "'push' was not checked" in module.warnings[0] and "MissingPushSecret" in module.warnings[0]


def test_another_api_error_is_not_hidden():
    with pytest.raises(ApiError):
        check_push_secret(Module(ApiError(500, "InternalError", "boom")), "osbs", "push")


def test_a_missing_secret_is_refused_and_an_existing_one_passes():
    with pytest.raises(OsbsFlowError, match="push secret 'push' does not exist in namespace osbs"):
        check_push_secret(Module(None), "osbs", "push")
    module = Module({"metadata": {"name": "push"}})
    check_push_secret(module, "osbs", "push")
    assert module.warnings == []
