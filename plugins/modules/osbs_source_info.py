#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: osbs_source_info
short_description: Read what the OSBS flow needs from a git repository or a checkout
version_added: 0.1.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - Reads step 1 of the OSBS flow. The Dockerfile gives the base image (the final stage's C(FROM), with
    C(ARG) values substituted and stage aliases followed) and the image name (its C(name) label). The OSBS
    repo configuration file gives whether autorebuilds are enabled.
  - With O(git_uri), the files are read from the git repository at one commit, the head of O(git_branch)
    or O(git_commit), with no checkout. The repository is kept bare in O(cache_dir) and only that commit
    is fetched (depth 1), so a later run fetches little; a O(git_commit) already in the cache is not
    fetched at all. Both files are read at the commit returned in RV(commit), so they always agree with it.
  - With O(path), the files are read from a checkout on the managed host, as it is.
  - A missing Dockerfile, C(FROM) or C(name) label, a malformed repo configuration file, or a repository
    or branch that cannot be fetched, fails with a message naming the repository, the commit, the file
    and what to fix.
  - The module only reads; fetching into the cache is not a change, so it runs in check mode as it does
    otherwise and never reports a change.
  - O(git_uri), O(git_branch) and O(git_commit) often come from a survey or a webhook, so they are checked
    by their grammar before git runs, and none of them reaches git where it could be read as an option.
    File names (O(context_dir), O(dockerfile_path), O(repo_config_file)) are only ever given to git as data.
extends_documentation_fragment:
  - osbs.flow.attributes
options:
  git_uri:
    description:
      - URI of the git repository, as C(git fetch) takes it (C(https://), C(http://), C(ssh://), C(git://),
        C(file:///path) or the scp-like C(user@host:path)).
      - Only git's own transports are used. A URI that names a remote helper (C(ext::), C(fd::), any other
        C(<name>::) or C(<name>://)), a local path without C(file://), a host or user beginning with C(-), a
        control character, or a password in an C(ssh://) URI is refused before git runs.
      - It is read with the git credentials of the host the module runs on (an SSH key or a git credential
        helper). An C(https://) or C(http://) URI with credentials in it is refused, as M(osbs.flow.osbs_buildconfig) refuses it.
      - Exactly one of O(git_uri) and O(path) is required.
    type: str
  git_branch:
    description:
      - Branch whose head is read. Its head is resolved once, by a fetch, and returned in RV(commit).
      - A branch name as git accepts it (C(git check-ref-format --branch)), for example C(main) or C(release/1.0).
        No C(-) at the start, no C(..), C(@{), space, control character or any of C(~^:?*[\), no component that
        begins with C(.) or ends with C(.lock). It is fetched as C(refs/heads/<branch>), so a tag is not a branch.
      - With O(git_commit), the branch the commit is on; it is fetched only when the server does not hand out
        commits by their name.
      - O(git_uri) needs O(git_branch), O(git_commit) or both.
    type: str
  git_commit:
    description:
      - Read this commit instead of the head of O(git_branch). A full commit name (40 hexadecimal digits, or 64 in a
        repository that uses SHA-256).
    type: str
  cache_dir:
    description:
      - Directory of the bare repositories the files are read from, one per O(git_uri), kept between runs.
      - Shared with other runs on the same host; they take turns on a repository.
      - It holds the sources of private repositories, so it is made private (mode C(0700)) when it is created,
        and an existing one that others can read or enter is made C(0700). A directory owned by another user is
        refused, since its owner could make git run commands through the repositories' configuration.
    type: path
    default: ~/.cache/osbs.flow/sources
  git_timeout:
    description:
      - Seconds one git command may take. A server that accepts the connection and never answers fails the task
        after this long, with a message naming the server; git and its helpers (C(git-remote-https), C(ssh)) are
        stopped.
      - Raise it for a very large repository on a slow link (a fetch is depth 1, so this is rare).
    type: int
    default: 300
  path:
    description:
      - A checkout on the managed host (the repository's top level), read as it is.
      - Exactly one of O(git_uri) and O(path) is required.
    type: path
  context_dir:
    description: Directory of the repository that holds the build context and the Dockerfile.
    type: str
  dockerfile_path:
    description: Path of the Dockerfile inside the context directory.
    type: str
    default: Dockerfile
  build_args:
    description: Values for the Dockerfile's C(ARG)s.
    type: dict
    default: {}
  repo_config_file:
    description: Name of the OSBS repo configuration file, at the top level of the repository.
    type: str
    default: .osbs-repo-config
attributes:
  check_mode:
    support: full
    details: The module only reads; it fetches into O(cache_dir) in check mode too.
  diff_mode:
    support: N/A
    details: The module only reads.
  idempotent:
    support: full
    details: The module only reads. A later run at a moved branch head reads the new head.
notes:
  - Needs C(git) on the host the module runs on when O(git_uri) is given.
  - "git runs with an environment built for it, not the whole environment of the module. It keeps what reaching a
    server as the user needs: C(HOME), C(XDG_CONFIG_HOME) (so C(~/.gitconfig) with its credential helpers,
    C(url.<base>.insteadOf), C(http.proxy) and C(http.sslCAInfo) settings, and C(~/.ssh) are used), C(PATH),
    C(USER), C(LOGNAME), C(TMPDIR), C(SSH_AUTH_SOCK), C(GIT_SSH), C(GIT_SSH_COMMAND), C(GIT_SSH_VARIANT), the proxy
    variables C(http_proxy), C(https_proxy), C(HTTPS_PROXY), C(all_proxy), C(ALL_PROXY), C(no_proxy), C(NO_PROXY),
    the CA variables C(GIT_SSL_CAINFO), C(GIT_SSL_CAPATH), C(SSL_CERT_FILE), C(SSL_CERT_DIR), and C(KRB5CCNAME),
    C(KRB5_CONFIG) for Kerberos, and the git configuration variables C(GIT_CONFIG_GLOBAL), C(GIT_CONFIG_SYSTEM),
    C(GIT_CONFIG_NOSYSTEM), C(GIT_CONFIG_COUNT) with its C(GIT_CONFIG_KEY_<n>) and C(GIT_CONFIG_VALUE_<n>).
    Other variables (C(GIT_DIR), C(GIT_CONFIG_PARAMETERS), C(GIT_SSL_NO_VERIFY), C(GIT_TRACE),
    C(LD_PRELOAD) and the like) do not reach git. The system's C(/etc/gitconfig) is read as usual."
  - git never prompts (C(GIT_TERMINAL_PROMPT=0), no terminal) and uses only its own transports
    (C(GIT_ALLOW_PROTOCOL=https:http:ssh:git:file)), whatever a URI, a redirect or C(url.insteadOf) says.
requirements:
  - dockerfile-parse >= 2.0
seealso:
  - module: osbs.flow.osbs_buildconfig
  - module: osbs.flow.osbs_autorebuild
"""

EXAMPLES = r"""
- name: Read the Dockerfile and .osbs-repo-config at the head of main
  osbs.flow.osbs_source_info:
    git_uri: https://git.example.com/containers/app.git
    git_branch: main
  register: source

- name: Build that commit
  osbs.flow.osbs_buildconfig:
    namespace: osbs
    git_uri: "{{ source.git_uri }}"
    git_branch: "{{ source.git_branch }}"
    git_commit: "{{ source.commit }}"
    base_image: "{{ source.base_image }}"
    image: "{{ source.image_name }}"
    registry_uri: registry.example.com

- name: Read a Dockerfile in a subdirectory at a given commit, with a cache of its own
  osbs.flow.osbs_source_info:
    git_uri: git@git.example.com:containers/tools.git
    git_branch: main
    git_commit: 3f1c0e5d9a2b4c6d8e0f1a2b3c4d5e6f7a8b9c0d
    context_dir: images/cli
    dockerfile_path: Containerfile
    build_args:
      BASE_TAG: "9.4"
    cache_dir: /var/cache/osbs/sources

- name: Read a checkout that is already on the host
  osbs.flow.osbs_source_info:
    path: /var/tmp/osbs/app
"""

RETURN = r"""
base_image:
  description: The base image of the final stage.
  returned: success
  type: str
  sample: registry.example.com/osbs/base:latest
image_name:
  description: The Dockerfile's C(name) label, the image's repository.
  returned: success
  type: str
  sample: osbs/app
labels:
  description: All labels of the final stage.
  returned: success
  type: dict
  sample: {"name": "osbs/app", "version": "1.0"}
autorebuild_enabled:
  description: Whether the repo configuration enables autorebuilds (true when the file, section or key is absent).
  returned: success
  type: bool
  sample: true
repo_config_present:
  description: Whether the repo configuration file exists (at RV(commit), with O(git_uri)).
  returned: success
  type: bool
  sample: true
dockerfile:
  description:
    - The Dockerfile read. With O(git_uri), its path inside the repository; with O(path), its path on the host.
  returned: success
  type: str
  sample: images/cli/Dockerfile
commit:
  description: The commit read (full name), the head of O(git_branch) or O(git_commit).
  returned: success, with O(git_uri)
  type: str
  sample: 3f1c0e5d9a2b4c6d8e0f1a2b3c4d5e6f7a8b9c0d
git_uri:
  description: The repository read, as given.
  returned: success, with O(git_uri)
  type: str
  sample: https://git.example.com/containers/app.git
git_branch:
  description: The branch, as given (null when only O(git_commit) was).
  returned: success, with O(git_uri)
  type: str
  sample: main
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.osbs.flow.plugins.module_utils.dockerfile import DOCKERFILE_PARSE_IMPORT_ERROR
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials, uri_secrets
from ansible_collections.osbs.flow.plugins.module_utils.repo_source import GIT_TIMEOUT, RepoSource
from ansible_collections.osbs.flow.plugins.module_utils.source_info import DEFAULT_CACHE_DIR, read_checkout, read_git_source


def main():
    module = AnsibleModule(
        argument_spec=dict(
            git_uri=dict(type="str"),
            git_branch=dict(type="str"),
            git_commit=dict(type="str"),
            cache_dir=dict(type="path", default=DEFAULT_CACHE_DIR),
            git_timeout=dict(type="int", default=GIT_TIMEOUT),
            path=dict(type="path"),
            context_dir=dict(type="str"),
            dockerfile_path=dict(type="str", default="Dockerfile"),
            build_args=dict(type="dict", default={}),
            repo_config_file=dict(type="str", default=".osbs-repo-config"),
        ),
        mutually_exclusive=[("path", "git_uri")],
        required_one_of=[("path", "git_uri")],
        required_by={"git_branch": "git_uri", "git_commit": "git_uri"},
        supports_check_mode=True,
    )
    if DOCKERFILE_PARSE_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("dockerfile-parse"), exception=DOCKERFILE_PARSE_IMPORT_ERROR)
    params = module.params
    # A token or password in git_uri is refused below, but Ansible echoes the arguments with the result: hide it there too.
    module.no_log_values.update(uri_secrets(params["git_uri"]))
    files = dict(
        context_dir=params["context_dir"],
        dockerfile_path=params["dockerfile_path"],
        build_args=params["build_args"],
        repo_config_file=params["repo_config_file"],
    )
    try:
        if params["path"]:
            result = read_checkout(params["path"], **files)
        else:
            result = read_git_source(
                RepoSource(params["cache_dir"], timeout=params["git_timeout"]), params["git_uri"],
                git_branch=params["git_branch"], git_commit=params["git_commit"], **files
            )
    except OsbsFlowError as exc:
        # Every message masks the URIs it names already; this catches one that git itself printed.
        module.fail_json(msg=mask_credentials(to_text(exc)))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
