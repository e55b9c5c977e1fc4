"""The graph of issue 5 on osbs-local, with real git repositories (file:// URIs) and real buildah builds.

base FROM busybox; app FROM base (enabled=1); leaf FROM app (no repo config file); tool FROM base
(enabled=false); odd FROM base (enabled=maybe). Each is set up the way the flow does it: osbs_buildconfig,
a user build with osbs_build, then reactor_import_image of its image.

The engine is the session's `osbs_engine` (tests/conftest.py: `osbs-local up` in a temporary state
directory once per session, `down` after), shared with the other integration tests; the names here
all start with `wave-`, so no other test's BuildConfig depends on these images.
"""

from __future__ import annotations

import pytest

from wavelib import DEPENDENTS, WaveGraph


@pytest.fixture(scope="module")
def wave_repos(osbs_engine, busybox_base, tmp_path_factory):
    graph = WaveGraph(osbs_engine, busybox_base, tmp_path_factory.mktemp("wave-repos"))
    graph.make_repo("base")
    graph.make_repo("app", "[autorebuild]\nenabled = 1\n")
    graph.make_repo("leaf")
    graph.make_repo("tool", "[autorebuild]\nenabled = false\n", slow=True)
    graph.make_repo("odd", "[autorebuild]\nenabled = maybe\n", slow=True)
    return graph


@pytest.fixture(scope="module")
def base_build(wave_repos):
    """The first build of base, not imported yet."""
    return wave_repos.user_build("base")


@pytest.fixture(scope="module")
def wave_graph(wave_repos, base_build):
    """The whole graph built and imported, parents first (importing base again is a no-op when done already)."""
    wave_repos.import_image("base", base_build)
    for short in DEPENDENTS:
        wave_repos.import_image(short, wave_repos.user_build(short))
    return wave_repos
