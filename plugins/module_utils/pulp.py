# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the osbs.flow Pulp modules: the connection through pulp-glue, and failures a person understands.

`with PulpModule(...) as module:` is the only place that calls fail_json: an
OsbsFlowError fails with its message and result; a pulp-glue or requests
failure becomes one sentence (pulp_failure), with the traceback alongside.
What pulp_sync does is in pulp_sync.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials, mask_credentials_in, uri_secrets

try:
    import requests
    from pulp_glue.common.authentication import GlueAuthProvider
    from pulp_glue.common.context import PulpContext
    from pulp_glue.common.exceptions import PulpAuthenticationFailed, PulpException, PulpHTTPError, PulpNotAutorized

    PULP_GLUE_IMPORT_ERROR = None
except ImportError:
    PULP_GLUE_IMPORT_ERROR = traceback.format_exc()
    PulpContext = object


USER_AGENT = "osbs.flow.pulp_sync"


def pulp_connection_argument_spec():
    return dict(
        pulp_url=dict(type="str", required=True, fallback=(env_fallback, ["PULP_URL"])),
        username=dict(type="str", required=True, fallback=(env_fallback, ["PULP_USERNAME"])),
        password=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["PULP_PASSWORD"])),
        validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["PULP_VALIDATE_CERTS"])),
        ca_cert=dict(type="path", aliases=["ca_path"], fallback=(env_fallback, ["PULP_CA_BUNDLE"])),
        timeout=dict(type="int", default=300),
    )


def describe_pulp_error(exc, pulp_url, username):
    """One sentence for a pulp-glue/requests failure."""
    if isinstance(exc, PulpAuthenticationFailed) or (
        isinstance(exc, requests.HTTPError) and getattr(exc.response, "status_code", None) == 401
    ):
        return (
            "Pulp at %s rejected the credentials of user %r (HTTP 401 Unauthorized): check username/password "
            "(or PULP_USERNAME/PULP_PASSWORD)" % (pulp_url, username)
        )
    if isinstance(exc, PulpNotAutorized):
        return "Pulp at %s denied user %r the operation (HTTP 403 Forbidden): %s" % (pulp_url, username, exc)
    if isinstance(exc, PulpHTTPError):
        return "Pulp at %s answered HTTP %s: %s" % (pulp_url, exc.status_code, exc)
    text = str(exc)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)) or "Max retries exceeded" in text:
        reason = "connection refused (is Pulp running?)" if "refused" in text else text
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
            reason = "TLS verification failed (give ca_cert / PULP_CA_BUNDLE): " + text
        return "Cannot reach Pulp at %s: %s" % (pulp_url, reason)
    return "Pulp at %s: %s" % (pulp_url, text)


def pulp_failure(exc, pulp_url, username, trace, changed=False):
    """The OsbsFlowError for any other exception: a pulp-glue or requests failure in one sentence, else its class."""
    if isinstance(exc, (PulpException, requests.RequestException)):
        message = describe_pulp_error(exc, pulp_url, username)
    else:
        message = "%s: %s" % (type(exc).__name__, exc)
    return OsbsFlowError(message, changed=changed, exception=trace)


if PULP_GLUE_IMPORT_ERROR is None:

    class _QuietPulpContext(PulpContext):
        """pulp-glue's context without its command-line prompts and progress dots."""

        def echo(self, *args, **kwargs):
            pass

        def prompt(self, *args, **kwargs):
            raise OsbsFlowError("Pulp needs a password: set password (or PULP_PASSWORD)")


class PulpModule(AnsibleModule):
    """AnsibleModule connected to Pulp; `with PulpModule(...) as module:` exits or fails for you.

    In check mode pulp-glue runs with dry_run, so a write request that slipped through would be
    refused before it is sent.
    """

    def __init__(self, argument_spec, **kwargs):
        spec = pulp_connection_argument_spec()
        spec.update(argument_spec)
        kwargs.setdefault("supports_check_mode", True)
        super(PulpModule, self).__init__(argument_spec=spec, **kwargs)
        if PULP_GLUE_IMPORT_ERROR is not None:
            self.fail_json(msg=missing_required_lib("pulp-glue"), exception=PULP_GLUE_IMPORT_ERROR)
        for value in self.params.values():
            self.no_log_values.update(uri_secrets(value))
        if self.params["timeout"] < 1:
            self.fail_json(msg="timeout is %d: give a number of seconds of 1 or more (how long each Pulp task may take)"
                           % self.params["timeout"])
        self.pulp_url = self.params["pulp_url"].rstrip("/")
        verify = self.params["validate_certs"]
        if verify and self.params["ca_cert"]:
            verify = self.params["ca_cert"]
            # requests lets REQUESTS_CA_BUNDLE (set machine-wide on some hosts) override a session's
            # verify for each request pulp-glue sends; this process must use the CA it was given.
            os.environ["REQUESTS_CA_BUNDLE"] = verify
        self.pulp_ctx = _QuietPulpContext(
            api_root="/pulp/",
            api_kwargs=dict(
                base_url=self.pulp_url,
                auth_provider=GlueAuthProvider(username=self.params["username"], password=self.params["password"]),
                dry_run=self.check_mode,
                user_agent=USER_AGENT,
            ),
            verify_ssl=verify,
            background_tasks=False,
            timeout=self.params["timeout"],
        )

    def warn(self, warning):
        return super(PulpModule, self).warn(mask_credentials(warning))

    def exit_json(self, **result):
        return super(PulpModule, self).exit_json(**mask_credentials_in(result))

    def fail_json(self, msg, **result):
        return super(PulpModule, self).fail_json(msg=mask_credentials(msg), **mask_credentials_in(result))

    def __enter__(self):
        return self

    def __exit__(self, exc_class, exc_value, tb):
        if exc_class is None or not issubclass(exc_class, Exception):
            return False  # success (exit_json raised SystemExit) or an interrupt
        if not issubclass(exc_class, OsbsFlowError):
            trace = "".join(traceback.format_exception(exc_class, exc_value, tb))
            exc_value = pulp_failure(exc_value, self.pulp_url, self.params["username"], trace)
        self.fail_json(msg=str(exc_value), **dict({"changed": False}, **exc_value.result))

    def exit_with(self, result):
        diff = result.pop("diff")
        if self._diff:
            result["diff"] = diff
        self.exit_json(**result)
