"""Loans and leases are what the view classes expect of a message's owner (msg/owner.py)."""

from __future__ import annotations

import agnoshm
from agnoshm.msg.owner import LeaseOwner, LoanOwner


def _members(protocol) -> set[str]:
    names = set()
    for klass in protocol.__mro__:
        if klass.__module__ == "agnoshm.msg.owner":
            names |= {n for n in vars(klass) if not n.startswith("_")}
            names |= set(getattr(klass, "__annotations__", {}))
    return names


def test_a_loan_and_a_lease_have_every_member_of_their_protocol(isolated_domain):
    node = agnoshm.Node("owners")
    pub = node.create_publisher(agnoshm.Bytes, "/owners", 2)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/owners", 2)
    loaned = pub.borrow_loaned_message()
    loan = loaned._owner
    assert {n for n in _members(LoanOwner) if not hasattr(loan, n)} == set()
    assert loan.valid and not loan.closed and loan.pool.writable
    loaned.data = b"owned"
    pub.publish(loaned)
    assert not loan.valid
    received = sub.take()
    lease = received._owner
    assert {n for n in _members(LeaseOwner) if not hasattr(lease, n)} == set()
    assert lease.valid and not lease.closed and lease.pool.contains(lease.address, lease.size)
    assert lease.seq == 1 and lease.timestamp_ns > 0
    node.destroy_node()
