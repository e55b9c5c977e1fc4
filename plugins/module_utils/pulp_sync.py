# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pulp_sync step: sync a repository of a container registry into Pulp 3 (pulp_container) through pulp-glue.

The decisions (names, what differs, what to return) are pure functions over dicts; the
PulpContainerSync class does the calls; PulpModule (pulp.py) owns the connection. Failures
are OsbsFlowError, carrying `changed` once something in Pulp was already created or updated.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import fnmatch
import hashlib
import hmac
import json
import os
import re
import traceback

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.pulp import pulp_failure
from ansible_collections.osbs.flow.plugins.module_utils.registry_uri import parse_registry_uri

try:
    from pulp_glue.common.exceptions import PulpEntityNotFound, PulpException
    from pulp_glue.container.context import (
        PulpContainerDistributionContext,
        PulpContainerManifestContext,
        PulpContainerRemoteContext,
        PulpContainerRepositoryContext,
        PulpContainerTagContext,
    )
except ImportError:
    pass  # PulpModule fails with missing_required_lib before anything here runs


# pulp_labels key on the remote holding a salted hash of the registry credentials: Pulp never
# returns a remote's password, so this is how a later run knows whether they changed.
CREDENTIALS_LABEL = "osbs.flow.credentials"
FINGERPRINT_SCHEME = "pbkdf2_sha256"
FINGERPRINT_ITERATIONS = 20000
# A docker repository path component (distribution's reference grammar, lowercase).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY_PATH = re.compile(r"^{0}(?:/{0})*$".format(_PATH_COMPONENT))
_VERSION_NUMBER = re.compile(r"/versions/(\d+)/$")


# ---- registry side -------------------------------------------------------------------------
def _dockercfg_key_host(key):
    """'https://host:port/v1/' -> 'host:port' (the keys docker, podman and OpenShift write)."""
    key = key.strip()
    if "://" in key:
        key = key.split("://", 1)[1]
    return key.split("/", 1)[0]


def read_dockercfg(path, host_port):
    """(username, password) for host_port from a .dockercfg or config.json/auth.json file."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise OsbsFlowError("cannot read the registry dockercfg %s: %s" % (path, exc))
    return dockercfg_credentials(data, host_port, path)


def dockercfg_credentials(data, host_port, path):
    """(username, password) for host_port from a parsed .dockercfg or config.json (`path` names it in messages)."""
    entries = data.get("auths", data) if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise OsbsFlowError("the registry dockercfg %s is not a JSON object of registries" % path)
    for key, entry in entries.items():
        if _dockercfg_key_host(key) != host_port or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                username, _sep, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                raise OsbsFlowError("the entry for %s in %s has an auth value that is not base64(user:password)" % (host_port, path))
            return username, password
        if entry.get("username") is not None:
            return entry["username"], entry.get("password") or ""
        raise OsbsFlowError("the entry for %s in %s has neither auth nor username/password" % (host_port, path))
    raise OsbsFlowError(
        "the registry dockercfg %s has no entry for %s (it has: %s)"
        % (path, host_port, ", ".join(sorted(entries)) or "none")
    )


# ---- naming --------------------------------------------------------------------------------
def pulp_names(pulp_registry_name, pulp_sync_registry_name, repository):
    """Names of the Pulp remote, repository and distribution, and the distribution's base path.

    pulp_sync_registry_name names where the sync goes; when not given, pulp_registry_name does
    (what the OSBS design document promised). The registry name prefixes every object.
    """
    prefix = pulp_sync_registry_name or pulp_registry_name
    if not prefix:
        raise OsbsFlowError("set pulp_registry_name (or pulp_sync_registry_name) to name the Pulp side")
    base_path = "%s/%s" % (prefix.strip("/"), repository.strip("/"))
    if not _REPOSITORY_PATH.match(base_path):
        raise OsbsFlowError(
            "%r (registry name %r + repository %r) is not a valid container repository path: use lowercase "
            "letters, digits and . _ - separators" % (base_path, prefix, repository)
        )
    return dict(registry_name=prefix, name=base_path, base_path=base_path)


# ---- credentials fingerprint ---------------------------------------------------------------
def credentials_fingerprint(username, password, salt=None):
    salt = salt or base64.b16encode(os.urandom(8)).decode().lower()
    digest = hashlib.pbkdf2_hmac(
        "sha256", ("%s\0%s" % (username, password)).encode("utf-8"), salt.encode(), FINGERPRINT_ITERATIONS
    )
    return "%s$%s$%s" % (FINGERPRINT_SCHEME, salt, digest.hex())


def fingerprint_matches(fingerprint, username, password):
    try:
        scheme, salt, _digest = fingerprint.split("$")
    except (AttributeError, ValueError):
        return False
    if scheme != FINGERPRINT_SCHEME:
        return False
    return hmac.compare_digest(credentials_fingerprint(username, password, salt), fingerprint)


# ---- remote, distribution: what must change ------------------------------------------------
def desired_remote(names, url, upstream_name, tags, tls_validation, ca_cert_pem):
    return dict(
        name=names["name"],
        url=url,
        upstream_name=upstream_name,
        # pulp_container >= 2.2x: 'includes' (tags, wildcards or digests); 'include_tags' is deprecated
        includes=sorted(tags) if tags else None,
        tls_validation=tls_validation,
        ca_cert=ca_cert_pem,
    )


def _hidden_field_set(remote, field):
    return any(item.get("name") == field and item.get("is_set") for item in remote.get("hidden_fields") or [])


def remote_update(current, desired, username, password):
    """The PATCH body that makes `current` (a remote as Pulp returns it) what is desired; {} when equal.

    Credentials are compared through the fingerprint label; a new fingerprint is written with them.
    """
    update = {}
    for field, want in desired.items():
        have = current.get(field)
        if field == "includes":
            have = sorted(have) if have else None
        elif field == "ca_cert":
            have, want = (have or "").strip() or None, (want or "").strip() or None
        if have != want:
            update[field] = desired[field]
    labels = dict(current.get("pulp_labels") or {})
    if username is not None:
        if not fingerprint_matches(labels.get(CREDENTIALS_LABEL), username, password):
            labels[CREDENTIALS_LABEL] = credentials_fingerprint(username, password)
            update.update(username=username, password=password, pulp_labels=labels)
    elif CREDENTIALS_LABEL in labels or _hidden_field_set(current, "username") or _hidden_field_set(current, "password"):
        labels.pop(CREDENTIALS_LABEL, None)
        update.update(username=None, password=None, pulp_labels=labels)
    return update


def remote_create_body(desired, username, password):
    body = dict(desired)
    if username is not None:
        body.update(
            username=username,
            password=password,
            pulp_labels={CREDENTIALS_LABEL: credentials_fingerprint(username, password)},
        )
    return body


def distribution_update(current, base_path, repository_href):
    update = {}
    if current.get("base_path") != base_path:
        update["base_path"] = base_path
    if current.get("repository") != repository_href:
        update["repository"] = repository_href
    if current.get("repository_version"):
        update["repository_version"] = None  # follow the repository's latest version
    return update


def _is_pattern(tag):
    return any(char in tag for char in "*?[")


def synced_tags(requested, available):
    """The tags of a repository version that the module reports: those requested (patterns allowed), or all."""
    if not requested:
        return sorted(available)
    return sorted(tag for tag in available if any(fnmatch.fnmatchcase(tag, want) for want in requested))


def missing_tags(requested, available):
    """Requested plain tags (not patterns) that the repository version does not have."""
    return [tag for tag in requested or [] if not _is_pattern(tag) and tag not in available]


def version_number(version_href):
    match = _VERSION_NUMBER.search(version_href or "")
    return int(match.group(1)) if match else None


def describe_remote(remote, credentials_state=None):
    """What a remote looks like in a diff: no secrets, credentials as 'set'/'unset'."""
    if remote is None:
        return None
    labels = remote.get("pulp_labels") or {}
    if credentials_state is None:
        credentials_state = "set" if (CREDENTIALS_LABEL in labels or _hidden_field_set(remote, "username")) else "unset"
    includes = remote.get("includes")
    return dict(
        name=remote.get("name"),
        url=remote.get("url"),
        upstream_name=remote.get("upstream_name"),
        includes=sorted(includes) if includes else None,
        tls_validation=remote.get("tls_validation"),
        ca_cert=(remote.get("ca_cert") or "").strip() or None,
        credentials=credentials_state,
    )


def describe_repository(repository):
    if repository is None:
        return None
    return dict(name=repository.get("name"), latest_version=version_number(repository.get("latest_version_href")))


def describe_distribution(distribution, repository_name):
    if distribution is None:
        return None
    return dict(name=distribution.get("name"), base_path=distribution.get("base_path"), repository=repository_name)


def pull_host(pulp_url):
    """host[:port] of Pulp's registry API (served by the API server, under /v2/)."""
    return pulp_url.split("://", 1)[-1].split("/", 1)[0]


class PulpContainerSync:
    """Ensure remote, repository and distribution, then sync; nothing that writes in check mode."""

    def __init__(self, pulp_ctx, check_mode):
        self.pulp_ctx = pulp_ctx
        self.check_mode = check_mode
        self.changed = False
        self.before = {}
        self.after = {}

    def _find(self, context):
        try:
            return context.entity
        except PulpEntityNotFound:
            return None

    def ensure_remote(self, desired, username, password):
        context = PulpContainerRemoteContext(self.pulp_ctx, entity={"name": desired["name"]})
        current = self._find(context)
        self.before["remote"] = describe_remote(current)
        if current is None:
            body = remote_create_body(desired, username, password)
            remote = body if self.check_mode else context.create(body=body)
            self.changed = True
            self.after["remote"] = describe_remote(remote, "set" if username is not None else "unset")
            return remote
        update = remote_update(current, desired, username, password)
        remote = dict(current, **update)
        if update:
            self.changed = True
            if not self.check_mode:
                remote = context.update(body=update)
        credentials = "unset" if username is None else ("set (changed)" if "password" in update else "set")
        self.after["remote"] = describe_remote(remote, credentials)
        return remote

    def ensure_repository(self, name):
        context = PulpContainerRepositoryContext(self.pulp_ctx, entity={"name": name})
        current = self._find(context)
        self.before["repository"] = describe_repository(current)
        if current is None:
            self.changed = True
            current = {"name": name, "latest_version_href": None} if self.check_mode else context.create(body={"name": name})
        self.after["repository"] = describe_repository(current)
        return context, current

    def sync(self, repository_context, repository, remote, describe_source):
        """Run the sync task; return the repository as it is afterwards."""
        if self.check_mode:
            return repository  # assumes nothing new upstream (a sync is not a dry-run in Pulp)
        task = repository_context.call(
            "sync", parameters={repository_context.HREF: repository["pulp_href"]}, body={"remote": remote["pulp_href"]},
            non_blocking=True,
        )
        try:
            task = self.pulp_ctx.wait_for_task(task)
        except PulpException:
            task = self.pulp_ctx.api.call("tasks_read", parameters={"task_href": task["pulp_href"]})
            error = task.get("error") or {}
            raise OsbsFlowError(
                "Pulp could not sync %s into the Pulp repository %r: %s (task %s, state %s)"
                % (describe_source, repository["name"], error.get("description") or error.get("reason") or "unknown error",
                   task["pulp_href"], task.get("state"))
            )
        if any(_VERSION_NUMBER.search(href) for href in task.get("created_resources") or []):
            self.changed = True
        repository = repository_context.show(repository["pulp_href"])
        self.after["repository"] = describe_repository(repository)
        return repository

    def ensure_distribution(self, names, repository):
        context = PulpContainerDistributionContext(self.pulp_ctx, entity={"name": names["name"]})
        current = self._find(context)
        before_repository = None
        if current is not None:
            same = current.get("repository") and current.get("repository") == repository.get("pulp_href")
            before_repository = repository["name"] if same else current.get("repository")
        self.before["distribution"] = describe_distribution(current, before_repository)
        repository_href = repository.get("pulp_href")
        if current is None:
            body = {"name": names["name"], "base_path": names["base_path"], "repository": repository_href}
            self.changed = True
            current = body if self.check_mode else context.create(body=body)
        else:
            update = distribution_update(current, names["base_path"], repository_href)
            if update:
                self.changed = True
                current = dict(current, **update) if self.check_mode else context.update(body=update)
        self.after["distribution"] = describe_distribution(current, repository["name"])
        return current

    def tags(self, version_href):
        """{tag: manifest digest} in a repository version."""
        if not version_href:
            return {}
        version = {"repository_version": version_href}
        digests = {
            manifest["pulp_href"]: manifest["digest"]
            for manifest in PulpContainerManifestContext(self.pulp_ctx).list_iterator(parameters=dict(version))
        }
        return {
            tag["name"]: digests.get(tag["tagged_manifest"])
            for tag in PulpContainerTagContext(self.pulp_ctx).list_iterator(parameters=dict(version))
        }


def sync_to_pulp(pulp_ctx, params, check_mode):
    """The whole module run; returns the result dict (a failure is an OsbsFlowError)."""
    scheme, host_port, insecure = parse_registry_uri(params["registry_uri"])
    names = pulp_names(params["pulp_registry_name"], params.get("pulp_sync_registry_name"), params["repository"])

    username, password = params.get("registry_username"), params.get("registry_password")
    if params.get("registry_dockercfg_path"):
        username, password = read_dockercfg(params["registry_dockercfg_path"], host_port)
    if username is not None and password is None:
        raise OsbsFlowError("registry_username is set without registry_password")

    ca_cert_pem = None
    if params.get("registry_ca_cert"):
        try:
            with open(params["registry_ca_cert"]) as handle:
                ca_cert_pem = handle.read()
        except OSError as exc:
            raise OsbsFlowError("cannot read registry_ca_cert %s: %s" % (params["registry_ca_cert"], exc))

    source_url = "%s://%s" % (scheme, host_port)
    desired = desired_remote(
        names, source_url, params["repository"], params.get("tags"),
        tls_validation=(not insecure) and params.get("registry_validate_certs", True), ca_cert_pem=ca_cert_pem,
    )
    work = PulpContainerSync(pulp_ctx, check_mode)
    try:
        remote = work.ensure_remote(desired, username, password)
        repository_context, repository = work.ensure_repository(names["name"])
        repository = work.sync(repository_context, repository, remote, "%s/%s" % (source_url, params["repository"]))
        distribution = work.ensure_distribution(names, repository)
    except OsbsFlowError as exc:
        # A failure after an object was created or updated still changed Pulp: say so.
        exc.result["changed"] = work.changed
        raise
    except Exception as exc:
        raise pulp_failure(exc, params["pulp_url"].rstrip("/"), params["username"], traceback.format_exc(), changed=work.changed)

    version_href = repository.get("latest_version_href")
    all_tags = work.tags(version_href)
    wanted = synced_tags(params.get("tags"), all_tags)
    if not check_mode:
        missing = missing_tags(params.get("tags"), all_tags)
        if missing:
            raise OsbsFlowError(
                "the registry %s has no tag %s in repository %r: Pulp synced %s"
                % (source_url, ", ".join(missing), params["repository"], ", ".join(sorted(all_tags)) or "no tags")
            )
    host = pull_host(params["pulp_url"])
    pull_spec = "%s/%s" % (host, distribution["base_path"])
    return dict(
        changed=work.changed,
        repository_version=version_number(version_href),
        repository_version_href=version_href,
        repository_href=repository.get("pulp_href"),
        remote_href=remote.get("pulp_href"),
        distribution_href=distribution.get("pulp_href"),
        names=names,
        base_path=distribution["base_path"],
        pull_spec=pull_spec,
        tags=[
            dict(
                tag=tag,
                digest=all_tags.get(tag),
                pull_spec="%s:%s" % (pull_spec, tag),
                pull_spec_by_digest=("%s@%s" % (pull_spec, all_tags[tag])) if all_tags.get(tag) else None,
            )
            for tag in wanted
        ],
        diff=dict(before=work.before, after=work.after),
    )
