"""base_images.unfinished_cascade, whether a scheduled run of rebuild_dependents has a wave to run, on a cluster read
through a fake client: a failed dependent is a failure (not "done"), an opted-out dependent is done, and the graph
is the wave's own (version tags moving with a rebuilt image included)."""

import copy
import json

from ansible_collections.osbs.flow.plugins.module_utils.base_images import unfinished_cascade
from ansible_collections.osbs.flow.plugins.module_utils.identity import START_WINDOW_ANNOTATION

NS = "osbs"
ROOT = (NS, "ubi:latest")


def digest(char):
    return "sha256:" + char * 64


def buildconfig(name, base, trigger_image):
    return {"metadata": {"namespace": NS, "name": name, "annotations": {}},
            "spec": {"strategy": {"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": base}}},
                     "output": {"to": {"kind": "DockerImage", "name": "registry.example/%s:latest" % name.replace("bc-", "")}},
                     "triggers": [{"type": "ImageChange", "imageChange": {}}]},
            "status": {"imageChangeTriggers": [{"from": {"name": base, "namespace": NS},
                                                "lastTriggeredImageID": "registry.example/x@" + trigger_image}]}}


def build(bc_name, number, phase, base, image=None):
    status = {"phase": phase}
    if image:
        status["output"] = {"to": {"imageDigest": image}}
    return {"metadata": {"name": "%s-%d" % (bc_name, number), "labels": {"openshift.io/build-config.name": bc_name},
                         "annotations": {"openshift.io/build.number": str(number), "openshift.io/build-config.name": bc_name}},
            "spec": {"strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": "registry.example/x@" + base}}}},
            "status": status}


class Cluster:
    """ImageStreams by name (tag -> image digest), builds by BuildConfig name (any order), read as the API answers."""

    def __init__(self, streams, builds, labels=None):
        self.streams = streams
        self.builds = builds
        self.labels = labels or {}

    def get(self, kind, namespace, name):
        if kind == "ImageStream":
            tags = self.streams.get(name, {})
            return {"metadata": {"name": name}, "spec": {"tags": []},
                    "status": {"tags": [{"tag": tag, "items": [{"image": image}]} for tag, image in tags.items()]}}
        if kind == "ImageStreamTag":
            stream, tag = name.split(":")
            image = self.streams.get(stream, {}).get(tag)
            if not image:
                return None
            return {"image": {"metadata": {"name": image},
                              "dockerImageMetadata": {"Config": {"Labels": self.labels.get(image, {})}}}}
        raise AssertionError(kind)

    def list(self, kind, namespace, label_selector=None):
        assert kind == "Build"
        label, value = label_selector.split("=")
        return {"items": copy.deepcopy(self.builds.get(value, [])) if label == "openshift.io/build-config.name" else []}


def vendor_moved_to_n():
    """The vendor's tag moved to image n; app's trigger fired for it; leaf FROM app is on app's image a."""
    streams = {"ubi": {"latest": digest("n")}, "app": {"latest": digest("a")}, "leaf": {"latest": digest("l")}}
    builds = {"bc-app": [build("bc-app", 1, "Complete", digest("o"), digest("a"))],
              "bc-leaf": [build("bc-leaf", 1, "Complete", digest("a"), digest("l"))]}
    bcs = [buildconfig("bc-app", "ubi:latest", digest("n")), buildconfig("bc-leaf", "app:latest", digest("a"))]
    return streams, builds, bcs


def test_a_dependent_whose_build_for_the_current_base_failed_is_a_failure_on_every_run():
    streams, builds, bcs = vendor_moved_to_n()
    builds["bc-app"].insert(0, build("bc-app", 2, "Failed", digest("n")))
    why, failures = unfinished_cascade(Cluster(streams, builds), bcs, ROOT)
    assert why is None
    assert len(failures) == 1 and "osbs/bc-app-2" in failures[0] and "Failed" in failures[0], failures
    assert digest("n") in failures[0]


def test_a_cancelled_or_errored_build_for_the_current_base_is_a_failure_too():
    for phase in ("Error", "Cancelled"):
        streams, builds, bcs = vendor_moved_to_n()
        builds["bc-app"].insert(0, build("bc-app", 2, phase, digest("n")))
        why, failures = unfinished_cascade(Cluster(streams, builds), bcs, ROOT)
        assert why is None and len(failures) == 1 and phase in failures[0], (phase, failures)


def test_a_failed_user_build_after_a_complete_autorebuild_for_the_current_base_is_no_failure_of_the_cascade():
    streams, builds, bcs = vendor_moved_to_n()
    streams["app"]["latest"] = digest("b")
    builds["bc-app"].insert(0, build("bc-app", 2, "Complete", digest("n"), digest("b")))
    builds["bc-app"].insert(0, build("bc-app", 3, "Failed", digest("n")))  # a new commit that does not build
    bcs[1]["status"]["imageChangeTriggers"][0]["lastTriggeredImageID"] = "registry.example/x@" + digest("b")
    builds["bc-leaf"].insert(0, build("bc-leaf", 2, "Complete", digest("b"), digest("m")))
    streams["leaf"]["latest"] = digest("m")
    assert unfinished_cascade(Cluster(streams, builds), bcs, ROOT) == (None, [])


def test_a_failed_build_for_an_older_base_is_not_this_base_s_failure():
    streams, builds, bcs = vendor_moved_to_n()
    builds["bc-app"].insert(0, build("bc-app", 2, "Failed", digest("o")))
    bcs[0]["status"]["imageChangeTriggers"][0]["lastTriggeredImageID"] = "registry.example/x@" + digest("o")
    why, failures = unfinished_cascade(Cluster(streams, builds), bcs, ROOT)
    assert "has not fired" in why and failures == []  # a wave is due: it builds app from n


def test_a_dependent_whose_repository_disables_autorebuilds_is_finished():
    streams, builds, bcs = vendor_moved_to_n()
    builds["bc-app"].insert(0, build("bc-app", 2, "Complete", digest("n"), digest("a")))
    off = buildconfig("bc-off", "ubi:latest", digest("o"))  # its trigger never fired for n: the wave skipped it
    off["spec"]["triggers"][0]["imageChange"]["paused"] = True
    builds["bc-off"] = [build("bc-off", 1, "Complete", digest("o"), digest("f")),
                        build("bc-off", 2, "Cancelled", digest("n"))]  # the wave cancelled the trigger's build
    streams["off"] = {"latest": digest("f")}
    assert unfinished_cascade(Cluster(streams, builds), bcs + [off], ROOT) == (None, [])

    # Paused only while a build of it is being started (the start window): it is unpaused after, so not done.
    off["metadata"]["annotations"][START_WINDOW_ANNOTATION] = json.dumps({"paused": ["ubi:latest"], "since": "2026-12-04T19:00:00Z"})
    off["spec"]["triggers"][0]["imageChange"]["from"] = {"kind": "ImageStreamTag", "name": "ubi:latest"}
    why, _failures = unfinished_cascade(Cluster(streams, builds), bcs + [off], ROOT)
    assert why and "bc-off" in why and "has not fired" in why, why


def test_the_cascade_check_sees_the_dependents_of_version_tags_the_wave_moves():
    streams, builds, bcs = vendor_moved_to_n()
    builds["bc-app"].insert(0, build("bc-app", 2, "Complete", digest("n"), digest("a")))
    streams["app"]["3"] = digest("a")  # app's version tag, moved with latest by every rebuild of app
    labels = {digest("a"): {"version": "3", "release": "2"}}
    grand = buildconfig("bc-grand", "app:3", digest("z"))  # its trigger has not fired for app:3's image a
    why, failures = unfinished_cascade(Cluster(streams, builds, labels), bcs + [grand], ROOT)
    assert why and "bc-grand" in why and "app:3" in why, why
