# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The P2P voter quorum: the one home of its rules, on the controller.

Used by the ``quorum_decision`` filter (site.yml's restart guard), the
``fleet_report`` action and the ``dry_run_report`` callback (both read the voters the
inventory declares through ``declared``). Controller-only
(like amazon.aws keeps controller code in ``plugin_utils``): nothing here is
shipped to a node.

Rules:

- The voter list is a list of host names (strings). A name listed twice counts
  once: it is one daemon with one vote, and counting it twice would let a quorum
  be claimed that the fleet does not have. Duplicates are reported back so the
  caller can warn.
- The quorum is a strict majority of the distinct voters unless
  ``ringrift_quorum_size`` sets it; an explicit size must be an integer from that
  majority up to the number of voters. Below a majority two halves of the fleet
  could each elect a leader; above the number of voters quorum could never be met.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_proc
from ansible_collections.ringrift.cluster.plugins.plugin_utils.fleet_report import type_name

# The variable operators set; named in every error about the size.
SIZE_FIELD = "ringrift_quorum_size"
VOTERS_FIELD = "p2p_voters"

# A diagnosis string counts as alive when the daemon answers (busy included).
ALIVE = frozenset(p2p_proc.ALIVE_DIAGNOSES)


class QuorumError(ValueError):
    """Bad voter list or quorum size; the message names the variable."""


def _describe(value):
    return "%s %r" % (type_name(value), value)


def voter_list(voters, field=VOTERS_FIELD):
    """``(distinct voters in first-seen order, names listed more than once)``.

    Anything but a list of non-empty strings is an error (``[]`` is no voters): a
    string would be read as single-character voters, a number is not a host.
    """
    if isinstance(voters, (str, bytes)) or not isinstance(voters, Sequence):
        raise QuorumError("%s must be a list of host names, got %s" % (field, type_name(voters)))
    distinct, duplicates = [], []
    for index, name in enumerate(voters):
        if not isinstance(name, str) or not name.strip():
            raise QuorumError("%s entry %d must be a host name (a non-empty string), got %s" % (field, index, _describe(name)))
        if name in distinct:
            if name not in duplicates:
                duplicates.append(name)
            continue
        distinct.append(name)
    return distinct, duplicates


def declared(facts_by_host, hosts):
    """``(voters, quorum size)`` the inventory declares, from the first of ``hosts`` with a ``ringrift_p2p_voters``.

    The inventory plugin gives every host the same top-level list; ``([], None)`` when no host has one
    (a hand-written inventory: the caller decides the fallback, such as group ``p2p_voters``).
    """
    for name in hosts:
        facts = facts_by_host.get(name) or {}
        voters = facts.get("ringrift_p2p_voters")
        if voters:
            return voters, facts.get(SIZE_FIELD)
    return [], None


def duplicate_warning(duplicates, field=VOTERS_FIELD):
    """The warning for names listed twice, or None when there are none."""
    if not duplicates:
        return None
    return "%s lists %s more than once; each voter counts once" % (field, ", ".join(duplicates))


def majority(voter_count):
    """Strict majority of ``voter_count`` voters; 0 when there are none (nothing to elect)."""
    return voter_count // 2 + 1 if voter_count else 0


def _as_int(size, field):
    if isinstance(size, bool):
        raise QuorumError("%s must be an integer, got %s" % (field, _describe(size)))
    if isinstance(size, int):
        return size
    if isinstance(size, float) and size.is_integer():
        return int(size)
    if isinstance(size, str):
        # Extra vars and templated values arrive as strings ("-e ringrift_quorum_size=3").
        digits = size.strip()
        digits = digits[1:] if digits[:1] in ("+", "-") else digits
        if digits.isascii() and digits.isdigit():
            return int(size.strip())
    raise QuorumError("%s must be an integer, got %s" % (field, _describe(size)))


def required(voter_count, size=None, field=SIZE_FIELD):
    """Voters that must be alive: ``size`` when set, else a strict majority.

    ``None`` and ``""`` mean unset (``default(omit)``/``default(none)`` in a playbook).
    """
    least = majority(voter_count)
    if size is None or (isinstance(size, str) and not size.strip()):
        return least
    value = _as_int(size, field)
    if not voter_count:
        raise QuorumError("%s is %d but %s is empty: declare the voters or unset %s" % (field, value, VOTERS_FIELD, field))
    if value > voter_count:
        raise QuorumError("%s is %d but %s lists %d distinct voter(s): a quorum of %d could never be met; "
                          "set it between %d and %d or unset it"
                          % (field, value, VOTERS_FIELD, voter_count, value, least, voter_count))
    if value < least:
        raise QuorumError("%s is %d, below a strict majority of the %d %s (%d): two halves of the fleet could each "
                          "elect a leader; set it between %d and %d or unset it"
                          % (field, value, voter_count, VOTERS_FIELD, least, least, voter_count))
    return value


def is_alive(state, voter="voter"):
    """A voter's state as a bool: a bool as is, a diagnosis string alive when healthy or busy, None down."""
    if state is None:
        return False
    if isinstance(state, bool):
        return state
    if isinstance(state, str):
        return state in ALIVE
    raise QuorumError("the state of %s must be a bool or a p2p_listener diagnosis, got %s" % (voter, _describe(state)))


def status(records, voters, size=None, field=SIZE_FIELD):
    """The report's ``quorum`` object from host records (``name``, ``alive``) and the voter list."""
    distinct, duplicates = voter_list(voters)
    needed = required(len(distinct), size, field)
    by_name = dict((r["name"], r) for r in records)
    healthy = [v for v in distinct if by_name.get(v, {}).get("alive")]
    margin = len(healthy) - needed
    return {
        "voters": distinct,
        "duplicate_voters": duplicates,
        "healthy_voters": healthy,
        "down_voters": [v for v in distinct if v not in healthy],
        "not_audited": [v for v in distinct if v not in by_name],
        "required": needed,
        "ok": margin >= 0,
        # One more voter lost breaks leader election (nothing to break when none is required).
        "at_risk": margin < 1 and needed > 0,
        "margin": margin,
    }


def decision(voter, alive_by_voter, voters, size=None):
    """May ``voter`` be restarted now without breaking quorum?

    ``alive_by_voter`` maps voter names to a bool or a ``p2p_listener`` diagnosis.
    A voter that is down already costs nothing to restart; a live one may go down
    only when the *other* live voters are still a quorum without it. Returns
    ``{"allowed", "reason", "others_alive", "required", "duplicate_voters"}``.
    """
    if not isinstance(voter, str) or not voter:
        raise QuorumError("the voter to restart must be a host name (a non-empty string), got %s" % _describe(voter))
    if not isinstance(alive_by_voter, Mapping):
        raise QuorumError("the voter states must be a mapping of voter to alive, got %s" % type_name(alive_by_voter))
    distinct, duplicates = voter_list(voters)
    needed = required(len(distinct), size)
    others = [v for v in distinct if v != voter and is_alive(alive_by_voter.get(v), v)]
    out = {"others_alive": len(others), "required": needed, "duplicate_voters": duplicates}
    if voter not in distinct:
        out.update(allowed=True, reason="%s is not a voter" % voter)
    elif not is_alive(alive_by_voter.get(voter), voter):
        out.update(allowed=True, reason="%s is down already: restarting it cannot lower the quorum" % voter)
    elif len(others) >= needed:
        out.update(allowed=True, reason="%d other voters alive (%s), %d required" % (len(others), ", ".join(others), needed))
    else:
        out.update(allowed=False, reason="restarting %s would leave %d live voters of %d (%d required for quorum); skipped"
                   % (voter, len(others), len(distinct), needed))
    return out
