"""Release numbering and identity labels (identity.py), the writes around instantiate (release.py), and the reuse
check leaving the identity labels out (build.same_recipe)."""

import copy
import datetime
import json

from ansible_collections.osbs.flow.plugins.module_utils.build import same_recipe
from ansible_collections.osbs.flow.plugins.module_utils.identity import (
    START_WINDOW_ANNOTATION,
    identity_labels,
    labels_of,
    next_release,
    nvr,
    with_image_labels,
)
from ansible_collections.osbs.flow.plugins.module_utils.release import STALE_WINDOW_SECONDS, ReleaseKeeper

COMMIT = "c" * 40
NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.timezone.utc)


def buildconfig(triggers=None, image_labels=None, annotations=None):
    bc = {
        "metadata": {"name": "app", "namespace": "ns", "resourceVersion": "1",
                     "annotations": dict({"osbs.flow/bump-release": json.dumps({"git_ref": COMMIT, "git_branch": "main"}),
                                          "osbs.flow/dockerfile-labels": json.dumps({"name": "osbs/app", "version": "1.0"})},
                                         **(annotations or {}))},
        "spec": {
            "source": {"type": "Git", "git": {"uri": "https://git.example.com/osbs/app.git", "ref": COMMIT}},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": "registry.example.com/osbs/app:latest"}},
            "triggers": triggers if triggers is not None else [
                {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "base:latest"}}},
                {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "other:1"}, "paused": True}},
            ],
        },
    }
    if image_labels:
        bc["spec"]["output"]["imageLabels"] = [{"name": k, "value": v} for k, v in image_labels.items()]
    return bc


def build_with(release, version=None):
    labels = [{"name": "release", "value": release}]
    if version:
        labels.append({"name": "version", "value": version})
    return {"metadata": {"name": "app-%s" % release}, "spec": {"output": {"imageLabels": labels}}}


def test_the_next_release_is_one_above_every_build_and_never_below_what_the_buildconfig_holds():
    assert next_release([], {}, "osbs/app", "1.0") == "1"
    assert next_release([{"release": "1"}, {"release": "3"}, {"release": "x"}], {}, "osbs/app", "1.0") == "4"
    # Builds pruned: the BuildConfig's number still counts.
    assert next_release([{"release": "2"}], {"release": "6"}, "osbs/app", "1.0") == "6"
    # A build whose labels show another version does not count; one whose labels leave it out (the Dockerfile set it) does.
    assert next_release([{"release": "9", "version": "0.9"}, {"release": "2"}], {}, "osbs/app", "1.0") == "3"


def test_a_dockerfile_release_gets_release_dot_n_for_autorebuilds():
    assert next_release([], {}, "osbs/app", "1.0", dockerfile_release="7") == "7.1"
    assert next_release([{"release": "7"}, {"release": "7.1"}, {"release": "8.5"}], {}, "osbs/app", "1.0",
                        dockerfile_release="7") == "7.2"


def test_identity_labels_keep_the_dockerfiles_own_and_leave_credentials_out():
    bc = buildconfig()
    bc["spec"]["source"]["git"]["uri"] = "https://ci-token:s3cret@git.example.com/osbs/app.git"
    labels = identity_labels(bc, {"name": "osbs/app", "version": "1.0", "vcs-ref": "mine"}, COMMIT, "3",
                             "https://api.cluster.example.com:6443", "amd64", NOW)
    assert labels == {
        "release": "3", "vcs-type": "git", "vcs-url": "https://git.example.com/osbs/app.git",
        "build-date": "2026-12-04T12:00:00Z", "architecture": "amd64", "com.redhat.build-host": "api.cluster.example.com:6443",
    }
    # A Dockerfile's own release is not written again; unknown Dockerfile labels: only `name` is taken as set.
    assert "release" not in identity_labels(bc, {"name": "osbs/app", "release": "3"}, COMMIT, "3", None, None, NOW)
    assert identity_labels(bc, None, COMMIT, "1", None, None, NOW)["vcs-ref"] == COMMIT
    assert "name" not in identity_labels(bc, None, COMMIT, "1", None, None, NOW)
    # The image label is public: the user part is left out, not masked (p@ss: the last @ ends it).
    for uri, public in (("ssh://git:p@ss@git.example.com:2222/osbs/app.git", "ssh://git.example.com:2222/osbs/app.git"),
                        ("git@git.example.com:osbs/app.git", "git@git.example.com:osbs/app.git"),
                        ("https://git.example.com/osbs/app.git", "https://git.example.com/osbs/app.git")):
        bc["spec"]["source"]["git"]["uri"] = uri
        assert identity_labels(bc, None, COMMIT, "1", None, None, NOW)["vcs-url"] == public


def test_nvr():
    assert nvr({"name": "osbs/app", "version": "1.0", "release": "3"}) == "osbs-app-1.0-3"
    assert nvr({"name": "osbs/app", "com.redhat.component": "app-container", "version": "1.0", "release": "3"}) == "app-container-1.0-3"
    assert nvr({"name": "osbs/app", "release": "3"}) == "osbs-app-3"
    assert nvr({"name": "osbs/app"}) is None


def test_the_reuse_check_leaves_the_identity_labels_out_but_not_a_users_own_image_label():
    bc = with_image_labels(buildconfig(), {"release": "5", "build-date": "2026-12-04T12:00:00Z", "vcs-ref": COMMIT})
    bc["spec"]["output"]["imageLabels"].insert(0, {"name": "team", "value": "blue"})
    build = {"spec": copy.deepcopy({k: bc["spec"][k] for k in ("source", "strategy", "output")})}
    build["spec"]["output"] = with_image_labels(
        {"spec": {"output": build["spec"]["output"]}}, {"release": "4", "build-date": "2026-12-01T00:00:00Z"})["spec"]["output"]
    assert same_recipe(build, bc)
    build["spec"]["output"]["imageLabels"][0]["value"] = "red"
    assert not same_recipe(build, bc)


class FakeClient:
    """The BuildConfig and Builds of one namespace; replace() checks the resourceVersion as the server does."""

    host = "https://api.example.com:6443"

    def __init__(self, bc, builds=(), imagestream=None):
        self.bc = copy.deepcopy(bc)
        self.builds = list(builds)
        self.writes = 0
        self.imagestream = imagestream

    def get(self, kind, namespace, name):
        if kind == "ImageStream":
            return copy.deepcopy(self.imagestream) if self.imagestream and name == self.imagestream["metadata"]["name"] else None
        assert kind == "BuildConfig"
        return copy.deepcopy(self.bc)

    def list(self, kind, namespace, label_selector=None):
        return {"items": copy.deepcopy(self.builds) if label_selector.startswith("openshift.io/") else []}

    def replace(self, kind, namespace, body):
        assert body["metadata"]["resourceVersion"] == self.bc["metadata"]["resourceVersion"], "written blind"
        self.writes += 1
        self.bc = copy.deepcopy(body)
        self.bc["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(self.bc)


def paused(bc):
    return {t["imageChange"]["from"]["name"]: bool(t["imageChange"].get("paused")) for t in bc["spec"]["triggers"]}


def test_prepare_pauses_the_triggers_for_the_window_and_settle_unpauses_only_those_it_paused():
    client = FakeClient(buildconfig(), [build_with("1")])
    keeper = ReleaseKeeper(client, "ns", "app")
    written, identity = keeper.prepare(client.get("BuildConfig", "ns", "app"), client.builds, COMMIT, True, "amd64")
    assert identity["release"] == "2" and labels_of(written["spec"]["output"])["release"] == "2"
    assert paused(written) == {"base:latest": True, "other:1": True}
    assert written["metadata"]["labels"]["is_autorebuild"] == "false"
    client.builds.insert(0, build_with("2"))  # what instantiate made from it
    settled = keeper.settle("amd64", started=client.builds[0], user_build=True)
    # The next build the cluster may start gets 3; the trigger paused by the repository's config stays paused.
    assert labels_of(settled["spec"]["output"])["release"] == "3"
    assert paused(settled) == {"base:latest": False, "other:1": True}
    assert START_WINDOW_ANNOTATION not in settled["metadata"]["annotations"]
    assert settled["metadata"]["labels"]["is_autorebuild"] == "true"
    # Nothing new: nothing written.
    writes = client.writes
    assert keeper.ensure_next(client.get("BuildConfig", "ns", "app"), "amd64") == client.bc
    assert client.writes == writes


def test_a_build_the_cluster_started_by_itself_moves_the_buildconfig_on_when_adopted():
    client = FakeClient(buildconfig(image_labels={"release": "3", "vcs-ref": COMMIT}), [build_with("3"), build_with("2")])
    after = ReleaseKeeper(client, "ns", "app").ensure_next(client.get("BuildConfig", "ns", "app"), "amd64")
    assert labels_of(after["spec"]["output"])["release"] == "4" and client.writes == 1


def test_a_window_left_by_a_run_that_died_is_closed_by_the_next_run_and_another_runs_fresh_one_is_not():
    old = (NOW - datetime.timedelta(seconds=STALE_WINDOW_SECONDS + 60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for since, closed in ((old, True), (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), False)):
        triggers = [{"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "base:latest"}, "paused": True}}]
        bc = buildconfig(triggers=triggers, image_labels={"release": "4", "vcs-ref": COMMIT, "name": "osbs/app"},
                         annotations={START_WINDOW_ANNOTATION: json.dumps({"paused": ["base:latest"], "since": since})})
        client = FakeClient(bc, [build_with("3")])
        after = ReleaseKeeper(client, "ns", "app").ensure_next(client.get("BuildConfig", "ns", "app"), "amd64")
        assert paused(after) == {"base:latest": not closed}
        assert (START_WINDOW_ANNOTATION in after["metadata"]["annotations"]) is not closed
        assert client.writes == (1 if closed else 0)


def test_a_build_instantiate_has_counted_but_not_created_yet_took_the_release_the_buildconfig_holds():
    """OAS generator.go instantiate updates the BuildConfig (lastVersion) before it creates the Build: a run that
    reads in between sees lastVersion 3 without Build 3, and must not give 3 again."""
    bc = buildconfig(image_labels={"release": "3", "vcs-ref": COMMIT})
    builds = [dict(build_with("2"), metadata={"name": "app-2"}), dict(build_with("1"), metadata={"name": "app-1"})]
    keeper = ReleaseKeeper(FakeClient(bc, builds), "ns", "app")
    assert keeper.identity(dict(bc, status={"lastVersion": 2}), builds, COMMIT, True, None)["release"] == "3"
    assert keeper.identity(dict(bc, status={"lastVersion": 3}), builds, COMMIT, True, None)["release"] == "4"


def test_an_autorebuild_adopts_only_a_build_of_the_commit_the_buildconfig_records():
    from ansible_collections.osbs.flow.plugins.module_utils.build import matching_build
    base = "sha256:" + "b" * 64

    def build(ref, revision=None):
        made = {"metadata": {"name": "app-1"}, "status": {"phase": "Running"},
                "spec": {"source": {"git": {"ref": ref}},
                         "strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": "r/base@" + base}}}}}
        if revision:
            made["spec"]["revision"] = {"git": {"commit": revision}}
        return made
    other = "d" * 40
    assert matching_build([build(COMMIT)], {}, COMMIT, base, True) is not None
    assert matching_build([build(other)], {}, COMMIT, base, True) is None
    assert matching_build([build("main", revision=other)], {}, COMMIT, base, True) is None
    assert matching_build([build("main")], {}, COMMIT, base, True) is not None  # not known yet: adopted


class NoCallsClient:
    """A client any request to fails the test: a refused value must be refused before anything is read or written."""

    host = "https://api.example.com:6443"

    def __getattr__(self, name):
        raise AssertionError("the cluster was called (%s) before git_commit was checked" % name)


BUILD_PARAMS = dict(namespace="ns", buildconfig="app", git_commit=None, mode="user", from_latest=False, base_image_digest=None,
                    force=False, wait=True, wait_timeout=60, cancel_on_timeout=False, when_running="fail", scratch=False,
                    dockerfile_labels=None)
BUILDCONFIG_PARAMS = dict(git_uri="https://git.example.com/app.git", git_branch="main", git_commit=COMMIT,
                          base_image="registry.example.com/ubi9:latest", dockerfile_path="Dockerfile", build_args={},
                          no_cache=False, image_optimization_policy=None, context_dir=None, git_source_secret=None,
                          registry_uri="registry.example.com", image="osbs/app", image_tag="latest", registry_secret=None,
                          repo_config_file=".osbs-repo-config", dockerfile_labels={"name": "osbs/app"}, labels={},
                          autorebuild_enabled=True, run_policy="Serial")


def test_git_commit_must_be_a_full_commit_name_in_osbs_build_and_osbs_buildconfig():
    """A ref reaches the builder's `git fetch <uri> <ref>` with no `--` (library-go repository.go): an option there; a
    branch name would build the branch head on a cluster. Both modules refuse them before any call."""
    import pytest
    from ansible_collections.osbs.flow.plugins.module_utils.build import run_build
    from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import desired_spec
    from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError

    class Module:
        client = NoCallsClient()
        check_mode = False
        _diff = False

    for value in ("--upload-pack=touch /tmp/pwn", "main", "c" * 12):
        for scratch in (False, True):
            Module.params = dict(BUILD_PARAMS, git_commit=value, scratch=scratch)
            with pytest.raises(OsbsFlowError) as refused:
                run_build(Module)
            assert repr(value) in str(refused.value) and "git_commit" in str(refused.value), str(refused.value)
        with pytest.raises(OsbsFlowError) as refused:
            desired_spec(dict(BUILDCONFIG_PARAMS, git_commit=value))
        assert repr(value) in str(refused.value) and "git_commit" in str(refused.value), str(refused.value)
    assert desired_spec(dict(BUILDCONFIG_PARAMS, git_commit=COMMIT.upper()))["spec"]["source"]["git"]["ref"] == COMMIT


class InstantiatingClient(FakeClient):
    """FakeClient whose instantiate makes the Build as the server does: the request's annotations copied onto it."""

    def __init__(self, bc, builds=(), imagestream=None):
        super().__init__(bc, builds, imagestream)
        self.requests = []

    def path(self, *parts):
        return "/".join(parts)

    def request(self, method, path, body=None):
        self.requests.append(body)
        number = len(self.builds) + 1
        build = {"metadata": {"name": "app-%d" % number, "annotations": dict(body["metadata"].get("annotations") or {},
                                                                             **{"openshift.io/build.number": str(number)})},
                 "spec": {"revision": body.get("revision"), "output": copy.deepcopy(self.bc["spec"]["output"])},
                 "status": {"phase": "New"}}
        self.builds.insert(0, build)
        return copy.deepcopy(build)


def finished(build, phase="Complete"):
    return dict(build, status={"phase": phase})


def test_a_release_the_dockerfile_sets_that_a_build_already_made_is_refused_before_anything_is_written():
    """atomic-reactor's bump_release refused an explicit release whose NVR existed ("build already exists in Koji")."""
    from ansible_collections.osbs.flow.plugins.module_utils.build import BuildRunner
    from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
    import pytest

    def runner(client, commit, release):
        labels = {"name": "osbs/app", "version": "1.0", "release": release}
        return BuildRunner(client, "ns", "app", 60, git_commit=commit, dockerfile_labels=labels)

    client = InstantiatingClient(buildconfig())
    first, how = runner(client, COMMIT, "1").start()
    assert how == "started" and first["metadata"]["annotations"]["osbs.flow/nvr"] == "osbs-app-1.0-1"
    client.builds[0] = finished(client.builds[0])
    writes = client.writes
    with pytest.raises(OsbsFlowError) as refused:
        runner(client, "d" * 40, "1").start()  # a new commit whose Dockerfile keeps release=1
    message = str(refused.value)
    assert "osbs-app-1.0-1" in message and "app-1" in message and "bump the release label in the Dockerfile" in message, message
    assert client.writes == writes and len(client.requests) == 1  # nothing written, nothing instantiated
    # A bumped release is built; a release whose only build failed is free again (it pushed nothing).
    second, how = runner(client, "d" * 40, "2").start()
    assert how == "started" and second["metadata"]["annotations"]["osbs.flow/nvr"] == "osbs-app-1.0-2"
    client.builds[0] = finished(client.builds[0], "Failed")
    third, how = runner(client, "e" * 40, "2").start()
    assert how == "started" and third["metadata"]["annotations"]["osbs.flow/nvr"] == "osbs-app-1.0-2"


def test_the_start_window_is_a_lease_another_run_neither_overwrites_nor_closes(monkeypatch):
    """Run A has written its identity and paused the triggers (prepare) but not instantiated yet; run B starts
    then. B must not rewrite the BuildConfig A's instantiate copies (its ref and vcs-ref would be B's), nor close
    A's window; it waits, and fails saying why when A's window stays (A is stuck in instantiate here)."""
    from ansible_collections.osbs.flow.plugins.module_utils import build as build_module
    from ansible_collections.osbs.flow.plugins.module_utils.build import BuildRunner
    from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
    import pytest

    waited = []
    monkeypatch.setattr(build_module.time, "sleep", waited.append)
    a_commit, b_commit = "a" * 40, "b" * 40
    outcome = {}

    class Interleaving(InstantiatingClient):
        def request(self, method, path, body=None):
            if not outcome:  # between A's prepare and A's instantiate, run B tries to build its commit
                outcome["b_writes_before"] = self.writes
                try:
                    BuildRunner(self, "ns", "app", 60, git_commit=b_commit).start()
                except OsbsFlowError as exc:
                    outcome["b_error"] = str(exc)
                outcome["b_writes"] = self.writes - outcome["b_writes_before"]
                outcome["window_at_a_instantiate"] = START_WINDOW_ANNOTATION in self.bc["metadata"]["annotations"]
                # B's reuse path (ensure_next) must not close A's window nor move its release either.
                keeper = BuildRunner(self, "ns", "app", 60, autorebuild=True).releases
                before = self.writes
                keeper.ensure_next(self.get("BuildConfig", "ns", "app"), "amd64")
                outcome["ensure_next_writes"] = self.writes - before
            return super().request(method, path, body)

    client = Interleaving(buildconfig())
    built, how = BuildRunner(client, "ns", "app", 60, git_commit=a_commit).start()
    labels = labels_of(built["spec"]["output"])
    assert how == "started" and labels["vcs-ref"] == a_commit, labels
    assert outcome["b_writes"] == 0 and outcome["ensure_next_writes"] == 0, outcome
    assert outcome["window_at_a_instantiate"], outcome
    assert "another run's start window" in outcome.get("b_error", ""), outcome
    assert len(waited) == build_module.WINDOW_WAITS, waited
    assert len(client.builds) == 1  # B started nothing
    # A settled: its window is closed, and a run now starts at once.
    assert START_WINDOW_ANNOTATION not in client.bc["metadata"]["annotations"]
    client.builds[0] = finished(client.builds[0])
    later, how = BuildRunner(client, "ns", "app", 60, git_commit=b_commit).start()
    assert how == "started" and labels_of(later["spec"]["output"])["vcs-ref"] == b_commit


def imagestream(*tags):
    """The output ImageStream as the flow's import (and OSBS's import_image) leaves it: one tag per pushed tag."""
    return {"metadata": {"name": "osbs-app", "namespace": "ns"},
            "spec": {"tags": [{"name": tag, "from": {"kind": "DockerImage", "name": "r/osbs/app:" + tag}} for tag in tags]},
            "status": {"tags": [{"tag": tag, "items": [{"image": "sha256:" + "1" * 64}]} for tag in tags]}}


def test_release_numbers_are_unique_per_name_and_version_not_per_buildconfig():
    """An adopted osbs-client BuildConfig (its Builds have no imageLabels: Koji gave their release), or one deleted
    and made again, or another branch's for the same image: the output ImageStream's version-release tags are a
    floor, so the first flow build does not take 1.0-1 again."""
    from ansible_collections.osbs.flow.plugins.module_utils.build import BuildRunner
    from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
    import pytest

    osbs_client_builds = [{"metadata": {"name": "app-%d" % n, "annotations": {"openshift.io/build.number": str(n)}},
                           "spec": {"output": {}}, "status": {"phase": "Complete"}} for n in (3, 2, 1)]
    stream = imagestream("1.0-1", "1.0-2", "1.0-3", "1.0", "latest", "2.0-7", "main-20261204-abc")
    client = InstantiatingClient(buildconfig(), osbs_client_builds, stream)
    made, how = BuildRunner(client, "ns", "app", 60, git_commit="d" * 40,
                            dockerfile_labels={"name": "osbs/app", "version": "1.0"}).start()
    assert how == "started" and made["metadata"]["annotations"]["osbs.flow/nvr"] == "osbs-app-1.0-4", made["metadata"]
    # The BuildConfig moves on past it for the cluster's next build.
    assert labels_of(client.bc["spec"]["output"])["release"] == "5"
    # A release the Dockerfile sets that the ImageStream already has is refused, nothing written.
    client = InstantiatingClient(buildconfig(), osbs_client_builds, stream)
    with pytest.raises(OsbsFlowError) as refused:
        BuildRunner(client, "ns", "app", 60, git_commit="d" * 40,
                    dockerfile_labels={"name": "osbs/app", "version": "1.0", "release": "2"}).start()
    assert "osbs-app-1.0-2" in str(refused.value) and "osbs-app:1.0-2" in str(refused.value), str(refused.value)
    assert client.writes == 0 and not client.requests


def test_state_existing_writes_nothing_and_fails_without_a_buildconfig():
    """The build playbook's scratch path: osbs_buildconfig state=existing only looks the BuildConfig up."""
    from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import ensure_buildconfig
    from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
    import pytest

    class ReadOnlyClient:
        host = "https://api.example.com:6443"

        def __init__(self, bc):
            self.bc = bc

        def get(self, kind, namespace, name):
            return copy.deepcopy(self.bc) if kind == "BuildConfig" and self.bc and name == self.bc["metadata"]["name"] else None

        def list(self, kind, namespace, label_selector=None):
            return {"items": []}

    class Module:
        check_mode = False
        _diff = True
        warnings = []

        def warn(self, text):
            self.warnings.append(text)

    module = Module()
    module.params = dict(BUILDCONFIG_PARAMS, namespace="ns", name=None, state="existing", git_commit="d" * 40,
                         base_image="registry.example.com/ubi10:latest", when_running="fail", wait_timeout=60)
    module.client = ReadOnlyClient(None)
    with pytest.raises(OsbsFlowError) as refused:
        ensure_buildconfig(module)
    assert "run a user build of the branch first" in str(refused.value), str(refused.value)

    bc = buildconfig()
    bc["metadata"]["annotations"]["osbs.flow/base-image"] = "registry.example.com/ubi9:latest"
    module.params["name"] = "app"
    module.client = ReadOnlyClient(bc)  # it has no replace/create/request: a write would be an AttributeError
    result = ensure_buildconfig(module)
    assert result["changed"] is False and result["name"] == "app" and result["buildconfig"] == bc
    assert "ubi9" in module.warnings[0] and "ubi10" in module.warnings[0], module.warnings


def test_check_mode_says_changed_when_the_real_run_would_move_the_buildconfig_on():
    """osbs_build's `changed` comes from ensure_next returning another object: in check mode it must too, writing nothing."""
    client = FakeClient(buildconfig(image_labels={"release": "3", "vcs-ref": COMMIT}), [build_with("3"), build_with("2")])
    keeper = ReleaseKeeper(client, "ns", "app")
    current = client.get("BuildConfig", "ns", "app")
    preview = keeper.ensure_next(current, "amd64", check_mode=True)
    assert preview is not current and labels_of(preview["spec"]["output"])["release"] == "4"
    assert client.writes == 0
    # Nothing to move on: the same object, in check mode too.
    client = FakeClient(buildconfig(image_labels={"release": "4", "vcs-ref": COMMIT}), [build_with("3")])
    current = client.get("BuildConfig", "ns", "app")
    assert ReleaseKeeper(client, "ns", "app").ensure_next(current, "amd64", check_mode=True) is current


def test_a_version_or_release_that_cannot_be_in_an_nvr_is_refused_before_anything_is_written():
    """'1-2' makes an ambiguous NVR (Koji refused it); '1 2' and '1/2' cannot be in a tag. They were only warned
    about after the push (image_tags.planned_tags), and an autorebuild wrote '1 2.1' into imageLabels."""
    from ansible_collections.osbs.flow.plugins.module_utils.build import BuildRunner
    from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import desired_spec
    from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
    import pytest

    for label, value in (("release", "1-2"), ("release", "1 2"), ("version", "1/2"), ("version", "2.0-rc1")):
        labels = dict({"name": "osbs/app", "version": "1.0"}, **{label: value})
        client = InstantiatingClient(buildconfig())
        with pytest.raises(OsbsFlowError) as refused:
            BuildRunner(client, "ns", "app", 60, git_commit="d" * 40, dockerfile_labels=labels).start()
        assert repr(value) in str(refused.value) and label in str(refused.value), str(refused.value)
        assert client.writes == 0 and not client.requests
        with pytest.raises(OsbsFlowError) as refused:
            desired_spec(dict(BUILDCONFIG_PARAMS, dockerfile_labels=labels))
        assert repr(value) in str(refused.value), str(refused.value)
    # The Dockerfile labels the BuildConfig records count for an autorebuild too.
    bc = buildconfig(annotations={"osbs.flow/dockerfile-labels": json.dumps({"name": "osbs/app", "release": "1 2"})})
    client = InstantiatingClient(bc)
    with pytest.raises(OsbsFlowError):
        BuildRunner(client, "ns", "app", 60, autorebuild=True).start()
    assert client.writes == 0 and not client.requests
