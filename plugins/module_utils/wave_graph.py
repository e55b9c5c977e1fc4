# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 6, the graph (pure): which BuildConfigs a new image rebuilds, parents before children.

The BuildConfigs are listed once, mapped by the ImageStreamTag their
ImageChange triggers name, and each BuildConfig's output image is mapped to the
ImageStreamTag reactor_import_image moves. Everything reachable from the new
image is the wave. A cycle (BuildConfigs triggering on each other's images) is
found here, so the scheduler reports it as failed rather than following it.
"""

from __future__ import annotations

from collections import defaultdict, namedtuple

from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    base_imagestreamtag,
    output_imagestreamtag,
    split_imagestreamtag,
    trigger_imagestreamtags,
)

ROOT = ("", "")  # the key of the new image the wave starts from

Graph = namedtuple("Graph", "root nodes parents children base_parent order depth cycles")
"""root: (namespace, istag) of the new image; nodes: key -> BuildConfig, key = (namespace, name);
parents/children: key -> set of keys (parents may hold ROOT); base_parent: key -> the parent whose
image the docker strategy builds from (or None); order: keys, parents first; depth: key -> 1 for a
direct dependent of the new image; cycles: lists of keys, each a cycle in order."""


def bc_key(buildconfig):
    return buildconfig["metadata"]["namespace"], buildconfig["metadata"]["name"]


def key_name(key):
    return "%s/%s" % key


def build_graph(buildconfigs, root, also=(), moving_with=None):
    """The wave of dependents reachable from the ImageStreamTag `root` = (namespace, name:tag).

    `also`: the other ImageStreamTags that name the same new image (its version and version-release tags
    beside `latest`): a dependent built `FROM base:1.0` is in the wave when `base:1.0` moved with it, one
    pinned to another tag is not. `moving_with(key, output_tag)`: the other ImageStreamTags a dependent's
    rebuild moves beside its output tag (its version tag), so that their consumers are in the wave too.
    """
    roots = {root} | set(also)
    consumers = defaultdict(list)
    outputs = {}
    by_key = {}
    for bc in buildconfigs:
        key = bc_key(bc)
        by_key[key] = bc
        outputs[key] = output_imagestreamtag(bc)
        for tag in trigger_imagestreamtags(bc):
            consumers[tag].append(key)

    nodes = {}
    moved = {}  # key -> every ImageStreamTag its rebuild moves
    queue, seen_tags = sorted(roots), set(roots)
    while queue:
        tag = queue.pop(0)
        for key in sorted(consumers.get(tag, ())):
            if key in nodes:
                continue
            nodes[key] = by_key[key]
            out = outputs[key]
            moved[key] = [out] if out else []
            if out and moving_with:
                moved[key] += sorted(set(moving_with(key, out)) - {out})
            for out in moved[key]:
                if out not in seen_tags:
                    seen_tags.add(out)
                    queue.append(out)

    producers = defaultdict(set)
    for key in nodes:
        for out in moved[key]:
            producers[out].add(key)
    parents = {key: set() for key in nodes}
    children = {key: set() for key in nodes}
    children[ROOT] = set()
    base_parent = {}
    for key, bc in nodes.items():
        for tag in trigger_imagestreamtags(bc):
            found = set(producers.get(tag, ()))
            if tag in roots:
                found.add(ROOT)
            for parent in found:
                parents[key].add(parent)
                children[parent].add(key)
        strategy_tag = base_imagestreamtag(bc)
        base_parent[key] = None
        if strategy_tag:
            strategy_tag = (strategy_tag[0], "%s:%s" % split_imagestreamtag(strategy_tag[1]))
            candidates = sorted(producers.get(strategy_tag, ()))
            if strategy_tag in roots:
                base_parent[key] = ROOT
            elif candidates:
                base_parent[key] = candidates[0]

    cycles = find_cycles(nodes, children)
    order, depth = topological_order(nodes, parents, cycles)
    return Graph(root, nodes, parents, children, base_parent, order, depth, cycles)


def find_cycles(nodes, children):
    """Each strongly connected group of BuildConfigs that feeds itself, as one cycle path (Tarjan)."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    counter = [0]

    def connect(start):
        # Iterative Tarjan, so a long chain cannot exhaust Python's recursion limit.
        work = [(start, iter(sorted(children.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in nodes:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter[0]
                    counter[0] += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(children.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in children.get(node, ()):
                    groups.append(set(group))

    for key in sorted(nodes):
        if key not in index:
            connect(key)
    return sorted((_cycle_path(group, children) for group in groups), key=lambda path: path[0])


def _cycle_path(group, children):
    """A path through the group from its first member back to it: [a, b, ..., a]."""
    start = min(group)
    previous = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for succ in sorted(children.get(node, ())):
            if succ == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if succ in group and succ not in previous:
                previous[succ] = node
                queue.append(succ)
    return [start, start]


def topological_order(nodes, parents, cycles):
    """Keys with every parent before its children (edges inside a cycle ignored), and each key's depth."""
    cycle_of = {}
    for number, path in enumerate(cycles):
        for key in path:
            cycle_of[key] = number

    def counts(key, parent):
        return parent != ROOT and parent in nodes and not (key in cycle_of and cycle_of.get(parent) == cycle_of[key])
    pending = {key: {p for p in parents[key] if counts(key, p)} for key in nodes}
    depth = {}
    for key in nodes:
        if not pending[key]:
            depth[key] = 1
    order = []
    ready = sorted(key for key in nodes if not pending[key])
    waiting_children = defaultdict(set)
    for key, ps in pending.items():
        for parent in ps:
            waiting_children[parent].add(key)
    while ready:
        ready.sort(key=lambda k: (depth[k], k))
        key = ready.pop(0)
        order.append(key)
        for child in waiting_children.get(key, ()):
            pending[child].discard(key)
            depth[child] = max(depth.get(child, 1), depth[key] + 1)
            if not pending[child]:
                ready.append(child)
    return order, depth
