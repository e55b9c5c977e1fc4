"""The graph of issue 5 on osbs-local and the steps the wave tests repeat (see conftest.py)."""

from __future__ import annotations

import json
import subprocess

from testlib import commit_files, make_git_repo, run_module

PREFIX = "wave-"
DEPENDENTS = ("app", "leaf", "tool", "odd")
# short name -> the short name of the image it is built FROM (None: the busybox base)
ISSUE_GRAPH = {"base": None, "app": "base", "leaf": "app", "tool": "base", "odd": "base"}


class WaveGraph:
    """The repositories and BuildConfigs of a graph (issue 5's by default), and the steps the tests repeat.

    Names start with `prefix`, so graphs of different tests never depend on each other's images.
    """

    def __init__(self, engine, busybox_base, root, prefix=PREFIX, parents=None):
        self.engine = engine
        self.busybox_base = busybox_base
        self.root = root
        self.prefix = prefix
        self.repos = {}  # short name -> (path, uri)
        self.commits = {}  # short name -> the commit the BuildConfig records
        self.buildconfigs = {}  # short name -> BuildConfig name
        self.base_images = {short: self.image_ref(parent) if parent else busybox_base
                            for short, parent in (parents or ISSUE_GRAPH).items()}

    def image_ref(self, short):
        return "%s/%s%s:latest" % (self.engine.registry, self.prefix, short)

    @property
    def namespace(self):
        return self.engine.namespace

    def make_repo(self, short, repo_config=None, slow=False, sleep=8):
        # `slow`: with the engine's triggers active, a build of a disabled dependent starts at the base
        # import and must still be running when the wave (started by ansible-playbook) cancels it.
        run = ("sleep %d && " % sleep if slow else "") + "echo %s > /%s.txt" % (short, short)
        files = {"Dockerfile": "FROM %s\nLABEL name=%s%s\nRUN %s\n" % (self.base_images[short], self.prefix, short, run)}
        if repo_config is not None:
            files[".osbs-repo-config"] = repo_config
        path = self.root / short
        uri, commit = make_git_repo(path, files)
        self.repos[short] = (path, uri)
        self.commits[short] = commit

    def ensure_buildconfig(self, short, commit=None):
        """osbs_buildconfig for the repository at `commit` (by default the one recorded); returns its name."""
        _, uri = self.repos[short]
        commit = commit or self.commits[short]
        bc = run_module(self.engine, "osbs_buildconfig", dict(
            namespace=self.namespace, git_uri=uri, git_branch="main", git_commit=commit,
            base_image=self.base_images[short], image=self.prefix + short,
            registry_uri=self.engine.registry, registry_secret=self.engine.registry_secret,
        ))
        assert not bc.get("failed"), bc.get("msg")
        self.buildconfigs[short] = bc["name"]
        self.commits[short] = commit
        return bc["name"]

    def user_build(self, short, commit=None):
        """osbs_buildconfig, then osbs_build (user): one image through steps 2-3 (reactor_import_image is import_image)."""
        commit = commit or self.commits[short]
        build = run_module(self.engine, "osbs_build", dict(
            namespace=self.namespace, buildconfig=self.ensure_buildconfig(short, commit), git_commit=commit, wait_timeout=600,
        ))
        assert not build.get("failed"), build.get("msg")
        assert build["phase"] == "Complete"
        return build

    def build_and_import(self, *shorts):
        """For each short name in order: its repository, its user build and the import of its image."""
        for short in shorts:
            self.make_repo(short)
            self.import_image(short, self.user_build(short))

    def import_image(self, short, build, **extra):
        result = run_module(self.engine, "reactor_import_image", dict(
            namespace=self.namespace, image=build["output_image"], expected_digest=build["image_digest"], **extra
        ))
        assert not result.get("failed"), result.get("msg")
        return result

    def new_base(self, content):
        """A new base image: a commit to base's repository, its user build and its import."""
        path, _ = self.repos["base"]
        _, commit = commit_files(path, {"version.txt": content + "\n"}, message="base " + content)
        build = self.user_build("base", commit)
        imported = self.import_image("base", build)
        assert imported["changed"] is True and imported["digest"] == build["image_digest"]
        return imported

    # -- looking at the cluster ---------------------------------------------------------------------

    def kubectl(self, *args, stdin=None, check=True):
        return subprocess.run(
            ["kubectl", "--kubeconfig", self.engine.kubeconfig, "-n", self.namespace, *args],
            input=stdin, capture_output=True, text=True, check=check,
        )

    def get(self, kind, name):
        return json.loads(self.kubectl("get", kind, name, "-o", "json").stdout)

    def builds(self, short):
        out = self.kubectl("get", "builds", "-l", "openshift.io/build-config.name=%s" % self.buildconfigs[short], "-o", "json")
        return sorted(json.loads(out.stdout)["items"], key=lambda b: int(b["metadata"]["annotations"]["openshift.io/build.number"]))

    def build_names(self):
        return {short: [b["metadata"]["name"] for b in self.builds(short)] for short in DEPENDENTS}

    def new_builds(self, before):
        """short -> the builds made since `before` (a build_names() snapshot)."""
        return {short: [b for b in self.builds(short) if b["metadata"]["name"] not in before[short]] for short in DEPENDENTS}

    def set_triggers_paused(self, paused, shorts=DEPENDENTS):
        for short in shorts:
            bc = self.get("bc", self.buildconfigs[short])
            ops = [
                {"op": "add", "path": "/spec/triggers/%d/imageChange/paused" % index, "value": paused}
                for index, trigger in enumerate(bc["spec"]["triggers"]) if trigger["type"] == "ImageChange"
            ]
            assert ops, bc["spec"]["triggers"]
            self.kubectl("patch", "bc", self.buildconfigs[short], "--type=json", "-p", json.dumps(ops))

    def istag_digest(self, short):
        return self.get("imagestreamtag", "%s%s:latest" % (self.prefix, short))["image"]["metadata"]["name"]
