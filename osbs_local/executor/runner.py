"""Running one OpenShift Build (docker strategy, git source) for real: clone, build, push.

run_build() is what the engine's build controller calls in a worker thread. It fetches the git
source, prepares the Dockerfile the way OpenShift's docker builder does (final FROM replaced by
spec.strategy.dockerStrategy.from, the strategy's env inserted after every FROM, build info
appended as ENV and LABEL lines, spec.output.imageLabels as LABEL), builds with buildah (vfs
storage, chroot isolation) or through a Docker Engine API (the `docker` SDK; podman's compatible service works), pushes to
spec.output.to and returns the digest the registry stores.

Failures are BuildFailure with an OpenShift reason, a message for a person and the last log lines.
Registry credentials only ever reach the tools as files (by path) or API parameters, never the log.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Callable

from .. import registry_client
from . import git_source
from .buildah import BuildahRun
from .docker_api import DockerApiRun
from .dockerfile import from_images, locate_dockerfile, parse_from, prepare_dockerfile, split_instructions
from .process import BuildCancelled, BuildFailure, LogTail

__all__ = ["BuildFailure", "BuildCancelled", "run_build"]

# dockerStrategy.imageOptimizationPolicy values that ask for one layer with all the Dockerfile adds (None, the default, keeps a layer per step)
SKIP_LAYERS_POLICIES = ("SkipLayers", "SkipLayersAndWarn")


# -- the entry point -------------------------------------------------------------------------------
def run_build(build: dict, *, workdir: Path, storage_dir: Path, log: Callable[[str], None],
              push_auths: dict | None = None, pull_auths: dict | None = None, ca_dir: Path | None = None,
              builder: str = "buildah", docker_host: str | None = None,
              cancel: threading.Event | None = None, source_secret: dict | None = None,
              git_timeout: float = git_source.DEFAULT_GIT_TIMEOUT) -> dict:
    cancel = cancel or threading.Event()
    tail = LogTail(log)
    workdir = Path(workdir)
    # The pull and push credential files and the source secret's files are written here: the engine's user's alone.
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    workdir.chmod(0o700)
    try:
        return _run(build, workdir=workdir, storage_dir=Path(storage_dir), log=tail, push_auths=push_auths,
                    pull_auths=pull_auths, ca_dir=Path(ca_dir) if ca_dir else None, builder=builder,
                    docker_host=docker_host, cancel=cancel, source_secret=source_secret, git_timeout=git_timeout)
    except BuildFailure as failure:
        if not failure.log_snippet:
            failure.log_snippet = tail.snippet()
        tail(f"error: build failed ({failure.reason}): {failure.message}")
        raise
    except BuildCancelled:
        tail("Build cancelled")
        raise
    except Exception as exc:  # a bug or an unforeseen tool failure: still a failed build, not a crash
        failure = BuildFailure("GenericBuildFailed", f"the build failed unexpectedly: {exc}", tail.snippet())
        tail(f"error: {failure.message}")
        raise failure from exc
    finally:
        for name in ("pull-auth.json", "push-auth.json"):
            (workdir / name).unlink(missing_ok=True)


def _run(build, *, workdir, storage_dir, log, push_auths, pull_auths, ca_dir, builder, docker_host, cancel, source_secret,
         git_timeout):
    spec = build.get("spec") or {}
    metadata = build.get("metadata") or {}
    source = spec.get("source") or {}
    strategy = (spec.get("strategy") or {}).get("dockerStrategy")
    if strategy is None:
        if (spec.get("strategy") or {}).get("type", "Docker") != "Docker":
            raise BuildFailure("GenericBuildFailed", f"strategy {(spec.get('strategy') or {}).get('type')} is not supported; "
                               "osbs-local runs Docker strategy builds only")
        strategy = {}
    if builder not in ("buildah", "docker"):
        raise BuildFailure("GenericBuildFailed", f"unknown builder {builder!r} (buildah or docker)")

    # Source.
    checkout = workdir / "source"
    if checkout.exists():
        shutil.rmtree(checkout)
    git = source.get("git")
    revision = None
    if git:
        commit = ((spec.get("revision") or {}).get("git") or {}).get("commit")
        revision = git_source.fetch_source(git.get("uri"), git.get("ref"), commit, checkout, log=log, cancel=cancel,
                                           source_secret=source_secret, timeout=git_timeout)
    elif source.get("dockerfile") is not None:
        checkout.mkdir(parents=True)
    else:
        raise BuildFailure("FetchSourceFailed", "the build has neither spec.source.git nor spec.source.dockerfile")
    context = git_source.context_directory(checkout, source.get("contextDir"))

    # Dockerfile.
    dockerfile = locate_dockerfile(context, strategy.get("dockerfilePath"), source)
    base_override = None
    if strategy.get("from"):
        if strategy["from"].get("kind", "DockerImage") != "DockerImage":
            raise BuildFailure("InvalidImageReference", f"strategy from {strategy['from'].get('kind')} "
                               f"{strategy['from'].get('name')} was not resolved to a DockerImage pull spec")
        base_override = strategy["from"]["name"]
    build_args = _env_pairs(strategy.get("buildArgs"), "buildArgs", log)
    env = _env_pairs(strategy.get("env"), "env", log)
    text = dockerfile.read_text()
    prepared = prepare_dockerfile(text, base_image=base_override, env=env,
                                  build_env=_build_info_env(metadata, source, revision),
                                  build_labels=_build_info_labels(metadata, source, revision)
                                  + _env_pairs((spec.get("output") or {}).get("imageLabels"), "imageLabels", log))
    original_froms = [parse_from(arguments)[1] for _, _, keyword, arguments in split_instructions(text)[1] if keyword == "FROM"]
    if not original_froms:
        raise BuildFailure("ManageDockerfileFailed", f"{dockerfile.relative_to(context)} has no FROM instruction")
    dockerfile.write_text(prepared)
    if base_override:
        log(f"Replaced Dockerfile FROM image {original_froms[-1]} with {base_override}")
    base_images = from_images(prepared, build_args)

    # Output.
    output = (spec.get("output") or {}).get("to")
    if output and output.get("kind", "DockerImage") != "DockerImage":
        raise BuildFailure("InvalidOutputReference",
                           f"output {output.get('kind')} {output.get('name')} was not resolved to a DockerImage pull spec")
    target = _with_tag(output["name"]) if output else f"localhost/osbs-local/{metadata.get('name', 'build')}:latest"

    runner_args = dict(context=context, dockerfile=dockerfile, target=target, push=bool(output),
                       base_images=base_images, build_args=build_args, no_cache=bool(strategy.get("noCache")),
                       skip_layers=strategy.get("imageOptimizationPolicy") in SKIP_LAYERS_POLICIES,
                       workdir=workdir, push_auths=push_auths, pull_auths=pull_auths, ca_dir=ca_dir,
                       log=log, cancel=cancel)
    if builder == "buildah":
        digest = BuildahRun(storage_dir=storage_dir, **runner_args).run()
    else:
        digest = DockerApiRun(docker_host=docker_host, **runner_args).run()
    result = {"digest": digest, "image_reference": None, "revision": revision}
    if output and digest:
        host, repository, _ = registry_client.split_image_reference(target)
        result["image_reference"] = f"{host}/{repository}@{digest}"
    return result


def _env_pairs(items: list | None, field: str, log: Callable[[str], None]) -> list[tuple[str, str]]:
    pairs = []
    for item in items or []:
        if "valueFrom" in item and "value" not in item:
            log(f"warning: {field} {item.get('name')} uses valueFrom, which osbs-local does not resolve; skipped")
            continue
        pairs.append((str(item["name"]), str(item.get("value", ""))))
    return pairs


def _build_info_env(metadata: dict, source: dict, revision: dict | None) -> list[tuple[str, str]]:
    env = [("OPENSHIFT_BUILD_NAME", metadata.get("name", "")), ("OPENSHIFT_BUILD_NAMESPACE", metadata.get("namespace", ""))]
    git = source.get("git") or {}
    if git.get("uri"):
        env.append(("OPENSHIFT_BUILD_SOURCE", git_source.redact_url(git["uri"])))
    if git.get("ref"):
        env.append(("OPENSHIFT_BUILD_REF", git["ref"]))
    if revision:
        env.append(("OPENSHIFT_BUILD_COMMIT", revision["commit"]))
    return env


def _build_info_labels(metadata: dict, source: dict, revision: dict | None) -> list[tuple[str, str]]:
    labels = []
    if revision:
        author = revision.get("author") or {}
        labels += [("io.openshift.build.commit.author", f"{author.get('name', '')} <{author.get('email', '')}>"),
                   ("io.openshift.build.commit.id", revision["commit"]),
                   ("io.openshift.build.commit.message", revision.get("message", ""))]
    git = source.get("git") or {}
    if git.get("ref"):
        labels.append(("io.openshift.build.commit.ref", git["ref"]))
    labels += [("io.openshift.build.name", metadata.get("name", "")),
               ("io.openshift.build.namespace", metadata.get("namespace", ""))]
    if git.get("uri"):
        labels.append(("io.openshift.build.source-location", git_source.redact_url(git["uri"])))
    if source.get("contextDir"):
        labels.append(("io.openshift.build.source-context-dir", source["contextDir"]))
    return labels


def _with_tag(reference: str) -> str:
    last = reference.rsplit("/", 1)[-1]
    return reference if (":" in last or "@" in reference) else f"{reference}:latest"
