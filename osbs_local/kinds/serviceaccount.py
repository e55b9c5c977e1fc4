"""ServiceAccounts, the ones OpenShift keeps in every namespace, their managed dockercfg secrets, and how a
build finds the docker secret of a ServiceAccount that fits an image.

OpenShift's controller manager creates `builder` and `deployer` in every namespace (Kubernetes adds
`default`), and gives every ServiceAccount a managed `kubernetes.io/dockercfg` secret for the integrated
registry, listed in both its `secrets` and its `imagePullSecrets` (openshift-controller-manager
pkg/cmd/controller/serviceaccount.go; pkg/internalregistry/controllers/service_account_controller.go).
Instantiate reads the `secrets` of the build's ServiceAccount, the build controller its `imagePullSecrets`.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import json
import random
import time
from typing import TYPE_CHECKING, Optional

from .. import registry_client
from ..apiserver import registration
from ..apiserver.errors import Cause, invalid, not_found
from ..apiserver.meta import GENERATE_CHARS
from ..apiserver.printing import AGE, NAME
from ..apiserver.registration import Kind
from ..apiserver.resource import Resource, Subresource
from ..apiserver.rest import Request, Response
from ..apiserver.strategy import Strategy

if TYPE_CHECKING:
    from ..apiserver.api import Api

BUILDER = "builder"
MANAGED_SERVICE_ACCOUNTS = ("builder", "default", "deployer")
PULL_SECRET_REF_ANNOTATION = "openshift.io/internal-registry-pull-secret-ref"
TOKEN_SERVICE_ACCOUNT_ANNOTATION = "openshift.io/internal-registry-auth-token.service-account"
TOKEN_BINDING_ANNOTATION = "openshift.io/internal-registry-auth-token.binding"
DOCKER_SECRET_TYPES = ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson")


def _sa_resource():
    return registration.resource("serviceaccounts")


def _secrets_resource():
    return registration.resource("secrets")


def managed_secret_name(service_account: str) -> str:
    """`<sa>-dockercfg-<5 random>`, the base cut as library-go's naming.GetName(sa, "dockercfg-", 58) does."""
    base = f"{service_account}-dockercfg-"
    if len(base) > 58:
        base = base[:58]
    return base + "".join(random.choice(GENERATE_CHARS) for _ in range(5))


def _registry_dockercfg(api: "Api") -> str:
    """The integrated registry's entry as OpenShift writes it: only `auth`, no username, password or email."""
    entries = {host: {"auth": entry.get("auth", "")} for host, entry in (api.registry_auths or {}).items()}
    return base64.b64encode(json.dumps(entries).encode()).decode()


def ensure_service_accounts(api: "Api", namespace: str) -> None:
    """What OpenShift's ServiceAccount controllers keep true in a namespace: the managed ServiceAccounts exist,
    and every ServiceAccount lists its managed dockercfg secret, which exists and holds the registry's credentials."""
    with api.store.lock:
        ns = api.store.peek("namespaces", "", namespace)
        if ns is None or (ns.get("status") or {}).get("phase") == "Terminating":
            return
        for name in MANAGED_SERVICE_ACCOUNTS:
            if api.store.peek("serviceaccounts", namespace, name) is None:
                api.create(_sa_resource(), namespace, {"metadata": {"name": name}})
        for service_account, _ in list(api.store.scan("serviceaccounts", namespace)):
            _ensure_managed_secret(api, service_account)


def _ensure_managed_secret(api: "Api", service_account: dict) -> None:
    meta = service_account["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    secret_name = _managed_secret_name_of(api, service_account)
    new = copy.deepcopy(service_account)
    new["metadata"].setdefault("annotations", {})[PULL_SECRET_REF_ANNOTATION] = secret_name
    for field in ("secrets", "imagePullSecrets"):
        refs = new.get(field) or []
        if not any(ref.get("name") == secret_name for ref in refs):
            new[field] = refs + [{"name": secret_name}]
    if new != service_account:
        service_account = api.update_prepared(_sa_resource(), api.store.get("serviceaccounts", namespace, name), new, "", False)
    owner = {"apiVersion": "v1", "kind": "ServiceAccount", "name": name, "uid": service_account["metadata"]["uid"]}
    data = {".dockercfg": _registry_dockercfg(api)}
    secret = api.store.get("secrets", namespace, secret_name)
    if secret is None:
        api.create(_secrets_resource(), namespace, {
            "metadata": {"name": secret_name,
                         "annotations": {TOKEN_SERVICE_ACCOUNT_ANNOTATION: name, TOKEN_BINDING_ANNOTATION: "bound"},
                         "ownerReferences": [owner]},
            "type": "kubernetes.io/dockercfg", "data": data,
        })
        return
    fixed = copy.deepcopy(secret)
    fixed["metadata"].setdefault("annotations", {})[TOKEN_SERVICE_ACCOUNT_ANNOTATION] = name
    if not any(ref.get("uid") == owner["uid"] for ref in fixed["metadata"].get("ownerReferences") or []):
        fixed["metadata"]["ownerReferences"] = (fixed["metadata"].get("ownerReferences") or []) + [owner]
    # The image pull secret controller refreshes the credentials when the registry's change.
    fixed["data"] = data
    if fixed != secret:
        api.update_prepared(_secrets_resource(), secret, fixed, "", False)


def _managed_secret_name_of(api: "Api", service_account: dict) -> str:
    """The SA's annotation, else a dockercfg secret annotated (or owned) as its own, else a new name."""
    meta = service_account["metadata"]
    name = (meta.get("annotations") or {}).get(PULL_SECRET_REF_ANNOTATION)
    if name:
        return name
    for secret, _ in api.store.scan("secrets", meta["namespace"]):
        if secret.get("type") != "kubernetes.io/dockercfg":
            continue
        annotations = secret["metadata"].get("annotations") or {}
        if TOKEN_SERVICE_ACCOUNT_ANNOTATION in annotations:
            if annotations[TOKEN_SERVICE_ACCOUNT_ANNOTATION] == meta["name"]:
                return secret["metadata"]["name"]
            continue
        if any(ref.get("name") == meta["name"] and ref.get("uid") == meta["uid"]
               for ref in secret["metadata"].get("ownerReferences") or []):
            return secret["metadata"]["name"]
    return managed_secret_name(meta["name"])


def service_account_secrets(api: "Api", namespace: str, service_account: str, field: str) -> Optional[list[dict]]:
    """The existing secrets the ServiceAccount lists in `field` (secrets or imagePullSecrets), in its order;
    None when the ServiceAccount does not exist. Listed secrets that do not exist are skipped, as OpenShift does."""
    sa = api.store.peek("serviceaccounts", namespace, service_account)
    if sa is None:
        return None
    found = []
    for ref in sa.get(field) or []:
        secret = api.store.peek("secrets", namespace, ref.get("name") or "")
        if secret is not None:
            found.append(secret)
    return found


def _key_matches(key: str, host: str, repository: str) -> bool:
    """Kubernetes' docker keyring lookup for one key: same host (globs allowed), the key's path a prefix of the image's."""
    key = key.strip()
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
    key_host, _, key_path = key.partition("/")
    key_path = key_path.strip("/")
    if key_path in ("v1", "v2"):
        key_path = ""
    if key_host in ("index.docker.io", "registry-1.docker.io"):
        key_host = "docker.io"
    if not fnmatch.fnmatchcase(host.lower(), key_host.lower()):
        return False
    return not key_path or repository == key_path or repository.startswith(key_path + "/")


def docker_secret_for_image(secrets: list[dict], image: str) -> Optional[str]:
    """The name of the first docker secret holding credentials for the image's registry
    (openshift-apiserver generator.go findDockerSecretAsReference; OCM buildutil.FindDockerSecretAsReference)."""
    if not image:
        return None
    host, repository, _ = registry_client.split_image_reference(image)
    for secret in secrets:
        try:
            auths = registry_client.auths_from_secret(secret)
        except registry_client.RegistryError:
            continue
        if any(_key_matches(key, host, repository) for key in auths):
            return secret["metadata"]["name"]
    return None


def first_docker_secret(secrets: list[dict]) -> Optional[str]:
    """The build controller's fallback when no secret matches: the first dockercfg or dockerconfigjson secret."""
    return next((s["metadata"]["name"] for s in secrets if s.get("type") in DOCKER_SECRET_TYPES), None)


MIN_TOKEN_SECONDS = 600  # Kubernetes' validation of TokenRequest.spec.expirationSeconds
DEFAULT_TOKEN_SECONDS = 3600


def _token(request: Request) -> Response:
    """serviceaccounts/NAME/token: a TokenRequest answered with a bearer token for the ServiceAccount
    (`kubectl create token NAME`; Kubernetes pkg/registry/core/serviceaccount/storage/token.go)."""
    api = request.api
    service_account = api.store.peek("serviceaccounts", request.namespace, request.name)
    if service_account is None:
        raise not_found(_sa_resource(), request.name)
    spec = dict((request.body or {}).get("spec") or {})
    seconds = spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS
    if not isinstance(seconds, int) or seconds < MIN_TOKEN_SECONDS:
        raise invalid("TokenRequest.authentication.k8s.io", request.name, [Cause(
            "spec.expirationSeconds", "FieldValueInvalid",
            f"may not specify a duration less than {MIN_TOKEN_SECONDS} seconds")], "authentication.k8s.io", "TokenRequest")
    spec["expirationSeconds"] = seconds
    token, expires = api.tokens.issue(request.namespace, request.name, service_account["metadata"]["uid"], seconds)
    return Response(201, {
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": request.name, "namespace": request.namespace,
                     "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))},
    })


KIND = Kind(
    Resource("", "serviceaccounts", "serviceaccount", "ServiceAccount", True, short_names=("sa",),
             subresources=(Subresource("token", "TokenRequest", ("create",)),)),
    Strategy(),
    handlers={("create", "token"): _token},
    columns=[NAME, ("Secrets", "integer", "The number of secrets the service account lists.",
                    lambda o: len(o.get("secrets") or []), 0), AGE],
    merge_keys={"secrets": "name"},
)
