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
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
import threading

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.repo_config import parse_repo_config

GIT_TIMEOUT = 300
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password nobody will type
    "GIT_ASKPASS": "true",
    "LC_ALL": "C",  # stable messages
}


# A full commit name: SHA-1, or SHA-256 in a repository that uses it.
FULL_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


# What `git cat-file --batch --follow-symlinks` says of a link it cannot follow to a file of the tree.
_LINK_TROUBLE = {
    "symlink": "that leads out of the repository",
    "dangling": "to a file that does not exist",
    "loop": "in a loop of links",
}


class GitError(OsbsFlowError):
    """A git command failed; the message holds the command and git's own words."""


class RepoSource:
    """Reads files from git repositories at commits; one instance per run (its cache is the run's)."""

    def __init__(self, cache_dir, git_options=None):
        self.cache_dir = cache_dir
        # Extra `git -c key=value` options; the tests use protocol.version=0 to get a real sha refusal.
        self.git_options = list(git_options or [])
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
            raise OsbsFlowError("reading %s from %s needs a commit or a branch" % (path, uri))
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
            raise OsbsFlowError("%s (commit %s of %s)" % (exc, commit[:12], uri))

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
            raise OsbsFlowError("resolving a commit of %s needs a commit or a branch" % uri)
        commit = commit.lower() if commit else None
        if commit and not FULL_COMMIT.match(commit):
            # A server hands out commits by their full name only; a short one would cost a whole branch fetch.
            raise OsbsFlowError("%r is not a full commit name (40 hexadecimal digits): give the whole sha, as git rev-parse prints it"
                                % commit)
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
            where = "%s at commit %s of %s" % (path, commit, uri)
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

    def _repo_lock(self, uri):
        with self._lock:
            return self._repo_locks.setdefault(uri, threading.Lock())

    @contextlib.contextmanager
    def _cache_lock(self, uri):
        """Take turns with other processes using this cache directory on one repository.

        Two runs fetching two branches of one repository would otherwise race
        on FETCH_HEAD (and read each other's head) or on git's shallow.lock.
        """
        os.makedirs(self.cache_dir, exist_ok=True)
        with open(self._repo_dir(uri) + ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _repo_dir(self, uri):
        name = hashlib.sha256(uri.encode("utf-8")).hexdigest()[:20]
        return os.path.join(self.cache_dir, name + ".git")

    def _git(self, repo_dir, *args, check=True, stdin=None, text=True):
        command = ["git", *self.git_options, "--git-dir", repo_dir, *args]
        env = dict(os.environ, **_GIT_ENV)
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, text=text, env=env, timeout=GIT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise GitError("`%s` took longer than %d s" % (" ".join(args), GIT_TIMEOUT))
        if check and done.returncode != 0:
            stderr = done.stderr if text else done.stderr.decode("utf-8", "replace")
            raise GitError("`git %s` failed: %s" % (" ".join(args), " ".join(stderr.split()) or "exit %d" % done.returncode))
        return done

    def _ensure_repo(self, uri):
        repo_dir = self._repo_dir(uri)
        if not os.path.isdir(repo_dir):
            os.makedirs(self.cache_dir, exist_ok=True)
            subprocess.run(["git", "init", "--quiet", "--bare", repo_dir], check=True, capture_output=True)
        return repo_dir

    def _has_commit(self, repo_dir, commit):
        return self._git(repo_dir, "cat-file", "-e", "%s^{commit}" % commit, check=False).returncode == 0

    def _fetch(self, repo_dir, uri, what, *args):
        # From the URI itself, not a configured remote: one git process fewer per repository.
        self.fetches.append((uri, what))
        return self._git(repo_dir, "fetch", "--quiet", "--no-tags", *args, uri, what, check=False)

    def _fetched_commit(self, repo_dir, uri, commit, branch, branch_hint="", no_branch=None, lost=None):
        """`commit`, fetched (depth 1, or by its branch) unless the cache has it; or the head of `branch`, fetched.

        The hints end the messages for a branch that cannot be fetched and for the commit's refusals
        (see _fetch_commit_by_branch); the defaults speak of the BuildConfig the wave read the commit from.
        """
        if commit:
            if not self._has_commit(repo_dir, commit):
                by_sha = self._fetch(repo_dir, uri, commit, "--depth", "1")
                if by_sha.returncode != 0:
                    self._fetch_commit_by_branch(repo_dir, uri, commit, branch, by_sha.stderr, no_branch=no_branch, lost=lost)
            return commit
        done = self._fetch(repo_dir, uri, branch, "--depth", "1")
        if done.returncode != 0:
            raise GitError("cannot fetch branch %s of %s: %s%s" % (branch, uri, " ".join(done.stderr.split()), branch_hint))
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
        raise GitError("cannot read %s at commit %s of %s: %s" % (path, commit, uri, " ".join(shown.stderr.split())))

    def _fetch_commit_by_branch(self, repo_dir, uri, commit, branch, refusal, no_branch=None, lost=None):
        """The server would not give the commit by sha: fetch the branch it is on, deepening as needed.

        no_branch and lost are what the caller's user should do when there is no branch, or when the
        branch does not hold the commit; the defaults speak of the BuildConfig the wave read it from.
        """
        reason = " ".join(refusal.split()) or "the fetch did not bring the commit"
        if not branch:
            raise GitError(
                "cannot fetch commit %s from %s (%s) and no branch is known to fetch it from%s"
                % (commit, uri, reason, ": %s" % no_branch if no_branch else "")
            )
        shallow = os.path.exists(os.path.join(repo_dir, "shallow"))
        done = self._fetch(repo_dir, uri, branch, *(("--unshallow",) if shallow else ()))
        if done.returncode != 0 and shallow:
            # --unshallow refuses on a complete repository; fetch plainly then.
            done = self._fetch(repo_dir, uri, branch)
        if done.returncode != 0:
            raise GitError("cannot fetch commit %s from %s (%s), nor its branch %s: %s"
                           % (commit, uri, reason, branch, " ".join(done.stderr.split())))
        if not self._has_commit(repo_dir, commit):
            raise GitError(
                "commit %s is not on branch %s of %s (%s)" % (
                    commit, branch, uri,
                    lost or "the BuildConfig records a commit the repository no longer has; run a user build to record a current one",
                )
            )
