# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 1 of the flow: the Dockerfile and the OSBS repo configuration file of an image's source.

Either a local checkout, or a git repository read at one commit through
RepoSource's cache of bare repositories: the branch head is resolved once
and both files are read at that commit, so they always agree with the
commit returned (the one the BuildConfig records and the build checks out).
"""

from __future__ import annotations

import os
import posixpath

from ansible_collections.osbs.flow.plugins.module_utils.dockerfile import read_dockerfile
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import check_branch_name, check_commit, check_git_transport, mask_credentials
from ansible_collections.osbs.flow.plugins.module_utils.naming import check_git_uri
from ansible_collections.osbs.flow.plugins.module_utils.repo_config import DEFAULT_REPO_CONFIG_FILE, parse_repo_config

DEFAULT_CACHE_DIR = "~/.cache/osbs.flow/sources"


def _summary(content, config, present, dockerfile):
    return {
        "base_image": content["base_image"],
        "image_name": content["image_name"],
        "labels": content["labels"],
        "autorebuild_enabled": config["autorebuild_enabled"],
        "repo_config_present": present,
        "dockerfile": dockerfile,
    }


def _read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError:
        raise OsbsFlowError("%s is not UTF-8 text: save it as UTF-8" % path)


def read_checkout(path, context_dir=None, dockerfile_path="Dockerfile", build_args=None, repo_config_file=DEFAULT_REPO_CONFIG_FILE):
    """What step 1 reads, from a checkout at `path` on this host."""
    dockerfile = os.path.normpath(os.path.join(path, context_dir or "", dockerfile_path))
    repo_config = os.path.join(path, repo_config_file)
    if not os.path.isfile(dockerfile):
        raise OsbsFlowError("%s does not exist: check dockerfile_path and context_dir, or add the Dockerfile to the repository" % dockerfile)
    content = read_dockerfile(_read_text(dockerfile), build_args, filename=dockerfile)
    present = os.path.isfile(repo_config)
    config = parse_repo_config(_read_text(repo_config) if present else None, filename=repo_config)
    return _summary(content, config, present, dockerfile)


def path_in_repo(*parts, what):
    """`parts` joined into a path from the top of the repository, as git names files in a tree."""
    given = [part for part in parts if part]
    path = posixpath.normpath(posixpath.join(*given)) if given else "."
    if path in (".", "..") or path.startswith(("/", "../")):
        raise OsbsFlowError(
            "%s: %r is not a file inside the repository: give a path relative to the repository's top level "
            "that stays inside it" % (what, path)
        )
    return path


def read_git_source(repo_source, git_uri, git_branch=None, git_commit=None, context_dir=None, dockerfile_path="Dockerfile",
                    build_args=None, repo_config_file=DEFAULT_REPO_CONFIG_FILE):
    """What step 1 reads, from git repository `git_uri` at `git_commit`, or at the head of `git_branch`.

    `repo_source` is a RepoSource. One fetch, of the branch head or of the
    commit (none when git_commit is in its cache already; a server that refuses
    a commit by sha gets its branch fetched instead), then both files are read
    at that commit. Adds `commit` (full sha), `git_uri` and `git_branch` to what
    read_checkout returns; `dockerfile` is the path inside the repository.
    """
    # Each value by its grammar, named as the user gave it, before anything is fetched or written.
    check_git_uri(git_uri)
    check_git_transport(git_uri, name="git_uri")
    if not git_branch and not git_commit:
        raise OsbsFlowError("reading %s needs git_branch (its head is read) or git_commit: give one of them" % mask_credentials(git_uri))
    if git_branch:
        check_branch_name(git_branch, name="git_branch")
    if git_commit:
        git_commit = check_commit(git_commit, name="git_commit")
    dockerfile = path_in_repo(context_dir, dockerfile_path, what="context_dir and dockerfile_path")
    repo_config = path_in_repo(repo_config_file, what="repo_config_file")

    commit = repo_source.resolve(git_uri, commit=git_commit, branch=git_branch)
    where = "commit %s of %s" % (commit, mask_credentials(git_uri))
    if not git_commit:
        where += " (the head of branch %s)" % git_branch
    texts = repo_source.read_files(git_uri, commit, [dockerfile, repo_config])
    if texts[dockerfile] is None:
        raise OsbsFlowError(
            "%s does not exist at %s: check dockerfile_path and context_dir, or add the Dockerfile to the repository"
            % (dockerfile, where)
        )
    content = read_dockerfile(texts[dockerfile], build_args, filename="%s at %s" % (dockerfile, where))
    present = texts[repo_config] is not None
    config = parse_repo_config(texts[repo_config], filename="%s at %s" % (repo_config, where))
    result = _summary(content, config, present, dockerfile)
    result.update(commit=commit, git_uri=git_uri, git_branch=git_branch)
    return result
