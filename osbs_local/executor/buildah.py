"""Building and pushing with buildah (vfs storage, chroot isolation), one tool run per step.

Values from the Build (image names, build args, the Dockerfile's and context's paths) reach buildah as `--opt=value`
or after `--`, so that none is read as an option.
"""

from __future__ import annotations

from .. import registry_client
from .process import BuildFailure, buildah_command, run_streaming
from .tool_output import build_failure, last_error_line, registry_problem

REGISTRY_RETRY_DELAY = "1s"  # buildah retries a failed pull/push 3 times; 2 s each made a dead registry slow to report


class BuildahRun:
    def __init__(self, *, storage_dir, context, dockerfile, target, push, base_images, build_args, no_cache, skip_layers,
                 workdir, push_auths, pull_auths, ca_dir, log, cancel):
        self.buildah = buildah_command(storage_dir)
        self.context, self.dockerfile, self.target, self.push_wanted = context, dockerfile, target, push
        self.base_images, self.build_args, self.no_cache, self.skip_layers = base_images, build_args, no_cache, skip_layers
        self.workdir, self.ca_dir, self.log, self.cancel = workdir, ca_dir, log, cancel
        self.pull_auth_file = registry_client.write_auth_file(pull_auths, workdir / "pull-auth.json")
        self.push_auth_file = registry_client.write_auth_file(push_auths, workdir / "push-auth.json")

    def _cert_args(self, host: str) -> list[str]:
        if self.ca_dir and (self.ca_dir / host).is_dir():
            return [f"--cert-dir={self.ca_dir / host}"]
        return []

    def _run(self, *args: str) -> tuple[int, list[str]]:
        return run_streaming([*self.buildah, *args], log=self.log, cancel=self.cancel, cwd=self.workdir)

    def run(self) -> str | None:
        # Pulled up front, one by one, so a pull problem is told apart from a failing step, and
        # always (not only when missing) so a moved tag is honoured and pull credentials checked.
        for image in self.base_images:
            host = registry_client.split_image_reference(image)[0]
            self.log(f"Pulling image {image} ...")
            status, lines = self._run("pull", "--quiet", "--policy=always", f"--retry-delay={REGISTRY_RETRY_DELAY}",
                                      f"--authfile={self.pull_auth_file}", *self._cert_args(host), "--", image)
            if status != 0:
                text = "\n".join(lines)
                raise BuildFailure("PullBuilderImageFailed",
                                   f"cannot pull base image {image}: {registry_problem(text, host)} ({last_error_line(lines)})")
        first_host = registry_client.split_image_reference(self.base_images[0])[0] if self.base_images else ""
        bud = ["bud", "--isolation=chroot", "--format=docker", "--pull=false",
               f"--authfile={self.pull_auth_file}", *self._cert_args(first_host),
               f"--file={self.dockerfile}", f"--tag={self.target}"]
        if not self.skip_layers:
            # A layer per step, kept as a cache for later builds unless noCache; without --layers buildah
            # commits everything the Dockerfile adds as one layer, which is what SkipLayers asks for.
            bud += ["--no-cache"] if self.no_cache else ["--layers"]
        for name, value in self.build_args:
            bud.append(f"--build-arg={name}={value}")
        status, lines = self._run(*bud, "--", str(self.context))
        if status != 0:
            raise build_failure(lines)
        if not self.push_wanted:
            return None
        host = registry_client.split_image_reference(self.target)[0]
        digest_file = self.workdir / "digest"
        digest_file.unlink(missing_ok=True)
        self.log(f"Pushing image {self.target} ...")
        status, lines = self._run("push", f"--retry-delay={REGISTRY_RETRY_DELAY}",
                                  f"--authfile={self.push_auth_file}", *self._cert_args(host),
                                  f"--digestfile={digest_file}", "--", self.target, f"docker://{self.target}")
        if status != 0:
            raise BuildFailure("PushImageToRegistryFailed",
                               f"cannot push {self.target}: {registry_problem(chr(10).join(lines), host)} "
                               f"({last_error_line(lines)})")
        digest = digest_file.read_text().strip()
        self.log(f"Pushed image {self.target} with digest {digest}")
        return digest
