"""``agnoshm node``: list and info, shaped like ``ros2 node``.

A node is known to the registry through its endpoints: every publisher and
subscription records its node's fully qualified name and its process.  A node
without publishers or subscriptions therefore does not show.  Reads the
registry without joining the domain (:mod:`agnoshm.cli.snapshot`).
"""

from __future__ import annotations

import sys

from agnoshm.cli import snapshot as S


def register(subparsers) -> None:
    p = subparsers.add_parser("node", help="list and inspect the nodes that have agnoshm endpoints",
                              description="Nodes of this ROS domain (ROS_DOMAIN_ID) that have "
                                          "agnoshm publishers or subscriptions.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    v = verbs.add_parser("list", help="print the node names")
    v.add_argument("-a", "--all", action="store_true",
                   help="also show hidden nodes (names starting with _, e.g. agnoshm's own CLI)")
    v.add_argument("-p", "--pids", action="store_true", help="also print each node's process")
    v.set_defaults(run=run_list)
    v = verbs.add_parser("info", help="print a node's process, publishers and subscriptions")
    v.add_argument("node", metavar="NODE", help="fully qualified node name, e.g. /talker")
    v.set_defaults(run=run_info)


def _hidden(name: str) -> bool:
    return any(part.startswith("_") for part in name.split("/"))


def run_list(args) -> int:
    nodes = [n for n in S.read().nodes() if args.all or not _hidden(n.name)]
    names = [n.name for n in nodes]
    for n in nodes:
        if args.pids and n.process is not None:
            print(f"{n.name} (pid {n.process.pid}, {n.process.name})")
        elif not args.pids and n.name in names[:names.index(n.name)]:
            continue  # once per name, as ros2 node list prints it
        else:
            print(n.name)
    if len(set(names)) != len(names):
        print("WARNING: Be aware that there are nodes in the graph that share an exact name, "
              "which can have unintended side effects.", file=sys.stderr)
    return 0


def run_info(args) -> int:
    snap = S.read()
    nodes = snap.node(args.node)
    types = {t.name: t.type_name for t in snap.topics}
    for i, n in enumerate(nodes):
        if i:
            print()
        print(n.name)
        p = n.process
        if p is not None:
            state = "alive" if p.alive else "DEAD"
            print(f"  Process: pid {p.pid} ({p.name}), {state}")
            print(f"  Pool: {p.pool_name} ({p.backend}) at 0x{p.pool_address:x}, "
                  f"{S.size_text(p.pool_size)}")
        print("  Publishers:")
        for pub in sorted(n.publishers, key=lambda e: e.topic):
            print(f"    {pub.topic}: {types[pub.topic]} (depth {pub.depth}, "
                  f"{pub.durability.lower()}, {pub.published} published)")
        print("  Subscribers:")
        for sub in sorted(n.subscriptions, key=lambda e: e.topic):
            print(f"    {sub.topic}: {types[sub.topic]} (depth {sub.depth}, "
                  f"{sub.durability.lower()}, {sub.received} received)")
    if len(nodes) > 1:
        print(f"WARNING: {len(nodes)} processes have a node called {nodes[0].name}",
              file=sys.stderr)
    return 0

