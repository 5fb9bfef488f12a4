"""``agnoshm service``: list, info and call, shaped like ``ros2 service``.

A service is two agnoshm topics (``/rq/<name>Request`` and ``/rr/<name>Reply``,
:mod:`agnoshm.msg.srv`); ``list`` and ``info`` read them from the registry without
joining the domain, ``call`` joins it as a client for one call.
"""

from __future__ import annotations

import time

import yaml

from agnoshm.cli import CommandError
from agnoshm.cli import snapshot as S
from agnoshm.cli.render import Format, render
from agnoshm.cli.session import Session
from agnoshm.msg.srv import service_of_topic


def register(subparsers) -> None:
    p = subparsers.add_parser("service", help="list, inspect and call agnoshm services",
                              description="The services of this ROS domain (ROS_DOMAIN_ID).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    v = verbs.add_parser("list", help="print the services")
    v.add_argument("-t", "--show-types", action="store_true", help="also print each service's type")
    v.set_defaults(run=run_list)
    v = verbs.add_parser("info", help="print a service's type, hash, server and clients")
    v.add_argument("service", metavar="SERVICE")
    v.set_defaults(run=run_info)
    v = verbs.add_parser("call", help="call a service once and print the response")
    v.add_argument("service", metavar="SERVICE")
    v.add_argument("type", nargs="?", metavar="TYPE",
                   help="service type (pkg/srv/Name); default: the service's, from the registry")
    v.add_argument("values", nargs="?", default="{}", metavar="VALUES",
                   help="the request as YAML, e.g. \"{a: 1, b: 2}\" (default: {})")
    v.add_argument("--timeout", type=float, default=10.0, metavar="SEC",
                   help="give up after SEC seconds without a server or an answer (default 10)")
    v.set_defaults(run=run_call)


def services(snap) -> dict[str, dict]:
    """Service name -> {"type", "hash", "servers", "clients"} from a registry snapshot."""
    found: dict[str, dict] = {}
    for topic in snap.topics:
        about = service_of_topic(topic.name, topic.type_name)
        if about is None:
            continue
        name, type_name, role = about
        entry = found.setdefault(name, {"type": type_name, "hash": topic.type_hash,
                                        "servers": [], "clients": []})
        live = [s for s in topic.subscriptions if not s.draining]
        if role == "request":
            entry["servers"] += live
            entry["clients"] += topic.publishers
    return dict(sorted(found.items()))


def run_list(args) -> int:
    for name, entry in services(S.read()).items():
        print(f"{name} [{entry['type']}]" if args.show_types else name)
    return 0


def _service(snap, name: str) -> dict:
    name = S.normalize_topic(name)
    found = services(snap)
    if name not in found:
        raise S.NotFoundError(S._unknown("service", name, list(found), snap.domain_id,
                                         "agnoshm service list"))
    return found[name]


def run_info(args) -> int:
    snap = S.read()
    entry = _service(snap, args.service)
    print(f"Service: {S.normalize_topic(args.service)}")
    print(f"Type: {entry['type']}")
    print(f"Type hash: {entry['hash']}")
    print(f"Service count: {len(entry['servers'])}")
    print(f"Client count: {len(entry['clients'])}")
    for role, endpoints in (("Server", entry["servers"]), ("Client", entry["clients"])):
        for e in endpoints:
            pid = f"pid {e.process.pid} ({e.process.name})" if e.process else "unknown process"
            print(f"  {role}: {e.node_name}, {pid}")
    return 0


def run_call(args) -> int:
    import agnoshm

    name = S.normalize_topic(args.service)
    type_name = args.type
    if type_name is not None and "/" not in type_name:  # `call SERVICE VALUES`: no type given
        type_name, args.values = None, type_name
    if type_name is None:
        type_name = _service(S.read(), name)["type"]
    try:
        request = yaml.safe_load(args.values)
    except yaml.YAMLError as err:
        raise CommandError(f"VALUES is not YAML ({err}); e.g. \"{{a: 1, b: 2}}\"") from None
    if request is not None and not isinstance(request, dict):
        raise CommandError(f"VALUES must be a YAML mapping of the request's fields, not "
                           f"{args.values!r}; e.g. \"{{a: 1, b: 2}}\"")
    with Session("service_call") as session:
        client = session.node.create_client(type_name, name)
        print(f"requester: making request: {type_name}_Request({request or {}})")
        start = time.monotonic()
        try:
            response = client.call(request or {}, timeout_sec=args.timeout)
        except agnoshm.ServiceError as err:
            raise CommandError(str(err)) from None
        print(f"\nresponse ({(time.monotonic() - start) * 1e3:.3f} ms):")
        print("\n".join(render(response, Format(False, 16)) or ["{}"]))
        del response
    return 0
