#!/usr/bin/env python3
"""Record the BuildConfigs osbs-client itself rendered, for the adoption tests (tests/data/osbs-client/).

For each osbs-client release in RELEASES, its `osbs/` package and `inputs/` templates are taken from a clone of
github.com/containerbuildsystem/osbs-client (git archive of the tag) and its own BuildRequest renders a production
BuildConfig (`render()`: the name from spec.py / utils.make_name_from_git, the labels of `render`, the git ref as
`render_bump_release` leaves it). The ImageChange trigger is added to prod.json as osbs-client's tests did
(test_render_prod_request_with_trigger), since real deployments carried one. Nothing of osbs-client is kept but
its output.

    python3 hack/render_osbs_client_buildconfigs.py /path/to/osbs-client.git

Run it with a Python that has osbs-client's few imports (the project's .venv does: six, dockerfile-parse, requests).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RELEASES = ("0.15", "0.24", "0.39", "0.48")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BASE_IMAGE = "registry.example.com/osbs/busybox:latest"
# The BuildConfigs the integration test creates in osbs-local: one per release, each its own repository.
SHAPES = {
    "0.15": ("https://git.example.com/containers/legacy-v015.git", "main"),
    "0.24": ("https://git.example.com/containers/a-rather-long-repository-name-for-osbs-client.git", "rhel-8.4-candidate"),
    "0.39": ("https://git.example.com/containers/legacy-v039.git", "main"),
    "0.48": ("https://git.example.com/containers/legacy-v048.git", "release/2.0"),
}
# Name and label checks: (git URI, branch) pairs rendered at every release; a pair a release refused is recorded
# with its error.
PAIRS = [
    ("https://git.example.com/containers/app.git", "main"),
    ("https://git.example.com/containers/app.git/", "master"),
    ("git://git.example.com/rpms/httpd-container", "rhel-7.4"),
    ("https://git.example.com/containers/a-rather-long-repository-name-for-osbs-client.git", "rhel-8.4-candidate"),
    ("https://git.example.com/containers/a-rather-long-repository-name-for-osbs-client.git", "a-branch-name-that-is-long-as-well"),
    ("https://git.example.com/ns/Web_App.git", "Feature_X"),
    ("https://git.example.com/containers/app.git", "release/2.0"),
    ("ssh://git@git.example.com/forks/team/app.git", "main"),
    ("https://git.example.com/x/" + "r" * 70 + ".git", "b" * 40),
]

RENDER = r'''
import json, os, re, shutil, sys, tempfile
sys.path.insert(0, os.getcwd())
import osbs.build.build_request as build_request
git_uri, git_ref, git_branch, base_image = sys.argv[1:5]
repo_dir = sys.argv[5] if len(sys.argv) > 5 else None  # a checkout of the repository: production's repo info
outdir = tempfile.mkdtemp()
for name in os.listdir("inputs"):
    shutil.copy(os.path.join("inputs", name), outdir)
with open(os.path.join(outdir, "prod.json")) as f:
    template = json.load(f)
template["spec"]["triggers"] = [{"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "{{BASE_IMAGE_STREAM}}"}}}]
with open(os.path.join(outdir, "prod.json"), "w") as f:
    json.dump(template, f)
kwargs = dict(git_uri=git_uri, git_ref=git_ref, git_branch=git_branch, user="osbs", component="legacy",
              base_image=base_image, name_label="osbs/legacy", registry_uri="registry.example.com",
              openshift_uri="https://openshift.example.com/", builder_openshift_url="https://openshift.example.com/",
              sources_command="fedpkg sources", vendor="Example", authoritative_registry="registry.example.com",
              distribution_scope="public", architecture="x86_64", build_host="build.example.com",
              git_push_url="ssh://git.example.com/legacy.git", git_push_username="osbs", koji_target="legacy-candidate",
              registry_api_versions=["v2"])
if hasattr(build_request, "BuildManager"):  # up to 0.3x: one class per build type
    manager = build_request.BuildManager(outdir)
    request = (getattr(manager, "get_build_request_by_type", None) or manager.get_build_request)("prod")
    kwargs["build_image"] = "buildroot:latest"
    try:
        from pkg_resources import parse_version
        request.set_openshift_required_version(parse_version("1.0.6"))
    except ImportError:
        pass
else:  # later: one BuildRequest on prod.json/prod_inner.json, which asks the OSBS API for config maps
    request = build_request.BuildRequest(outdir)
    kwargs["build_from"] = "image:buildroot:latest"

    class ConfigMapApi:
        def get_config_map(self, name):
            return type("ConfigMap", (), {"get_data_by_key": lambda self, key=None: {}})()

    kwargs["osbs_api"] = ConfigMapApi()
while True:
    try:
        request.set_params(**kwargs)
        break
    except TypeError as exc:  # a parameter this release does not know yet
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if not unknown:
            raise
        kwargs.pop(unknown.group(1))
if repo_dir:  # as api.py create_prod_build did from 0.41 on: the repository's .osbs-repo-config decides the triggers
    from dockerfile_parse import DockerfileParser
    from osbs.repo_utils import AdditionalTagsConfig, RepoConfiguration, RepoInfo
    request.set_repo_info(RepoInfo(DockerfileParser(repo_dir), RepoConfiguration(dir_path=repo_dir),
                                   AdditionalTagsConfig(dir_path=repo_dir)))
try:
    print(json.dumps({"buildconfig": request.render()}))
except Exception as exc:
    print(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc)}))
'''


def render(tree, git_uri, branch, repo_dir=None):
    proc = subprocess.run([sys.executable, "-c", RENDER, git_uri, COMMIT, branch, BASE_IMAGE] + ([repo_dir] if repo_dir else []), cwd=tree,
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout)


# The shape most production BuildConfigs of osbs-client 0.41 and later had: rendered with the repository's info
# (api.py set_repo_info) and no .osbs-repo-config, which osbs-client read as autorebuild disabled, so
# adjust_for_repo_info removed the triggers.
NO_REPO_CONFIG = {"0.48": ("https://git.example.com/containers/legacy-norepoconfig.git", "main")}


def record_without_repo_config(tree, release, out):
    git_uri, branch = NO_REPO_CONFIG[release]
    checkout = tempfile.mkdtemp(prefix="osbs-client-repo-")
    try:
        Path(checkout, "Dockerfile").write_text("FROM %s\nLABEL name=osbs/legacy\n" % BASE_IMAGE)
        rendered = render(tree, git_uri, branch, checkout)
    finally:
        shutil.rmtree(checkout, ignore_errors=True)
    bc = rendered["buildconfig"]
    for env in bc["spec"]["strategy"]["customStrategy"].get("env", []):
        env["value"] = "(atomic-reactor plugin configuration, %d characters, left out)" % len(env["value"])
    bc["apiVersion"] = "build.openshift.io/v1"
    record = {
        "osbs_client_release": release,
        "rendered_by": "osbs/build/build_request.py render() at tag %s with inputs/prod.json and prod_inner.json of that "
                       "tag and set_repo_info of a checkout with a Dockerfile and no .osbs-repo-config (autorebuild "
                       "disabled: adjust_for_repo_info removed the triggers); name from osbs/utils.py make_name_from_git"
                       % release,
        "git_uri": git_uri, "git_branch": branch, "git_commit": COMMIT, "base_image": BASE_IMAGE, "buildconfig": bc,
    }
    (out / ("buildconfig-%s-no-repo-config.json" % release)).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def main(mirror, out=Path(__file__).resolve().parent.parent / "tests" / "data" / "osbs-client"):
    out.mkdir(parents=True, exist_ok=True)
    names = {}
    for release in RELEASES:
        tree = tempfile.mkdtemp(prefix="osbs-client-%s-" % release)
        try:
            archive = subprocess.run(["git", "--git-dir", mirror, "archive", "--", release, "osbs", "inputs"],
                                     capture_output=True, check=True, timeout=120).stdout
            subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True, timeout=120)
            git_uri, branch = SHAPES[release]
            rendered = render(tree, git_uri, branch)
            bc = rendered["buildconfig"]
            # The plugin configuration is long and says nothing the adoption looks at; its size is kept.
            for env in bc["spec"]["strategy"]["customStrategy"].get("env", []):
                env["value"] = "(atomic-reactor plugin configuration, %d characters, left out)" % len(env["value"])
            bc["apiVersion"] = "build.openshift.io/v1"  # osbs-client's templates say v1, the legacy API group
            record = {
                "osbs_client_release": release,
                "rendered_by": "osbs/build/build_request.py render() at tag %s with inputs/prod.json and prod_inner.json "
                               "of that tag, the ImageChange trigger added as tests' test_render_prod_request_with_trigger "
                               "did; name from %s" % (release, "osbs/build/spec.py ProdSpec.set_params ('{repo}-{branch}')"
                                                       if release == "0.15" else "osbs/utils.py make_name_from_git"),
                "git_uri": git_uri,
                "git_branch": branch,
                "git_commit": COMMIT,
                "base_image": BASE_IMAGE,
                "buildconfig": bc,
            }
            (out / ("buildconfig-%s.json" % release)).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            if release in NO_REPO_CONFIG:
                record_without_repo_config(tree, release, out)
            names[release] = []
            for pair_uri, pair_branch in PAIRS:
                result = render(tree, pair_uri, pair_branch)
                row = {"git_uri": pair_uri, "git_branch": pair_branch}
                if "error" in result:
                    row["error"] = result["error"]
                else:
                    row["name"] = result["buildconfig"]["metadata"]["name"]
                    row["labels"] = {k: v for k, v in result["buildconfig"]["metadata"]["labels"].items()
                                     if k.startswith("git-")}
                names[release].append(row)
        finally:
            shutil.rmtree(tree, ignore_errors=True)
    (out / "names.json").write_text(json.dumps({
        "rendered_by": "osbs-client's own BuildRequest.render() at each tag (hack/render_osbs_client_buildconfigs.py)",
        "releases": names}, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/containerbuildsystem+osbs-client/repo")
