"""What adopting an osbs-client BuildConfig keeps and what `adopted.changes` says: the git proxies, nodeSelector,
resources, labels, annotations and other triggers stay; every dropped field is named (the custom strategy's
secrets and environment variables by name), however long the values; autorebuilds that osbs-client had off (0.41
and later removed the triggers when .osbs-repo-config was missing) and osbs.flow turns on are said, with a warning."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import desired_spec, merge_buildconfig
from ansible_collections.osbs.flow.plugins.module_utils.osbs_adoption import Found, adoption_result

DATA = Path(__file__).resolve().parents[3] / "data" / "osbs-client" / "buildconfig-0.48.json"
BASE = "registry.example.com/osbs/busybox:latest"
PROXIES = {"httpProxy": "http://proxy.example.com:3128", "httpsProxy": "http://proxy.example.com:3128", "noProxy": ".example.com"}


def params(**extra):
    record = json.loads(DATA.read_text())
    return dict(dict(git_uri=record["git_uri"], git_branch=record["git_branch"], git_commit=record["git_commit"],
                     git_source_secret=None, base_image=BASE, image="osbs/legacy", image_tag="latest",
                     registry_uri="registry.example.com", registry_secret=None, dockerfile_path="Dockerfile", context_dir=None,
                     build_args={}, no_cache=False, image_optimization_policy=None, repo_config_file=".osbs-repo-config",
                     autorebuild_enabled=True, run_policy="Serial", labels={}), **extra)


def production():
    """The recorded 0.48 BuildConfig as a production cluster held it: proxies, secrets, resources, a nodeSelector."""
    bc = json.loads(DATA.read_text())["buildconfig"]
    bc["metadata"]["annotations"] = {"team": "web"}
    bc["spec"]["source"]["git"].update(PROXIES)
    custom = bc["spec"]["strategy"]["customStrategy"]
    custom["env"].append({"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"})
    custom["secrets"] = [{"mountPath": "/var/run/secrets/koji", "secretSource": {"name": "kojisecret"}},
                         {"mountPath": "/var/run/secrets/pulp", "secretSource": {"name": "pulpsecret"}}]
    bc["spec"]["resources"] = {"limits": {"memory": "2Gi"}}
    bc["spec"]["nodeSelector"] = {"auto_build": "true"}
    bc["spec"]["triggers"].insert(0, {"type": "Generic", "generic": {"secretReference": {"name": "hook"}}})
    return bc


def adopt(before, **extra):
    after = merge_buildconfig(copy.deepcopy(before), before["metadata"]["name"], "osbs", desired_spec(params(**extra)))
    return after, adoption_result(Found(before, "labels"), before, after)


def test_adoption_keeps_what_is_not_osbs_flows():
    before = production()
    after, _result = adopt(before)
    assert {k: after["spec"]["source"]["git"].get(k) for k in PROXIES} == PROXIES
    assert after["spec"]["resources"] == {"limits": {"memory": "2Gi"}} and after["spec"]["nodeSelector"] == {"auto_build": "true"}
    assert after["metadata"]["annotations"]["team"] == "web"
    assert after["spec"]["triggers"][0] == {"type": "Generic", "generic": {"secretReference": {"name": "hook"}}}


def test_every_dropped_field_is_named():
    _after, result = adopt(production())
    changes = result["changes"]
    for field in ("spec.strategy.customStrategy.env[ATOMIC_REACTOR_PLUGINS]", "spec.strategy.customStrategy.env[HTTPS_PROXY]",
                  "spec.strategy.customStrategy.secrets[kojisecret]", "spec.strategy.customStrategy.secrets[pulpsecret]",
                  "spec.strategy.customStrategy.exposeDockerSocket", "spec.strategy.customStrategy.from"):
        assert any(line.startswith(field) and " removed" in line for line in changes), (field, changes)
    assert not any("httpProxy" in line or "noProxy" in line for line in changes), changes
    assert any("keeps osbs-client's spec.nodeSelector" in line for line in result["warnings"]), result


def test_a_long_trigger_list_does_not_hide_the_base_triggers_change():
    before = production()
    before["spec"]["triggers"][0]["generic"]["secretReference"]["name"] = "h" * 300
    _after, result = adopt(before, base_image="registry.example.com/ubi9:9.4")
    assert any(line.startswith("spec.triggers[ImageChange osbs-busybox:latest] removed") for line in result["changes"]), result
    assert any(line.startswith("spec.triggers[ImageChange ubi9:9.4] set to") for line in result["changes"]), result


def test_turning_on_autorebuilds_osbs_client_had_off_is_said_and_warned():
    before = production()
    before["spec"]["triggers"] = []  # 0.41+: no .osbs-repo-config, autorebuild off, triggers removed
    _after, result = adopt(before)
    assert any(line.startswith("spec.triggers[ImageChange osbs-busybox:latest] set to") for line in result["changes"]), result
    assert result["warnings"][0].startswith("autorebuilds turned on for BuildConfig legacy-v048-release20-63f91"), result
    assert "enabled = false" in result["warnings"][0]
    # Kept off when the repository says so: a paused trigger, no warning about turning them on.
    _after, result = adopt(before, autorebuild_enabled=False)
    assert not any(w.startswith("autorebuilds turned on") for w in result["warnings"]), result
