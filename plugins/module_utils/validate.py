# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole-value validation: one home for the shape of every value that reaches a file,
a command line or a unit.

Every check is a full match (``re.fullmatch``): ``re.match`` with ``$`` also accepts a
trailing newline, which would cut a unit's ``ExecStart`` short or inject a directive.
Only ``str`` values pass (a YAML int ``010`` is not the host name ``010``).

Used by the inventory plugin, the modules and, through the ``ringrift.cluster.valid``
test, the roles' argument checks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# kind -> (pattern, what a valid value looks like, for messages)
KINDS = {
    # Host names / node ids: no leading '-' or '.', so never an option or a path step.
    "node_id": (r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", "a name of letters, digits, '.', '_' and '-' not starting with '.' or '-'"),
    # A DNS name, IPv4 or (bracketless) IPv6 address; never starts with '-'.
    # No '%' (an IPv6 zone): systemd and supervisor would expand it in a command line.
    "host": (r"[A-Za-z0-9_:](?:[A-Za-z0-9._:-]{0,252})", "a host name or IP address (no spaces, not starting with '-')"),
    "port": (r"[1-9][0-9]{0,4}", "an integer 1..65535"),
    "user": (r"[a-z_][a-z0-9_.-]{0,31}\$?", "a user name"),
    # Absolute path or ~/..., no spaces, quotes, '%', '$', or newlines.
    "path": (r"(?:~|/)[A-Za-z0-9._/+@~-]*", "an absolute path or ~/..., without spaces, quotes, % or $"),
    "abs_path": (r"/[A-Za-z0-9._/+@-]+", "an absolute path without spaces, quotes, % or $"),
    "service_name": (r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}", "a unit name"),
    # One argument of a command line that a unit or a supervisor program carries.
    "word": (r"[A-Za-z0-9._/:,=+@-]+", "a plain word (no spaces, quotes, % or $)"),
    "peer_url": (r"https?://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9._-]*):[0-9]{1,5}/*", "http(s)://host:port"),
    "env_name": (r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name"),
    # A single-line value that node.conf can hold single-quoted.
    "env_value": (r"[^'\x00-\x1f\x7f]*", "a single line without single quotes"),
    "module_name": (r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", "a Python module name"),
    # A pip requirement specifier: a distribution name, extras, version bounds; no URL, no option.
    "requirement": (r"[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9._,-]+\])?"
                    r"(?:\s*(?:[<>=!~]=?|===)\s*[A-Za-z0-9.*+!_-]+(?:\s*,\s*(?:[<>=!~]=?|===)\s*[A-Za-z0-9.*+!_-]+)*)?",
                    "a requirement such as name, name>=1.2 or name[extra]==1.0"),
    "program": (r"[A-Za-z0-9_][A-Za-z0-9._+-]*", "a program name"),
    # A script on a command line: absolute or relative to the working directory, never an option.
    "script_path": (r"[A-Za-z0-9._/+@][A-Za-z0-9._/+@-]*",
                    "an absolute or relative path without spaces, quotes, % or $, not starting with '-'"),
    # The path (and query) of an HTTP request line: no spaces or control characters, so nothing can be appended to the request.
    "url_path": (r"/?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*",
                 "an HTTP path such as /health (no spaces or control characters)"),
    # A login name on a remote machine (ssh -l / user@host): the remote's rules, so upper case too;
    # never starts with '-' (an ssh option) or '.'.
    "ssh_user": (r"[A-Za-z_][A-Za-z0-9_.-]{0,63}",
                 "a login name of letters, digits, '.', '_' and '-' not starting with '.' or '-'"),
    # A provider name, also an inventory group name.
    "provider": (r"[A-Za-z][A-Za-z0-9_-]{0,63}",
                 "a provider name of letters, digits, '_' and '-' starting with a letter"),
}

_COMPILED = dict((kind, re.compile(pattern)) for kind, (pattern, dummy) in KINDS.items())


def is_valid(kind, value):
    """True when ``value`` is a ``str`` whose whole text has the shape ``kind``."""
    if kind not in _COMPILED:
        raise KeyError("unknown kind of value %r (known: %s)" % (kind, ", ".join(sorted(KINDS))))
    if not isinstance(value, str):
        return False
    if _COMPILED[kind].fullmatch(value) is None:
        return False
    if kind == "port":
        return 0 < int(value) < 65536
    return True


def problem(kind, value, field):
    """``None`` when valid, else a message naming the field and the expected shape."""
    if is_valid(kind, value):
        return None
    return "%s %r must be %s" % (field, value, KINDS[kind][1])


def whole_match(value, pattern):
    """``re.fullmatch`` for a str value (never a partial or trailing-newline match)."""
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None
