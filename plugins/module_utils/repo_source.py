# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read one file of a git repository at one commit, fetching as little as possible.

A dependent's `.osbs-repo-config` is read at the commit its BuildConfig
records: a bare repository per git URI in a cache directory, a shallow fetch
of that one commit (`git fetch --depth 1 <uri> <commit>`), then
`git show <commit>:<file>`. A server that refuses to hand out a commit by its
sha (protocol v0 without uploadpack.allowReachableSHA1InWant) gets the branch
fetched instead. Results are cached by (repository, commit, file) for the
lifetime of the RepoSource, and concurrent readers of one repository take
turns (git's shallow file takes a lock).

Step 1 of the flow (osbs_source_info) uses `resolve` then `read_files`: the
branch head is fetched once and every file is read at that one commit, in one
git process, while other processes sharing the cache directory wait their turn.

Every URI, branch and commit is checked by its grammar (git_input) before git
runs, and reaches git after `--` or inside a refspec, never where an option can
be; git runs with an environment built here, in a process group of its own that
is killed whole when it takes longer than the timeout. The cache directory is
private (0700): it holds the sources of private repositories.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import signal
import stat
import subprocess
import threading

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import (
    GIT_TRANSPORTS,
    check_branch_name,
    check_commit,
    check_git_transport,
    mask_credentials,
    server_of,
)
from ansible_collections.osbs.flow.plugins.module_utils.repo_config import parse_repo_config

GIT_TIMEOUT = 300  # seconds one git command may take; a server that never answers fails after this

# What git takes from the caller's environment: what it needs to reach a server as the user does.
# HOME and XDG_CONFIG_HOME find ~/.gitconfig (credential helpers, proxies, CAs, url.insteadOf) and ~/.ssh;
# the ssh variables reach the user's agent and key; the proxy variables are curl's (it ignores HTTP_PROXY);
# KRB5CCNAME serves Kerberos (GSSAPI) servers. The GIT_CONFIG_* variables git documents are the user's git
# configuration, as trusted as ~/.gitconfig (CI systems hand credential helpers over that way). Everything else
# stays out: GIT_DIR, GIT_EXEC_PATH, GIT_TRACE* (which would print credentials into the module's output),
# git's internal GIT_CONFIG_PARAMETERS, LD_PRELOAD and the like change what git reads, writes or runs.
PASSED_ENVIRONMENT = (
    "HOME", "PATH", "USER", "LOGNAME", "TMPDIR", "XDG_CONFIG_HOME",
    "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_COUNT",
    "SSH_AUTH_SOCK", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT",
    "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
    "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "KRB5CCNAME", "KRB5_CONFIG",
)
_CONFIG_ENTRY = re.compile(r"GIT_CONFIG_(KEY|VALUE)_[0-9]+$")  # the entries GIT_CONFIG_COUNT counts
_GIT_SETTINGS = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password nobody will type
    "GIT_ASKPASS": "true",
    # Only git's own transports: no remote helper (ext::, fd::, <name>://) runs, whatever a URI or a redirect says.
    "GIT_ALLOW_PROTOCOL": ":".join(GIT_TRANSPORTS),
    "LC_ALL": "C",  # stable messages
    "LANG": "C",
}


def git_environment(environ=None):
    """The environment git runs with: PASSED_ENVIRONMENT from `environ` (os.environ), and _GIT_SETTINGS."""
    environ = os.environ if environ is None else environ
    env = {name: environ[name] for name in PASSED_ENVIRONMENT if name in environ}
    env.update((name, value) for name, value in environ.items() if _CONFIG_ENTRY.match(name))
    env.setdefault("PATH", os.defpath)
    env.update(_GIT_SETTINGS)
    return env


# What `git cat-file --batch --follow-symlinks` says of a link it cannot follow to a file of the tree.
_LINK_TROUBLE = {
    "symlink": "that leads out of the repository",
    "dangling": "to a file that does not exist",
    "loop": "in a loop of links",
}


class GitError(OsbsFlowError):
    """A git command failed; the message holds the command and git's own words."""


class _GitTimedOut(Exception):
    """git took longer than the timeout; the caller knows what it was doing and says so."""


class RepoSource:
    """Reads files from git repositories at commits; one instance per run (its cache is the run's)."""

    def __init__(self, cache_dir, git_options=None, timeout=GIT_TIMEOUT, cache_option="cache_dir", timeout_option="git_timeout"):
        """`cache_option` and `timeout_option` are the names the user knows these settings by, for the messages."""
        # Absolute, so that a name beginning with '-' reaches git as a path, never as an option.
        self.cache_dir = os.path.abspath(os.path.expanduser(cache_dir))
        # Extra `git -c key=value` options; the tests use protocol.version=0 to get a real sha refusal.
        self.git_options = list(git_options or [])
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise OsbsFlowError("%s is %r: give a number of seconds above 0 (the default is %d)" % (timeout_option, timeout, GIT_TIMEOUT))
        self.timeout = timeout
        self.cache_option, self.timeout_option = cache_option, timeout_option
        self._cache_ready = False
        self._lock = threading.Lock()
        self._repo_locks = {}
        self._results = {}  # (uri, commit or branch, path) -> (commit, text or None)
        self.fetches = []  # (uri, what) of each fetch made, for tests and reports

    # -- the one public operation ------------------------------------------------------------------

    def read(self, uri, path, commit=None, branch=None):
        """(commit, text) of `path` at `commit`, or at the head of `branch` when commit is None.

        text is None when the file does not exist at that commit. Errors are
        GitError naming the repository, the commit and what git said.
        """
        if not uri:
            raise OsbsFlowError("no git repository given to read %s from" % path)
        if not commit and not branch:
            raise OsbsFlowError("reading %s from %s needs a commit or a branch" % (path, mask_credentials(uri)))
        commit = self._checked(uri, commit, branch)
        key = (uri, commit or "branch:%s" % branch, path)
        with self._repo_lock(uri), self._cache_lock(uri):
            if key not in self._results:
                self._results[key] = self._read_uncached(uri, path, commit, branch)
            return self._results[key]

    def read_repo_config(self, uri, path, commit=None, branch=None):
        """(commit, parse_repo_config result) of the repo config file; OsbsFlowError when it is malformed."""
        commit, text = self.read(uri, path, commit=commit, branch=branch)
        try:
            return commit, parse_repo_config(text, filename=path)
        except OsbsFlowError as exc:
            raise OsbsFlowError("%s (commit %s of %s)" % (exc, commit[:12], mask_credentials(uri)))

    # -- one commit, several files (step 1 of the flow) ---------------------------------------------

    def resolve(self, uri, commit=None, branch=None):
        """The full name of `commit`, or of the head of `branch`, fetched into the cache if it is not there.

        A given commit already in the cache is not fetched again. A branch is
        always fetched (depth 1), since only the server knows where its head is
        now. Errors are GitError naming the repository, the branch or commit,
        and what to check.
        """
        if not uri:
            raise OsbsFlowError("no git repository given to resolve a commit of")
        if not commit and not branch:
            raise OsbsFlowError("resolving a commit of %s needs a commit or a branch" % mask_credentials(uri))
        commit = self._checked(uri, commit, branch)
        with self._repo_lock(uri), self._cache_lock(uri):
            return self._fetched_commit(
                self._ensure_repo(uri), uri, commit, branch,
                branch_hint=": check the URI and the branch name, and that this host can read the repository "
                            "(its SSH key or git credential helper)",
                no_branch="give the branch the commit is on as well, so that it can be fetched from there",
                lost="check the commit, or give the branch it is on",
            )

    def read_files(self, uri, commit, paths):
        """{path: text, or None when absent} of files at `commit`, which `resolve` has put in the cache.

        Paths are relative to the top of the repository; symbolic links inside
        the repository are followed. A path naming a directory, or a link that
        leads out of the repository or nowhere, is a GitError.
        """
        commit = check_commit(commit, name="the commit")
        for path in paths:
            if not path or "\n" in path:
                raise OsbsFlowError("%r is not a file name in a git repository" % (path,))
        request = "".join("%s:%s\n" % (commit, path) for path in paths).encode("utf-8")
        with self._repo_lock(uri), self._cache_lock(uri):
            # Bytes: git gives sizes in bytes, and a file's text is decoded only once it is known to be a file.
            done = self._git(self._repo_dir(uri), "cat-file", "--batch", "--follow-symlinks", stdin=request, text=False)
        found = {}
        output = done.stdout
        for path in paths:
            header, _sep, output = output.partition(b"\n")
            words = header.decode("utf-8", "replace").split()
            where = "%s at commit %s of %s" % (path, commit, mask_credentials(uri))
            if words[-1:] == ["missing"]:
                found[path] = None
                continue
            if len(words) == 2 and (words[0] == "notdir" or words[0] in _LINK_TROUBLE) and words[1].isdigit():
                # `<kind> <size>`, then that many bytes of detail and a newline, which the next path must not read.
                output = output[int(words[1]) + 1:]
                if words[0] == "notdir":  # the path goes through a file: no such file
                    found[path] = None
                    continue
                raise GitError("%s is a symbolic link %s: make it a file, or a link to a file of the repository"
                               % (where, _LINK_TROUBLE[words[0]]))
            if len(words) != 3:
                raise GitError("`git cat-file` answered %r for %s" % (header, where))
            size = int(words[2])
            content, output = output[:size], output[size + 1:]
            if words[1] != "blob":
                raise GitError("%s is a %s, not a file: name the file itself" % (where, "directory" if words[1] == "tree" else words[1]))
            try:
                found[path] = content.decode("utf-8")
            except UnicodeDecodeError:
                raise GitError("%s is not UTF-8 text: save it as UTF-8" % where)
        return found

    # -- git -----------------------------------------------------------------------------------------

    @staticmethod
    def _checked(uri, commit, branch):
        """The commit in lower case, once the URI, the commit and the branch are known to be what their names say.

        They may come from another user's BuildConfig: none of them may reach git as an option or a refspec.
        """
        check_git_transport(uri, name="the git URI")
        if branch:
            check_branch_name(branch, name="the branch")
        return check_commit(commit, name="the commit") if commit else None

    def _repo_lock(self, uri):
        with self._lock:
            return self._repo_locks.setdefault(uri, threading.Lock())

    @contextlib.contextmanager
    def _cache_lock(self, uri):
        """Take turns with other processes using this cache directory on one repository.

        Two runs fetching two branches of one repository would otherwise race
        on FETCH_HEAD (and read each other's head) or on git's shallow.lock.
        """
        self._private_cache_dir()
        with open(self._repo_dir(uri) + ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _private_cache_dir(self):
        """Make the cache directory 0700 and ours: it holds private sources, and git obeys its repositories' config."""
        with self._lock:
            if self._cache_ready:
                return
            os.makedirs(self.cache_dir, mode=0o700, exist_ok=True)
            info = os.stat(self.cache_dir)
            if info.st_uid != os.geteuid():
                # Whoever owns it can put core.sshCommand or hooks in the bare repositories git runs in.
                raise OsbsFlowError(
                    "%s %s belongs to another user (uid %d): whoever owns it can make git run commands as you; "
                    "use a directory of your own" % (self.cache_option, self.cache_dir, info.st_uid)
                )
            if stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(self.cache_dir, 0o700)
            self._cache_ready = True

    def _repo_dir(self, uri):
        name = hashlib.sha256(uri.encode("utf-8")).hexdigest()[:20]
        return os.path.join(self.cache_dir, name + ".git")

    def _run_git(self, args, stdin=None):
        """(returncode, stdout bytes, stderr text) of git `args`; _GitTimedOut after self.timeout seconds.

        git runs in a session of its own, so that on a timeout its helpers (git-remote-http, ssh)
        are killed with it instead of living on, and so that no terminal is there to prompt on.
        """
        process = subprocess.Popen(
            ["git", *self.git_options, *args],
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=git_environment(), start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                # A helper that left the session holds the pipes: stop reading them.
                process.stdout.close()
                process.stderr.close()
                process.wait()
            raise _GitTimedOut()
        return process.returncode, stdout, stderr.decode("utf-8", "replace")

    def _git(self, repo_dir, *args, check=True, stdin=None, text=True):
        try:
            returncode, stdout, stderr = self._run_git(["--git-dir=%s" % repo_dir, *args], stdin=stdin)
        except _GitTimedOut:
            raise GitError("`git %s` took longer than %s s in %s" % (args[0], self.timeout, repo_dir))
        done = subprocess.CompletedProcess(args, returncode, stdout.decode("utf-8", "replace") if text else stdout, stderr)
        if check and done.returncode != 0:
            raise GitError("`git %s` failed: %s" % (" ".join(args), " ".join(stderr.split()) or "exit %d" % done.returncode))
        return done

    def _ensure_repo(self, uri):
        repo_dir = self._repo_dir(uri)
        if not os.path.isdir(repo_dir):
            self._private_cache_dir()
            try:
                returncode, _stdout, stderr = self._run_git(["init", "--quiet", "--bare", "--", repo_dir])
            except _GitTimedOut:
                returncode, stderr = -1, "took longer than %s s" % self.timeout
            if returncode != 0:
                raise GitError("cannot make the bare repository %s: %s" % (repo_dir, " ".join(stderr.split())))
        return repo_dir

    def _has_commit(self, repo_dir, commit):
        return self._git(repo_dir, "cat-file", "-e", "%s^{commit}" % commit, check=False).returncode == 0

    def _fetch(self, repo_dir, uri, commit=None, branch=None, options=()):
        """`git fetch` of `commit`, or else of the head of `branch`: a CompletedProcess with git's masked stderr.

        From the URI itself, not a configured remote (one git process fewer per repository). Options end
        with `--`; the branch is fetched as refs/heads/<branch>, which git reads as that branch and nothing else.
        """
        what = commit or branch
        self.fetches.append((uri, what))
        refspec = commit or "refs/heads/%s" % branch
        try:
            returncode, stdout, stderr = self._run_git(
                ["--git-dir=%s" % repo_dir, "fetch", "--quiet", "--no-tags", *options, "--", uri, refspec])
        except _GitTimedOut:
            server = server_of(uri)
            doing = "fetching %s %s of %s" % ("commit" if commit else "branch", what, mask_credentials(uri))
            raise GitError(
                "%s within %s s while %s: check that the server is up and reachable from this host, or give it longer with %s"
                % ("the git server %s did not answer" % server if server else "git did not finish",
                   self.timeout, doing, self.timeout_option)
            )
        return subprocess.CompletedProcess(["fetch"], returncode, stdout, mask_credentials(stderr))

    def _fetched_commit(self, repo_dir, uri, commit, branch, branch_hint="", no_branch=None, lost=None):
        """`commit`, fetched (depth 1, or by its branch) unless the cache has it; or the head of `branch`, fetched.

        The hints end the messages for a branch that cannot be fetched and for the commit's refusals
        (see _fetch_commit_by_branch); the defaults speak of the BuildConfig the wave read the commit from.
        """
        if commit:
            if not self._has_commit(repo_dir, commit):
                by_sha = self._fetch(repo_dir, uri, commit=commit, options=("--depth", "1"))
                if by_sha.returncode != 0:
                    self._fetch_commit_by_branch(repo_dir, uri, commit, branch, by_sha.stderr, no_branch=no_branch, lost=lost)
            return commit
        done = self._fetch(repo_dir, uri, branch=branch, options=("--depth", "1"))
        if done.returncode != 0:
            raise GitError("cannot fetch branch %s of %s: %s%s" % (branch, mask_credentials(uri), " ".join(done.stderr.split()), branch_hint))
        return self._git(repo_dir, "rev-parse", "FETCH_HEAD^{commit}").stdout.strip()

    def _read_uncached(self, uri, path, commit, branch):
        repo_dir = self._ensure_repo(uri)
        commit = self._fetched_commit(repo_dir, uri, commit, branch)
        shown = self._git(repo_dir, "show", "%s:%s" % (commit, path), check=False)
        if shown.returncode == 0:
            return commit, shown.stdout
        listed = self._git(repo_dir, "ls-tree", "--name-only", commit, "--", path, check=False)
        if listed.returncode == 0 and not listed.stdout.strip():
            return commit, None  # no such file at that commit: autorebuilds stay enabled
        raise GitError("cannot read %s at commit %s of %s: %s" % (path, commit, mask_credentials(uri), " ".join(shown.stderr.split())))

    def _fetch_commit_by_branch(self, repo_dir, uri, commit, branch, refusal, no_branch=None, lost=None):
        """The server would not give the commit by sha: fetch the branch it is on, deepening as needed.

        no_branch and lost are what the caller's user should do when there is no branch, or when the
        branch does not hold the commit; the defaults speak of the BuildConfig the wave read it from.
        """
        reason = " ".join(refusal.split()) or "the fetch did not bring the commit"
        if not branch:
            raise GitError(
                "cannot fetch commit %s from %s (%s) and no branch is known to fetch it from%s"
                % (commit, mask_credentials(uri), reason, ": %s" % no_branch if no_branch else "")
            )
        shallow = os.path.exists(os.path.join(repo_dir, "shallow"))
        done = self._fetch(repo_dir, uri, branch=branch, options=("--unshallow",) if shallow else ())
        if done.returncode != 0 and shallow:
            # --unshallow refuses on a complete repository; fetch plainly then.
            done = self._fetch(repo_dir, uri, branch=branch)
        if done.returncode != 0:
            raise GitError("cannot fetch commit %s from %s (%s), nor its branch %s: %s"
                           % (commit, mask_credentials(uri), reason, branch, " ".join(done.stderr.split())))
        if not self._has_commit(repo_dir, commit):
            raise GitError(
                "commit %s is not on branch %s of %s (%s)" % (
                    commit, branch, mask_credentials(uri),
                    lost or "the BuildConfig records a commit the repository no longer has; run a user build to record a current one",
                )
            )
