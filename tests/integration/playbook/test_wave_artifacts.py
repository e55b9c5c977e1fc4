"""What AWX gets from the autorebuild role's set_stats when a run has several waves (rebuild_dependents includes
the role once per moved base image): each artifact exact, read from the play's custom stats (the ansible.posix.json
callback, as AWX reads them), not added up as set_stats' default `aggregate: true` does (strings joined, dicts
merged over each other, a value of another type than the first dropped)."""

from __future__ import annotations

import json

from testlib import make_git_repo, run_module, run_playbook, set_tag_image

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def test_two_waves_give_aws_each_waves_artifacts_and_the_last_ones_exactly(osbs_engine, tmp_path):
    http = osbs_engine.session()
    set_tag_image(http, osbs_engine, osbs_engine.namespace, "artifacts-a", "latest", DIGEST_A)
    set_tag_image(http, osbs_engine, osbs_engine.namespace, "artifacts-b", "latest", DIGEST_B)
    # One dependent of artifacts-b, whose repository disables autorebuilds: skipped, no build.
    uri, commit = make_git_repo(tmp_path / "artifacts-off", {
        "Dockerfile": "FROM %s/artifacts-b:latest\nLABEL name=artifacts-off\n" % osbs_engine.registry,
        ".osbs-repo-config": "[autorebuild]\nenabled = no\n"})
    made = run_module(osbs_engine, "osbs_buildconfig", dict(
        namespace=osbs_engine.namespace, git_uri=uri, git_branch="main", git_commit=commit,
        base_image="%s/artifacts-b:latest" % osbs_engine.registry, create_base_imagestream=False,
        image="artifacts-off", registry_uri=osbs_engine.registry, registry_secret=osbs_engine.registry_secret))
    assert not made.get("failed"), made
    assert made["trigger"] == "artifacts-b:latest"

    playbook = tmp_path / "two-waves.yml"
    waves = [{"imagestreamtag": "artifacts-a:latest", "digest": DIGEST_A}, {"imagestreamtag": "artifacts-b:latest", "digest": DIGEST_B}]
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "A wave per base", "loop": waves, "loop_control": {"loop_var": "wave"},
        "ansible.builtin.include_role": {"name": "osbs.flow.autorebuild"},
        "vars": {"osbs_import": "{{ wave }}", "osbs_namespace": osbs_engine.namespace, "osbs_autorebuild_fail_on_error": False,
                 "osbs_autorebuild_report_path": str(tmp_path) + "/report-{{ wave.imagestreamtag | replace(':', '-') }}.json"},
    }]}]))
    result = run_playbook(osbs_engine, playbook, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_SHOW_CUSTOM_STATS": "true"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    stats = json.loads(result.stdout)["global_custom_stats"]

    report = {tag: str(tmp_path / ("report-%s.json" % tag.replace(":", "-"))) for tag in ("artifacts-a-latest", "artifacts-b-latest")}
    assert json.loads((tmp_path / "report-artifacts-b-latest.json").read_text())[0]["action"] == "skipped"
    assert stats["osbs_waves"] == [
        {"imagestreamtag": "%s/artifacts-a:latest" % osbs_engine.namespace, "report": report["artifacts-a-latest"],
         "picture_svg": report["artifacts-a-latest"][: -len(".json")] + ".svg",
         "picture_markdown": report["artifacts-a-latest"][: -len(".json")] + ".md", "summary": {}},
        {"imagestreamtag": "%s/artifacts-b:latest" % osbs_engine.namespace, "report": report["artifacts-b-latest"],
         "picture_svg": report["artifacts-b-latest"][: -len(".json")] + ".svg",
         "picture_markdown": report["artifacts-b-latest"][: -len(".json")] + ".md", "summary": {"skipped": 1}},
    ]
    # The single-wave artifacts (the build playbook's one wave) are the last wave's, not both joined.
    assert stats["osbs_wave_report"] == report["artifacts-b-latest"]
    assert stats["osbs_wave_picture_markdown"] == report["artifacts-b-latest"][: -len(".json")] + ".md"
    assert stats["osbs_wave_summary"] == {"skipped": 1}
