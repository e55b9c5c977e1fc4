"""osbs_local.executor.runner.run_build for real: git repos made with `git init`, buildah (vfs, chroot) or podman's
Docker-compatible service, pushing to a real TLS + htpasswd docker-registry."""
import base64
import io
import json
import os
import subprocess
import tarfile
import threading
import time

import pytest

from osbs_local import registry_client
from osbs_local.executor import runner
from osbs_local.executor.base_image import build_busybox_base
from osbs_local.executor.dockerfile import from_images, prepare_dockerfile
from osbs_local.executor.process import BuildCancelled, BuildFailure
from osbs_local.services.registry import free_port


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def storage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def base_image(registry, storage_dir):
    """HOST/base/busybox:latest built from scratch; returns the pull spec by tag."""
    reference = f"{registry.host}/base/busybox:latest"
    build_busybox_base(reference, storage_dir=storage_dir, auth_file=registry.auth_file,
                                 cert_dir=registry.cert_dir / registry.host)
    return reference


class GitRepo:
    def __init__(self, path):
        self.path = path
        self.git("init", "-q", "-b", "main")

    def git(self, *args):
        return subprocess.run(["git", "-C", str(self.path), "-c", "user.name=Ann Author",
                               "-c", "user.email=ann@example.com", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    def commit(self, files: dict, message: str) -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    return GitRepo(path)


class BuildRun:
    """Runs builds with the registry's credentials and keeps each build's log."""

    def __init__(self, registry, storage_dir, tmp_path):
        self.registry, self.storage_dir, self.tmp_path = registry, storage_dir, tmp_path
        self.lines: list[str] = []
        self.count = 0

    def spec(self, repo, *, ref="main", commit=None, context_dir=None, strategy=None, output="osbs/app:latest"):
        spec = {"source": {"git": {"uri": str(repo.path), "ref": ref}},
                "strategy": {"type": "Docker", "dockerStrategy": strategy or {}},
                "output": {"to": {"kind": "DockerImage", "name": f"{self.registry.host}/{output}"}} if output else {}}
        if commit:
            spec["revision"] = {"type": "Git", "git": {"commit": commit}}
        if context_dir:
            spec["source"]["contextDir"] = context_dir
        return {"kind": "Build", "metadata": {"name": "app-1", "namespace": "osbs"}, "spec": spec}

    def run(self, build, *, push_auths="registry", pull_auths="registry", cancel=None, **kwargs):
        self.count += 1
        self.lines = []
        auths = self.registry.dockercfg()
        kwargs.setdefault("builder", "buildah")
        try:
            return runner.run_build(
                build, workdir=self.tmp_path / f"build-{self.count}", storage_dir=self.storage_dir, log=self.lines.append,
                push_auths=auths if push_auths == "registry" else push_auths,
                pull_auths=auths if pull_auths == "registry" else pull_auths,
                ca_dir=self.registry.cert_dir, cancel=cancel or threading.Event(), **kwargs)
        finally:
            # Whatever happened, the registry password must not have reached the build log.
            assert all(self.registry.password not in line for line in self.lines)
            assert all(self.registry.basic_auth not in line for line in self.lines)

    def fail(self, build, **kwargs) -> BuildFailure:
        with pytest.raises(BuildFailure) as caught:
            self.run(build, **kwargs)
        return caught.value

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def builds(registry, storage_dir, base_image, tmp_path):
    return BuildRun(registry, storage_dir, tmp_path)


def skopeo_digest(registry, reference):
    out = subprocess.run(
        ["skopeo", "inspect", "--cert-dir", str(registry.cert_dir / registry.host),
         "--creds", f"{registry.username}:{registry.password}", f"docker://{reference}"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)["Digest"]


def image_file(registry, repository, digest, path) -> str | None:
    """The content of path in the image (top-most layer that has it), read from the registry's blobs."""
    client = registry_client.RegistryClient(registry.host, registry.dockercfg(), str(registry.ca_file))
    content = None
    for layer in client.inspect(repository, digest)["layers"]:
        with tarfile.open(fileobj=io.BytesIO(client.get_blob(repository, layer["digest"]))) as tar:
            for member in tar.getmembers():
                if member.name.lstrip("./") == path.lstrip("/") and member.isfile():
                    content = tar.extractfile(member).read().decode()
    return content


def image_config(registry, repository, digest) -> dict:
    client = registry_client.RegistryClient(registry.host, registry.dockercfg(), str(registry.ca_file))
    return client.inspect(repository, digest)["config"]["config"]


APP_DOCKERFILE = """\
# a comment before the first instruction
FROM {base}
ARG GREETING=unset
COPY message.txt /message.txt
RUN echo "$GREETING from $MYENV" > /greeting \\
 && cat /message.txt >> /greeting
LABEL app=demo
"""


# -- buildah -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_build_pushes_and_reports_the_registry_digest(builds, registry, base_image, repo):
    commit = repo.commit({"Dockerfile": APP_DOCKERFILE.format(base=base_image), "message.txt": "hi there\n"},
                         "Add the app\n\nWith a body.")
    build = builds.spec(repo, strategy={"buildArgs": [{"name": "GREETING", "value": "hello"}],
                                        "env": [{"name": "MYENV", "value": "env $x \"quoted\""}]})
    build["spec"]["output"]["imageLabels"] = [{"name": "vendor", "value": "osbs.flow"}]
    result = builds.run(build)
    digest = result["digest"]
    assert digest == skopeo_digest(registry, f"{registry.host}/osbs/app:latest")
    assert digest == registry_client.RegistryClient(registry.host, registry.dockercfg(), str(registry.ca_file)).inspect("osbs/app", "latest")["digest"]
    assert result["image_reference"] == f"{registry.host}/osbs/app@{digest}"
    assert result["revision"] == {"commit": commit, "author": {"name": "Ann Author", "email": "ann@example.com"},
                                  "committer": {"name": "Ann Author", "email": "ann@example.com"},
                                  "message": "Add the app"}
    # buildArgs reach RUN, env is set before RUN (OpenShift inserts it after FROM), the source was copied.
    assert image_file(registry, "osbs/app", digest, "greeting") == 'hello from env $x "quoted"\nhi there\n'
    config = image_config(registry, "osbs/app", digest)
    assert config["Labels"]["app"] == "demo"
    assert config["Labels"]["io.openshift.build.commit.id"] == commit
    assert config["Labels"]["io.openshift.build.commit.author"] == "Ann Author <ann@example.com>"
    assert config["Labels"]["io.openshift.build.name"] == "app-1"
    assert config["Labels"]["vendor"] == "osbs.flow"  # spec.output.imageLabels
    assert f"OPENSHIFT_BUILD_COMMIT={commit}" in config["Env"] and "OPENSHIFT_BUILD_NAMESPACE=osbs" in config["Env"]
    # The log shows the progress a person follows.
    for expected in (f"Cloning {repo.path} at main", "STEP 1/", f"Pushing image {registry.host}/osbs/app:latest",
                     f"with digest {digest}"):
        assert expected in builds.log
    assert not (builds.tmp_path / "build-1" / "push-auth.json").exists()


@pytest.mark.slow
def test_build_of_a_specific_commit(builds, registry, base_image, repo):
    first = repo.commit({"Dockerfile": f"FROM {base_image}\nCOPY version /version\n", "version": "1\n"}, "v1")
    repo.commit({"version": "2\n"}, "v2")
    result = builds.run(builds.spec(repo, commit=first, output="osbs/versioned:latest"))
    assert result["revision"]["commit"] == first and result["revision"]["message"] == "v1"
    assert image_file(registry, "osbs/versioned", result["digest"], "version") == "1\n"
    head = builds.run(builds.spec(repo, output="osbs/versioned:latest"))
    assert head["revision"]["message"] == "v2"
    assert image_file(registry, "osbs/versioned", head["digest"], "version") == "2\n"


@pytest.mark.slow
def test_commit_not_advertised_falls_back_to_a_full_fetch(builds, registry, base_image, repo, tmp_path, monkeypatch):
    """Git protocol v0 refuses to serve a commit that is no branch tip (as many servers do):
    the shallow fetch fails and the builder fetches the whole repository instead."""
    first = repo.commit({"Dockerfile": f"FROM {base_image}\nCOPY version /version\n", "version": "1\n"}, "v1")
    repo.commit({"version": "2\n"}, "v2")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[protocol]\n\tversion = 0\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    result = builds.run(builds.spec(repo, commit=first[:12], output="osbs/versioned:old"))
    assert result["revision"]["commit"] == first
    assert "fetching the whole repository" in builds.log
    assert image_file(registry, "osbs/versioned", result["digest"], "version") == "1\n"
    # OpenShift also accepts a commit in source.git.ref.
    by_ref = builds.run(builds.spec(repo, ref=first, output="osbs/versioned:old"))
    assert by_ref["revision"]["commit"] == first and "fetching the whole repository" in builds.log


@pytest.mark.slow
def test_submodules_are_checked_out(builds, registry, base_image, repo, tmp_path, monkeypatch):
    # git refuses file:// submodules by default since 2.38.1; these local test repos need it allowed.
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[protocol \"file\"]\n\tallow = always\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    (tmp_path / "library").mkdir()
    library = GitRepo(tmp_path / "library")
    library.commit({"lib.txt": "from the submodule\n"}, "library")
    repo.git("submodule", "add", "-q", str(library.path), "vendor/library")
    repo.commit({"Dockerfile": f"FROM {base_image}\nCOPY vendor/library/lib.txt /lib.txt\n"}, "with a submodule")
    result = builds.run(builds.spec(repo, output="osbs/submodule:latest"))
    assert image_file(registry, "osbs/submodule", result["digest"], "lib.txt") == "from the submodule\n"
    assert "Updating submodules" in builds.log


def test_context_dir_and_dockerfile_path(builds, registry, base_image, repo):
    repo.commit({"services/api/docker/Containerfile": f"FROM {base_image}\nCOPY payload /payload\n",
                 "services/api/payload": "from the context dir\n", "payload": "from the root\n"}, "layout")
    build = builds.spec(repo, context_dir="services/api", strategy={"dockerfilePath": "docker/Containerfile"},
                        output="osbs/api:1.0")
    result = builds.run(build)
    assert result["digest"] == skopeo_digest(registry, f"{registry.host}/osbs/api:1.0")
    assert image_file(registry, "osbs/api", result["digest"], "payload") == "from the context dir\n"
    assert image_config(registry, "osbs/api", result["digest"])["Labels"]["io.openshift.build.source-context-dir"] == "services/api"


@pytest.mark.slow
def test_from_override_replaces_the_final_stage_only(builds, registry, base_image, repo):
    base_digest = skopeo_digest(registry, base_image)
    by_digest = f"{registry.host}/base/busybox@{base_digest}"
    dockerfile = (f"FROM {base_image} AS builder\nRUN echo built > /artifact\n"
                  "FROM \\\n  registry.invalid/never/pulled:1\nCOPY --from=builder /artifact /artifact\n")
    repo.commit({"Dockerfile": dockerfile}, "multi-stage")
    result = builds.run(builds.spec(repo, strategy={"from": {"kind": "DockerImage", "name": by_digest}},
                                    output="osbs/multi:latest"))
    assert image_file(registry, "osbs/multi", result["digest"], "artifact") == "built\n"
    assert f"Replaced Dockerfile FROM image registry.invalid/never/pulled:1 with {by_digest}" in builds.log
    after_replacement = builds.log.split(f"with {by_digest}", 1)[1]
    assert "registry.invalid" not in after_replacement


@pytest.mark.slow
def test_no_cache(builds, registry, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo cached-step > /step\n"}, "cache me")
    builds.run(builds.spec(repo, output="osbs/cache:latest"))
    builds.run(builds.spec(repo, output="osbs/cache:latest"))
    assert "Using cache" in builds.log
    builds.run(builds.spec(repo, output="osbs/cache:latest", strategy={"noCache": True}))
    assert "Using cache" not in builds.log and "STEP 2/" in builds.log


def test_build_without_output_builds_but_pushes_nothing(builds, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN true\n"}, "no output")
    result = builds.run(builds.spec(repo, output=None))
    assert result["digest"] is None and result["image_reference"] is None and "Pushing" not in builds.log


# -- failures ------------------------------------------------------------------------------------
def test_unknown_commit_is_fetch_source_failed(builds, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\n"}, "one")
    failure = builds.fail(builds.spec(repo, commit="0123456789abcdef0123456789abcdef01234567"))
    assert failure.reason == "FetchSourceFailed"
    assert "commit 0123456789abcdef0123456789abcdef01234567 was not found" in failure.message
    assert str(repo.path) in failure.message


def test_unknown_ref_is_fetch_source_failed(builds, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\n"}, "one")
    failure = builds.fail(builds.spec(repo, ref="no-such-branch"))
    assert failure.reason == "FetchSourceFailed" and "no-such-branch was not found" in failure.message


@pytest.mark.parametrize("uri", ["{tmp}/not-a-repo", "https://user:s3cret@127.0.0.1:{port}/repo.git"])
def test_unreachable_repository_is_fetch_source_failed(builds, tmp_path, uri):
    uri = uri.format(tmp=tmp_path, port=free_port())
    build = builds.spec(type("R", (), {"path": uri})())
    failure = builds.fail(build)
    assert failure.reason == "FetchSourceFailed" and "cannot read the git repository" in failure.message
    assert "s3cret" not in failure.message and "s3cret" not in builds.log and "s3cret" not in failure.log_snippet


def test_missing_dockerfile_is_manage_dockerfile_failed(builds, repo):
    repo.commit({"README": "no Dockerfile here\n"}, "docs only")
    failure = builds.fail(builds.spec(repo))
    assert failure.reason == "ManageDockerfileFailed" and "'Dockerfile'" in failure.message


def test_missing_context_dir_is_invalid_context_directory(builds, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\n"}, "root only")
    failure = builds.fail(builds.spec(repo, context_dir="does/not/exist"))
    assert failure.reason == "InvalidContextDirectory" and "does/not/exist" in failure.message
    assert builds.fail(builds.spec(repo, context_dir="../..")).reason == "InvalidContextDirectory"


def test_failing_run_is_docker_build_failed_with_the_step(builds, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo before\nRUN echo about to fail && exit 3\nRUN echo never\n"}, "broken")
    failure = builds.fail(builds.spec(repo))
    assert failure.reason == "DockerBuildFailed"
    assert "RUN echo about to fail && exit 3" in failure.message and "exit status 3" in failure.message
    assert "about to fail" in failure.log_snippet and "never" not in builds.log.replace("RUN echo never", "")


def test_missing_base_image_is_pull_builder_image_failed(builds, registry, repo):
    repo.commit({"Dockerfile": f"FROM {registry.host}/base/missing:1\nRUN true\n"}, "bad base")
    failure = builds.fail(builds.spec(repo))
    assert failure.reason == "PullBuilderImageFailed"
    assert f"{registry.host}/base/missing:1" in failure.message and "not found" in failure.message


def test_unauthorised_base_image_pull_is_pull_builder_image_failed(builds, registry, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN true\n"}, "needs auth")
    failure = builds.fail(builds.spec(repo), pull_auths={registry.host: {"username": "osbs", "password": "wrong"}})
    assert failure.reason == "PullBuilderImageFailed" and "refused the credentials" in failure.message


def test_push_refused_is_push_image_to_registry_failed(builds, registry, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN true\n"}, "push me")
    failure = builds.fail(builds.spec(repo), push_auths={registry.host: {"username": "osbs", "password": "wrong"}})
    assert failure.reason == "PushImageToRegistryFailed"
    assert f"{registry.host}/osbs/app:latest" in failure.message and "refused the credentials" in failure.message
    assert builds.fail(builds.spec(repo), push_auths=None).reason == "PushImageToRegistryFailed"


@pytest.mark.slow
def test_unreachable_push_registry_is_push_image_to_registry_failed(builds, base_image, repo):
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN true\n"}, "push nowhere")
    build = builds.spec(repo)
    build["spec"]["output"]["to"]["name"] = f"127.0.0.1:{free_port()}/osbs/app:latest"
    failure = builds.fail(build)
    assert failure.reason == "PushImageToRegistryFailed" and "cannot reach registry" in failure.message


def test_cancel_stops_a_running_step(builds, base_image, repo):
    marker = f"osbs-cancel-{os.getpid()}-{time.monotonic_ns()}"  # finds our step's shell among other processes
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo sleeping && sleep 60 && echo {marker}\n"}, "slow")
    cancel = threading.Event()

    def cancel_when_the_step_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.strip() == "sleeping" for line in list(builds.lines)):
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_when_the_step_runs, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(BuildCancelled):
        builds.run(builds.spec(repo), cancel=cancel)
    assert time.monotonic() - started < 30
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0


THREE_STEPS = "FROM {base}\nRUN echo one > /one\nRUN echo two > /two\nRUN echo three > /three\n"


def layer_count(registry, repository, reference) -> int:
    return len(registry_client.RegistryClient(registry.host, registry.dockercfg(), str(registry.ca_file)).inspect(repository, reference)["layers"])


@pytest.mark.slow
@pytest.mark.parametrize("policy, new_layers", [(None, 3), ("None", 3), ("SkipLayers", 1), ("SkipLayersAndWarn", 1)])
def test_image_optimization_policy(builds, registry, base_image, repo, policy, new_layers):
    """dockerStrategy.imageOptimizationPolicy as OpenShift defines it: None (the default) keeps a layer per
    step; SkipLayers (and SkipLayersAndWarn) commits all the Dockerfile adds as one layer."""
    repo.commit({"Dockerfile": THREE_STEPS.format(base=base_image)}, "three steps")
    output = "osbs/policy-%s:latest" % (policy or "unset").lower()
    result = builds.run(builds.spec(repo, strategy={"imageOptimizationPolicy": policy} if policy else {}, output=output))
    repository = output.rsplit(":", 1)[0]
    assert layer_count(registry, repository, result["digest"]) == layer_count(registry, "base/busybox", "latest") + new_layers
    assert image_file(registry, repository, result["digest"], "three") == "three\n"


@pytest.mark.slow
def test_image_optimization_policy_skip_layers_with_the_docker_builder(builds, registry, base_image, repo, docker_host):
    # The Docker API has no equivalent (Docker's squash needs an experimental daemon; podman's squashes the base
    # image's layers too): the build goes on layered and its log says so.
    repo.commit({"Dockerfile": THREE_STEPS.format(base=base_image)}, "three steps, docker")
    result = builds.run(builds.spec(repo, strategy={"imageOptimizationPolicy": "SkipLayers"}, output="osbs/policy-docker:latest"),
                        builder="docker", docker_host=docker_host)
    assert "imageOptimizationPolicy asks for one layer, which the docker builder cannot do" in builds.log
    assert layer_count(registry, "osbs/policy-docker", result["digest"]) == layer_count(registry, "base/busybox", "latest") + 3
    assert image_file(registry, "osbs/policy-docker", result["digest"], "two") == "two\n"


# -- source secrets ------------------------------------------------------------------------------
GIT_USER, GIT_PASSWORD = "builder", "s3cret-git-token"


@pytest.fixture(scope="module")
def private_git(tmp_path_factory):
    """A git server over HTTP that wants basic auth (builder / s3cret-git-token)."""
    from git_http import GitHttpServer

    server = GitHttpServer(tmp_path_factory.mktemp("git-root"), GIT_USER, GIT_PASSWORD).start()
    yield server
    server.stop()


def private_repo(private_git, base_image, tmp_path, name):
    (tmp_path / name).mkdir()
    work = GitRepo(tmp_path / name)
    commit = work.commit({"Dockerfile": f"FROM {base_image}\nCOPY secret-src.txt /secret-src.txt\n",
                          "secret-src.txt": "from the private repository\n"}, "private")
    subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(private_git.root / f"{name}.git")], check=True)
    return work, f"{private_git.base}/{name}.git", commit


def basic_auth_secret(username, password):
    return {"kind": "Secret", "type": "kubernetes.io/basic-auth", "metadata": {"name": "git-creds"},
            "data": {"username": base64.b64encode(username.encode()).decode(), "password": base64.b64encode(password.encode()).decode()}}


@pytest.mark.slow
def test_a_source_secret_opens_a_private_repository(builds, registry, base_image, private_git, tmp_path):
    work, uri, commit = private_repo(private_git, base_image, tmp_path, "private")
    build = builds.spec(work, output="osbs/private:latest")
    build["spec"]["source"]["git"]["uri"] = uri

    refused = builds.fail(build)
    assert refused.reason == "FetchSourceFailed"
    assert f"cannot read the git repository {uri}" in refused.message and "source secret" in refused.message

    wrong = builds.fail(build, source_secret=basic_auth_secret(GIT_USER, "wrong"))
    assert wrong.reason == "FetchSourceFailed" and "source secret" in wrong.message

    refused_before = private_git.refused
    result = builds.run(build, source_secret=basic_auth_secret(GIT_USER, GIT_PASSWORD))
    assert result["revision"]["commit"] == commit
    assert image_file(registry, "osbs/private", result["digest"], "secret-src.txt") == "from the private repository\n"
    assert GIT_PASSWORD not in builds.log
    assert private_git.refused - refused_before >= 1, "git never met the server's 401, so the credentials were not needed"
    # The secret's files are gone once the source is fetched.
    assert not list((builds.tmp_path / f"build-{builds.count}").glob("*-auth"))


def test_source_secret_credentials_go_to_the_source_server_only(tmp_path):
    """What git's own credential machinery answers with the engine's setup: the password for the source's
    scheme://host:port, nothing for a submodule or redirect on another server (the prompt is disabled)."""
    from osbs_local.executor import git_source

    auth = git_source._SourceAuth("http://127.0.0.1:8123/team/app.git", {"username": GIT_USER, "password": GIT_PASSWORD},
                              tmp_path / "auth")

    def fill(protocol, host):
        return subprocess.run(["git", "-c", "credential.helper=", *auth.options, "credential", "fill"],
                              input=f"protocol={protocol}\nhost={host}\n\n", capture_output=True, text=True,
                              env=dict(git_source._git_env(), **auth.env))

    own = fill("http", "127.0.0.1:8123")
    assert own.returncode == 0 and f"username={GIT_USER}" in own.stdout and f"password={GIT_PASSWORD}" in own.stdout
    for protocol, host in (("https", "github.com"), ("http", "127.0.0.1:9999"), ("https", "127.0.0.1:8123")):
        other = fill(protocol, host)
        assert GIT_PASSWORD not in other.stdout + other.stderr, (protocol, host)
        assert other.returncode != 0
    assert GIT_PASSWORD not in " ".join(auth.options)
    auth.remove()
    assert not (tmp_path / "auth").exists()


@pytest.mark.slow
def test_a_source_secret_ca_crt_trusts_an_https_git_server(builds, registry, base_image, tmp_path_factory, tmp_path):
    from git_http import GitHttpServer

    from osbs_local.services.pki import ensure_pki

    pki = ensure_pki(tmp_path_factory.mktemp("git-pki"))
    server = GitHttpServer(tmp_path_factory.mktemp("git-tls-root"), GIT_USER, GIT_PASSWORD, tls=(pki["cert"], pki["key"])).start()
    try:
        work, uri, commit = private_repo(server, base_image, tmp_path, "tls")
        build = builds.spec(work, output="osbs/private-tls:latest")
        build["spec"]["source"]["git"]["uri"] = uri
        secret = basic_auth_secret(GIT_USER, GIT_PASSWORD)

        untrusted = builds.fail(build, source_secret=secret)
        assert untrusted.reason == "FetchSourceFailed" and "certificate" in untrusted.message.lower()

        secret["data"]["ca.crt"] = base64.b64encode(pki["ca_cert"].read_bytes()).decode()
        assert builds.run(build, source_secret=secret)["revision"]["commit"] == commit
    finally:
        server.stop()


# -- Dockerfile preparation (pure text) ----------------------------------------------------------
def test_prepare_dockerfile_like_openshift():
    text = ("# escape=\\\n# syntax comment\nARG BASE=registry.example/base:1\nFROM --platform=linux/amd64 ${BASE} AS build\n"
            "RUN make\nFROM registry.example/runtime:2 \\\n  AS final\nCOPY --from=build /out /out\n")
    prepared = prepare_dockerfile(text, base_image="127.0.0.1:5000/base@sha256:abc",
                                          env=[("A", "1 2"), ("B", "$HOME")], build_env=[("OPENSHIFT_BUILD_NAME", "x-1")],
                                          build_labels=[("io.openshift.build.name", "x-1")])
    assert prepared.splitlines() == [
        "# escape=\\", "# syntax comment", "ARG BASE=registry.example/base:1",
        "FROM --platform=linux/amd64 ${BASE} AS build", 'ENV A="1 2" B="\\$HOME"', "RUN make",
        "FROM 127.0.0.1:5000/base@sha256:abc AS final", 'ENV A="1 2" B="\\$HOME"', "COPY --from=build /out /out",
        'ENV OPENSHIFT_BUILD_NAME="x-1"', 'LABEL "io.openshift.build.name"="x-1"',
    ]
    assert from_images(prepared, [("BASE", "other/base:3")]) == ["other/base:3", "127.0.0.1:5000/base@sha256:abc"]
    assert from_images("FROM scratch AS a\nFROM a\nFROM ${UNSET}\n", []) == []


# -- Docker Engine API (podman's compatible service) ----------------------------------------------
@pytest.fixture(scope="module")
def docker_host(tmp_path_factory, registry):
    """`podman system service` on a private socket, configured as this machine needs (runc, cgroupfs,
    file events logger; crun fails here). The daemon trusts the registry as an insecure one: a
    Docker-compatible daemon takes registry CAs from its own configuration, not from the build."""
    root = tmp_path_factory.mktemp("podman")
    (root / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]\n'
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
    )
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    (root / "registries.conf").write_text(
        f'unqualified-search-registries = []\n[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    env = dict(os.environ, CONTAINERS_CONF=str(root / "containers.conf"),
               CONTAINERS_STORAGE_CONF=str(root / "storage.conf"),
               CONTAINERS_REGISTRIES_CONF=str(root / "registries.conf"))
    socket_path = root / "podman.sock"
    log = open(root / "service.log", "wb")
    process = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    import docker

    deadline = time.monotonic() + 30
    while True:
        try:
            docker.APIClient(base_url=f"unix://{socket_path}", version="auto").ping()
            break
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"podman service did not start: {(root / 'service.log').read_text()}")
            time.sleep(0.2)
    yield f"unix://{socket_path}"
    process.terminate()
    process.wait(20)
    log.close()


@pytest.mark.slow
def test_docker_builder_pushes_and_reports_the_registry_digest(builds, registry, base_image, repo, docker_host):
    commit = repo.commit({"Dockerfile": APP_DOCKERFILE.format(base=base_image), "message.txt": "via docker\n"}, "docker build")
    by_digest = f"{registry.host}/base/busybox@{skopeo_digest(registry, base_image)}"
    build = builds.spec(repo, output="osbs/dockerapp:latest",
                        strategy={"buildArgs": [{"name": "GREETING", "value": "hey"}], "env": [{"name": "MYENV", "value": "podman"}],
                                  "from": {"kind": "DockerImage", "name": by_digest}})
    result = builds.run(build, builder="docker", docker_host=docker_host)
    assert result["digest"] == skopeo_digest(registry, f"{registry.host}/osbs/dockerapp:latest")
    assert result["revision"]["commit"] == commit
    assert image_file(registry, "osbs/dockerapp", result["digest"], "greeting") == "hey from podman\nvia docker\n"
    assert image_config(registry, "osbs/dockerapp", result["digest"])["Labels"]["io.openshift.build.commit.id"] == commit
    assert "STEP 1/" in builds.log or "Step 1/" in builds.log


@pytest.mark.slow
def test_docker_builder_failures(builds, registry, base_image, repo, docker_host):
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo docker-fail && exit 4\n"}, "broken")
    failure = builds.fail(builds.spec(repo), builder="docker", docker_host=docker_host)
    assert failure.reason == "DockerBuildFailed" and "RUN echo docker-fail && exit 4" in failure.message

    repo.commit({"Dockerfile": f"FROM {registry.host}/base/absent:1\n"}, "missing base")
    failure = builds.fail(builds.spec(repo), builder="docker", docker_host=docker_host)
    assert failure.reason == "PullBuilderImageFailed" and f"{registry.host}/base/absent:1" in failure.message

    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN true\n"}, "fine")
    wrong = {registry.host: {"username": "osbs", "password": "wrong"}}
    failure = builds.fail(builds.spec(repo), builder="docker", docker_host=docker_host, push_auths=wrong)
    assert failure.reason == "PushImageToRegistryFailed" and "refused the credentials" in failure.message
    failure = builds.fail(builds.spec(repo), builder="docker", docker_host=docker_host, pull_auths=wrong)
    assert failure.reason == "PullBuilderImageFailed" and "refused the credentials" in failure.message

    failure = builds.fail(builds.spec(repo), builder="docker", docker_host=f"unix://{builds.tmp_path}/no.sock")
    assert failure.reason == "GenericBuildFailed" and "no.sock" in failure.message


def test_docker_builder_cancel(builds, base_image, repo, docker_host):
    """Cancel cuts the API connection, so run_build returns at once. (A Docker daemon then stops the
    build; podman 4.3's compatible service lets the current step finish, which this cannot change.)"""
    repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo docker-sleeping && sleep 20\n"}, "slow")
    cancel = threading.Event()

    def cancel_when_the_step_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("docker-sleeping" in line and "RUN" not in line for line in list(builds.lines)):
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_when_the_step_runs, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(BuildCancelled):
        builds.run(builds.spec(repo), cancel=cancel, builder="docker", docker_host=docker_host)
    assert time.monotonic() - started < 15
