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

import re
import shutil
import socket
import threading
from pathlib import Path
from typing import Callable

from . import gitsrc, v2
from .buildproc import BuildCancelled, BuildFailure, LogTail, buildah_command, run_streaming

__all__ = ["BuildFailure", "BuildCancelled", "run_build"]

DEFAULT_DOCKERFILE = "Dockerfile"
REGISTRY_RETRY_DELAY = "1s"  # buildah retries a failed pull/push 3 times; 2 s each made a dead registry slow to report
DOCKER_API_TIMEOUT = 3600  # seconds a build step may stay silent before the Docker API client gives up
# dockerStrategy.imageOptimizationPolicy values that ask for one layer with all the Dockerfile adds (None, the default, keeps a layer per step)
SKIP_LAYERS_POLICIES = ("SkipLayers", "SkipLayersAndWarn")


# -- the entry point -------------------------------------------------------------------------------
def run_build(build: dict, *, workdir: Path, storage_dir: Path, log: Callable[[str], None],
              push_auths: dict | None = None, pull_auths: dict | None = None, ca_dir: Path | None = None,
              builder: str = "buildah", docker_host: str | None = None,
              cancel: threading.Event | None = None, source_secret: dict | None = None) -> dict:
    cancel = cancel or threading.Event()
    tail = LogTail(log)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(build, workdir=workdir, storage_dir=Path(storage_dir), log=tail, push_auths=push_auths,
                    pull_auths=pull_auths, ca_dir=Path(ca_dir) if ca_dir else None, builder=builder,
                    docker_host=docker_host, cancel=cancel, source_secret=source_secret)
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


def _run(build, *, workdir, storage_dir, log, push_auths, pull_auths, ca_dir, builder, docker_host, cancel, source_secret):
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
        revision = gitsrc.fetch_source(git.get("uri"), git.get("ref"), commit, checkout, log=log, cancel=cancel,
                                       source_secret=source_secret)
    elif source.get("dockerfile") is not None:
        checkout.mkdir(parents=True)
    else:
        raise BuildFailure("FetchSourceFailed", "the build has neither spec.source.git nor spec.source.dockerfile")
    context = gitsrc.context_directory(checkout, source.get("contextDir"))

    # Dockerfile.
    dockerfile = _locate_dockerfile(context, strategy.get("dockerfilePath"), source)
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
    original_froms = [_parse_from(arguments)[1] for _, _, keyword, arguments in _instructions(text)[1] if keyword == "FROM"]
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
        digest = _BuildahRun(storage_dir=storage_dir, **runner_args).run()
    else:
        digest = _DockerRun(docker_host=docker_host, **runner_args).run()
    result = {"digest": digest, "image_reference": None, "revision": revision}
    if output and digest:
        host, repository, _ = v2.split_image_reference(target)
        result["image_reference"] = f"{host}/{repository}@{digest}"
    return result


# -- Dockerfile handling -------------------------------------------------------------------------
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


def _instructions(text: str) -> tuple[list[str], list[tuple[int, int, str, str]]]:
    """Split a Dockerfile into lines and instructions (first line, last line, KEYWORD, arguments)."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:  # parser directives come first, before any instruction or blank line
        match = _DIRECTIVE_RE.match(line)
        if not match:
            break
        if match.group(1).lower() == "escape":
            escape = match.group(2)[:1] or "\\"
    instructions = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        start, parts = index, []
        while True:
            current = lines[index].rstrip()
            if current.strip().startswith("#") and parts:
                index += 1  # comment lines inside a continued instruction are dropped by the parser
                if index >= len(lines):
                    break
                continue
            if current.endswith(escape) and index + 1 < len(lines):
                parts.append(current[:-1])
                index += 1
                continue
            parts.append(current[:-1] if current.endswith(escape) else current)
            break
        joined = " ".join(part.strip() for part in parts)
        keyword, _, arguments = joined.partition(" ")
        instructions.append((start, index, keyword.upper(), arguments.strip()))
        index += 1
    return lines, instructions


def _parse_from(arguments: str) -> tuple[list[str], str, str | None]:
    """FROM arguments -> (flags such as --platform=..., image, stage name or None)."""
    words = arguments.split()
    flags = [word for word in words if word.startswith("--")]
    rest = [word for word in words if not word.startswith("--")]
    image = rest[0] if rest else ""
    stage = rest[2] if len(rest) >= 3 and rest[1].lower() == "as" else None
    return flags, image, stage


def _quote(value: str) -> str:
    # Double quotes keep spaces; escaping $ keeps the value literal (no variable expansion).
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n") + '"'


def prepare_dockerfile(text: str, *, base_image: str | None = None, env: list | None = None,
                       build_env: list | None = None, build_labels: list | None = None) -> str:
    """What OpenShift's docker builder does to the Dockerfile before building.

    base_image replaces the image of the last FROM (the final stage); env is inserted as an ENV
    line after every FROM so RUN steps see it; build_env and build_labels are appended as ENV
    and LABEL lines, recording the build and its source in the image.
    """
    lines, instructions = _instructions(text)
    froms = [item for item in instructions if item[2] == "FROM"]
    replacements: dict[int, tuple[int, list[str]]] = {}
    for position, (start, end, _, arguments) in enumerate(froms):
        flags, image, stage = _parse_from(arguments)
        if base_image and position == len(froms) - 1:
            image = base_image
        new = [" ".join(["FROM", *flags, image] + (["AS", stage] if stage else []))]
        if env:
            new.append("ENV " + " ".join(f"{name}={_quote(value)}" for name, value in env))
        replacements[start] = (end, new)
    result: list[str] = []
    index = 0
    while index < len(lines):
        if index in replacements:
            end, new = replacements[index]
            result.extend(new)
            index = end + 1
        else:
            result.append(lines[index])
            index += 1
    if build_env:
        result.append("ENV " + " ".join(f"{name}={_quote(value)}" for name, value in build_env))
    if build_labels:
        result.append("LABEL " + " ".join(f"{_quote(name)}={_quote(value)}" for name, value in build_labels))
    return "\n".join(result) + "\n"


def from_images(text: str, build_args: list | dict) -> list[str]:
    """The images the FROM lines pull (stage names and scratch left out, ARG defaults and buildArgs applied).

    An image that still holds an unresolved variable is left out: the builder resolves it itself.
    """
    lines, instructions = _instructions(text)
    values = dict(build_args) if isinstance(build_args, dict) else dict(build_args or [])
    global_args: dict[str, str] = {}
    seen_from, stages, images = False, set(), []
    for _, _, keyword, arguments in instructions:
        if keyword == "ARG" and not seen_from:
            name, has_default, default = arguments.partition("=")
            name = name.strip()
            global_args[name] = values.get(name, default.strip().strip('"\'') if has_default else values.get(name, ""))
        elif keyword == "FROM":
            seen_from = True
            _, image, stage = _parse_from(arguments)
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), image)
            if image.lower() != "scratch" and image not in stages and "$" not in image and image not in images:
                images.append(image)
            if stage:
                stages.add(stage)
    return images


def _locate_dockerfile(context: Path, dockerfile_path: str | None, source: dict) -> Path:
    relative = (dockerfile_path or DEFAULT_DOCKERFILE).lstrip("/")
    path = (context / relative).resolve()
    if context != path and context not in path.parents:
        raise BuildFailure("ManageDockerfileFailed", f"dockerfilePath {dockerfile_path!r} points outside the build context")
    if source.get("dockerfile") is not None:  # an inline Dockerfile replaces the file in the source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source["dockerfile"])
    if not path.is_file():
        where = f"contextDir {source.get('contextDir')!r}" if source.get("contextDir") else "the repository root"
        raise BuildFailure("ManageDockerfileFailed",
                           f"no Dockerfile at {relative!r} in {where}; check dockerfilePath and contextDir")
    return path


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
        env.append(("OPENSHIFT_BUILD_SOURCE", gitsrc.redact_url(git["uri"])))
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
        labels.append(("io.openshift.build.source-location", gitsrc.redact_url(git["uri"])))
    if source.get("contextDir"):
        labels.append(("io.openshift.build.source-context-dir", source["contextDir"]))
    return labels


def _with_tag(reference: str) -> str:
    last = reference.rsplit("/", 1)[-1]
    return reference if (":" in last or "@" in reference) else f"{reference}:latest"


# -- shared failure wording ------------------------------------------------------------------------
_STEP_RE = re.compile(r"^(?:STEP \d+(?:/\d+)?: |Step \d+/\d+ : )(.*)$")


def _last_step(lines: list[str]) -> str | None:
    for line in reversed(lines):
        match = _STEP_RE.match(line.strip())
        if match:
            return match.group(1)
    return None


def _registry_problem(text: str, host: str) -> str:
    """A short cause for a registry failure, from what the tool printed."""
    lowered = text.lower()
    if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered:
        return f"registry {host} refused the credentials (unauthorized); check the secret for {host}"
    if "manifest unknown" in lowered or "not found" in lowered or "name unknown" in lowered:
        return "image not found in the registry; check the name and tag"
    if "x509" in lowered or "certificate" in lowered or "tls" in lowered and "handshake" in lowered:
        return f"TLS verification of registry {host} failed; the registry's CA is not trusted"
    if "connection refused" in lowered or "no such host" in lowered or "i/o timeout" in lowered or "connect:" in lowered:
        return f"cannot reach registry {host}; check that it runs and the address is right"
    return "see the build log"


def _last_error_line(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.lower().startswith(("error", "fatal")) or "error:" in line.lower():
            return line.strip()
    return lines[-1].strip() if lines else ""


# -- buildah -------------------------------------------------------------------------------------
class _BuildahRun:
    def __init__(self, *, storage_dir, context, dockerfile, target, push, base_images, build_args, no_cache, skip_layers,
                 workdir, push_auths, pull_auths, ca_dir, log, cancel):
        self.buildah = buildah_command(storage_dir)
        self.context, self.dockerfile, self.target, self.push_wanted = context, dockerfile, target, push
        self.base_images, self.build_args, self.no_cache, self.skip_layers = base_images, build_args, no_cache, skip_layers
        self.workdir, self.ca_dir, self.log, self.cancel = workdir, ca_dir, log, cancel
        self.pull_auth_file = v2.write_auth_file(pull_auths, workdir / "pull-auth.json")
        self.push_auth_file = v2.write_auth_file(push_auths, workdir / "push-auth.json")

    def _cert_args(self, host: str) -> list[str]:
        if self.ca_dir and (self.ca_dir / host).is_dir():
            return ["--cert-dir", str(self.ca_dir / host)]
        return []

    def _run(self, *args: str) -> tuple[int, list[str]]:
        return run_streaming([*self.buildah, *args], log=self.log, cancel=self.cancel, cwd=self.workdir)

    def run(self) -> str | None:
        # Pulled up front, one by one, so a pull problem is told apart from a failing step, and
        # always (not only when missing) so a moved tag is honoured and pull credentials checked.
        for image in self.base_images:
            host = v2.split_image_reference(image)[0]
            self.log(f"Pulling image {image} ...")
            status, lines = self._run("pull", "--quiet", "--policy", "always",
                                      "--retry-delay", REGISTRY_RETRY_DELAY, "--authfile", str(self.pull_auth_file),
                                      *self._cert_args(host), image)
            if status != 0:
                text = "\n".join(lines)
                raise BuildFailure("PullBuilderImageFailed",
                                   f"cannot pull base image {image}: {_registry_problem(text, host)} ({_last_error_line(lines)})")
        first_host = v2.split_image_reference(self.base_images[0])[0] if self.base_images else ""
        bud = ["bud", "--isolation", "chroot", "--format", "docker", "--pull=false",
               "--authfile", str(self.pull_auth_file), *self._cert_args(first_host),
               "-f", str(self.dockerfile), "-t", self.target]
        if not self.skip_layers:
            # A layer per step, kept as a cache for later builds unless noCache; without --layers buildah
            # commits everything the Dockerfile adds as one layer, which is what SkipLayers asks for.
            bud += ["--no-cache"] if self.no_cache else ["--layers"]
        for name, value in self.build_args:
            bud += ["--build-arg", f"{name}={value}"]
        status, lines = self._run(*bud, str(self.context))
        if status != 0:
            raise _build_failure(lines)
        if not self.push_wanted:
            return None
        host = v2.split_image_reference(self.target)[0]
        digest_file = self.workdir / "digest"
        digest_file.unlink(missing_ok=True)
        self.log(f"Pushing image {self.target} ...")
        status, lines = self._run("push", "--retry-delay", REGISTRY_RETRY_DELAY,
                                  "--authfile", str(self.push_auth_file), *self._cert_args(host),
                                  "--digestfile", str(digest_file), self.target, f"docker://{self.target}")
        if status != 0:
            raise BuildFailure("PushImageToRegistryFailed",
                               f"cannot push {self.target}: {_registry_problem(chr(10).join(lines), host)} "
                               f"({_last_error_line(lines)})")
        digest = digest_file.read_text().strip()
        self.log(f"Pushed image {self.target} with digest {digest}")
        return digest


def _build_failure(lines: list[str]) -> BuildFailure:
    text = "\n".join(lines)
    step = _last_step(lines)
    error = _last_error_line(lines)
    if step and step.upper().startswith("FROM") and re.search(r"pull|manifest|unauthorized|initializing source", text, re.I):
        return BuildFailure("PullBuilderImageFailed", f"cannot pull the image of step {step!r}: {error}")
    exit_status = re.search(r"(?:exit status|returned a non-zero code:) (\d+)", error)
    if step and exit_status:
        return BuildFailure("DockerBuildFailed", f"the Dockerfile step {step!r} failed with exit status {exit_status.group(1)}")
    if step:
        return BuildFailure("DockerBuildFailed", f"the Dockerfile step {step!r} failed: {error}")
    return BuildFailure("DockerBuildFailed", f"the image build failed: {error}")


# -- Docker Engine API -------------------------------------------------------------------------
class _DockerRun:
    def __init__(self, *, docker_host, context, dockerfile, target, push, base_images, build_args, no_cache, skip_layers,
                 workdir, push_auths, pull_auths, ca_dir, log, cancel):
        import docker  # imported here: the buildah path must not need it

        if not docker_host:
            raise BuildFailure("GenericBuildFailed", "the docker builder needs a docker_host (e.g. unix:///run/podman/podman.sock)")
        self.docker_host = docker_host
        try:
            self.api = docker.APIClient(base_url=docker_host, version="auto", timeout=DOCKER_API_TIMEOUT)
        except docker.errors.DockerException as exc:
            raise BuildFailure("GenericBuildFailed", f"cannot reach the Docker Engine API at {docker_host}: {exc}") from exc
        self.context, self.dockerfile, self.target, self.push_wanted = context, dockerfile, target, push
        self.base_images, self.build_args, self.no_cache, self.skip_layers = base_images, build_args, no_cache, skip_layers
        self.push_auths, self.pull_auths, self.ca_dir = push_auths, pull_auths, ca_dir
        self.log, self.cancel = log, cancel
        # APIClient is a requests.Session: a response hook hands us each streaming response, so a
        # cancel can cut its connection.
        self._responses: list = []
        self.api.hooks["response"].append(self._remember_response)

    def _remember_response(self, response, *args, **kwargs):
        self._responses.append(response)
        return response

    def _disconnect(self) -> None:
        """Shut the streaming connections down: a blocked read returns at once, and the daemon sees
        the client go away (Docker and podman then stop the build or push)."""
        for response in list(self._responses):
            connection = getattr(response.raw, "connection", None) or getattr(response.raw, "_connection", None)
            sock = getattr(connection, "sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
                response.close()
            except OSError:
                pass

    def _stream(self, items, on_item) -> None:
        """Feed decoded stream items to on_item; on cancel the connection is cut, even in a silent step."""
        done = threading.Event()

        def close_on_cancel():
            while not done.is_set():
                if self.cancel.wait(0.2):
                    self._disconnect()
                    return

        watcher = threading.Thread(target=close_on_cancel, daemon=True)
        watcher.start()
        try:
            for item in items:
                if self.cancel.is_set():
                    raise BuildCancelled()
                on_item(item)
        except BuildCancelled:
            raise
        except BuildFailure:
            raise
        except Exception:
            if self.cancel.is_set():
                raise BuildCancelled()
            raise
        finally:
            done.set()
            watcher.join()
        if self.cancel.is_set():
            raise BuildCancelled()

    @staticmethod
    def _auth_config(auths: dict | None, host: str) -> dict | None:
        creds = v2.credentials_for(auths, host)
        return {"username": creds[0], "password": creds[1], "serveraddress": host} if creds else None

    def run(self) -> str | None:
        import docker

        for image in self.base_images:
            host = v2.split_image_reference(image)[0]
            self.log(f"Pulling image {image} ...")
            errors: list[str] = []

            def on_pull(item):
                if item.get("error"):
                    errors.append(item["error"])
                elif item.get("status") and not item.get("progressDetail"):
                    self.log(f"{item.get('id', '')} {item['status']}".strip())

            try:  # the SDK splits "name:tag" and "name@digest" itself
                self._stream(self.api.pull(image,
                                           auth_config=self._auth_config(self.pull_auths, host),
                                           stream=True, decode=True), on_pull)
            except docker.errors.APIError as exc:
                errors.append(exc.explanation or str(exc))
            if errors:
                raise BuildFailure("PullBuilderImageFailed",
                                   f"cannot pull base image {image}: {_registry_problem(errors[-1], host)} ({errors[-1]})")

        lines: list[str] = []
        errors: list[str] = []

        def on_build(item):
            if item.get("error"):
                errors.append(item["error"].strip())
                lines.append(item["error"].strip())
                self.log(item["error"].strip())
            for line in (item.get("stream") or "").splitlines():
                if line.strip():
                    lines.append(line)
                    self.log(line)

        if self.skip_layers:
            # Docker's squash needs an experimental daemon and podman's squashes the base too: no Docker API
            # equivalent of buildah without --layers, so the policy is said and not applied.
            self.log("imageOptimizationPolicy asks for one layer, which the docker builder cannot do: "
                     "the image keeps a layer per step (the buildah builder applies it)")
        try:
            self._stream(self.api.build(
                path=str(self.context), dockerfile=str(self.dockerfile.relative_to(self.context)), tag=self.target,
                buildargs=dict(self.build_args), nocache=self.no_cache, pull=False, rm=True, forcerm=True,
                decode=True,
            ), on_build)
        except docker.errors.APIError as exc:
            errors.append(exc.explanation or str(exc))
            lines.append(errors[-1])
        if errors:
            raise _build_failure(lines)
        if not self.push_wanted:
            return None

        host, repository, tag = v2.split_image_reference(self.target)
        name = self.target.rsplit(":", 1)[0]
        self.log(f"Pushing image {self.target} ...")
        push_errors: list[str] = []
        digests: list[str] = []

        def on_push(item):
            if item.get("error"):
                push_errors.append(item["error"].strip())
            aux = item.get("aux") or {}
            if aux.get("Digest"):
                digests.append(aux["Digest"])
            if item.get("status") and not item.get("progressDetail"):
                self.log(f"{item.get('id', '')} {item['status']}".strip())

        try:
            self._stream(self.api.push(name, tag=tag, auth_config=self._auth_config(self.push_auths, host),
                                       stream=True, decode=True), on_push)
        except docker.errors.APIError as exc:
            push_errors.append(exc.explanation or str(exc))
        if push_errors:
            raise BuildFailure("PushImageToRegistryFailed",
                               f"cannot push {self.target}: {_registry_problem(push_errors[-1], host)} ({push_errors[-1]})")
        digest = digests[-1] if digests else self._digest_from_registry(host, repository, tag)
        self.log(f"Pushed image {self.target} with digest {digest}")
        return digest

    def _digest_from_registry(self, host: str, repository: str, tag: str) -> str:
        ca_file = self.ca_dir / host / "ca.crt" if self.ca_dir else None
        client = v2.RegistryClient(host, self.push_auths, str(ca_file) if ca_file and ca_file.exists() else None)
        try:
            return client.inspect(repository, tag)["digest"]
        except v2.RegistryError as exc:
            raise BuildFailure("PushImageToRegistryFailed",
                               f"pushed {self.target} but cannot read its digest back: {exc.message}") from exc
