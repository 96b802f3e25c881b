# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet report: per-host audit records -> aggregates, root causes, Markdown, JUnit, metrics.

Pure functions (no I/O besides ``write_report``), shared by the
``ringrift.cluster.fleet_report`` action plugin, the ``dry_run_report`` callback and the
``fleet_alert_decision`` filter. Controller-only, hence ``plugin_utils``: nothing here is
shipped to a node. The voter quorum is computed by ``quorum.status()`` (the one home of its
rules, which imports ``type_name`` from here) and handed to ``build_report``.
The JSON schema is documented in ``docs/report-schema.md``; ``SCHEMA_VERSION``
changes when it does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import json
import os
import re
import shlex
import tempfile
import time
import xml.etree.ElementTree as ET

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_proc

SCHEMA_VERSION = 3

# `starting`: alive under its service manager, inside its start grace period, not yet
# listening. p2p_proc defines it; listed here as well so the report knows it whichever
# of the two changes lands first (never twice).
_LISTENER_DIAGNOSES = tuple(p2p_proc.DIAGNOSES) + tuple(d for d in ("starting",) if d not in p2p_proc.DIAGNOSES)

# The node is not one the collection can manage (not Linux: no /proc, systemd or supervisor, such as
# macOS): node_audit says so on the node, the inventory (group unsupported_os) before connecting.
UNSUPPORTED_OS = "unsupported_os"

# Every diagnosis a host record may carry: the listener's own, unsupported_os, plus the one
# only the controller can make (the node did not answer at all).
DIAGNOSES = _LISTENER_DIAGNOSES + (UNSUPPORTED_OS, "unreachable")

# The daemon answers in both: `busy` is the real daemon's `healthy: false`
# ("too busy for new jobs"), which is alive and counts for quorum.
ALIVE = frozenset(p2p_proc.ALIVE_DIAGNOSES)

# Not healthy and not broken: give it time, audit again, repair nothing.
WAITING = frozenset(("starting",))

# The log's ModuleNotFoundError names a package of the daemon's own checkout
# (`scripts`, `app`): its working directory / PYTHONPATH is wrong, no dependency is missing.
CHECKOUT_IMPORT = "checkout_import"

# How recommended commands name the playbooks: the collection's FQCN works from this
# checkout (ansible.cfg's collections_path) and from an installed collection alike.
SITE_PLAYBOOK = "ringrift.cluster.site"
AUDIT_PLAYBOOK = "ringrift.cluster.audit"

EXTRA_FORMATS = ("junit", "prometheus")

_ROOT_CAUSE_TEXT = {
    "crashed": "Daemon crash-loops (last error in its log)",
    "never_started": "Daemon never started (no unit, no log)",
    "not_listening": "Nothing listens on the P2P port",
    "wrong_owner": "Another program holds the P2P port",
    "port_shared": "Another program shares the P2P port with the daemon (SO_REUSEPORT) and answers part of its traffic",
    "unmanaged": "A stray copy started by hand holds the port; the managed one cannot bind",
    "owner_unknown": "A socket listens but its owner cannot be seen (run with become)",
    "health_failed": "Port is held by the daemon but /health does not answer 2xx",
    "unreachable": "Node unreachable over SSH",
    "busy": "Alive but reports itself too busy for new jobs (disk, memory or load)",
    "starting": "Daemon is starting: alive under its service manager, within its start grace period, "
                "not listening yet (not a fault: wait and audit again)",
    UNSUPPORTED_OS: "Operating system the collection cannot manage (not Linux: no /proc, systemd or supervisor, "
                    "such as macOS); left out of site.yml and of the healthy share, nothing to repair",
}


# OpenSSH refusing a host key (the inventory gives every connection StrictHostKeyChecking=accept-new,
# so a key it refuses is one that differs from the key recorded on first use).
_HOST_KEY_CHANGED_RE = re.compile(r"Host key for (\S+) has changed")
HOST_KEY_CHANGED = "host_key_changed"
HOST_KEY_REJECTED = "host_key_rejected"


def known_hosts_file(facts):
    """The known-hosts file of a host's own SSH connection, from its ``ansible_ssh_common_args``, or None.

    The inventory writes its ``known_hosts_file`` there (``-o UserKnownHostsFile=...``) ahead of any
    ProxyCommand, whose own copy stays inside that one argument; OpenSSH keeps the first value it reads.
    """
    for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        try:
            words = shlex.split(str(facts.get(name) or ""))
        except ValueError:
            continue
        for word in words:
            if word.startswith("UserKnownHostsFile="):
                return word.split("=", 1)[1] or None
    return None


def ssh_host_key_failure(msg, known_hosts=None):
    """``(error_kind, one line for people)`` when an unreachable host's SSH error is a refused host key, else None.

    The raw message starts with OpenSSH's banner of ``@`` signs, so cut to one line it would show nothing useful.
    ``known_hosts``: the file the host's connection records keys in (:func:`known_hosts_file`); without one,
    OpenSSH's own default file, which ``ssh-keygen -R`` edits when no ``-f`` is given.
    """
    text = str(msg or "")
    changed = _HOST_KEY_CHANGED_RE.search(text)
    if changed or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        where = changed.group(1) if changed else None
        remove = "ssh-keygen -R"
        if where:
            remove += " '%s'" % where
            if known_hosts:
                # A leading ~ must stay unquoted for the shell to expand it.
                remove += " -f " + (known_hosts if re.match(r"^[~\w./@%+=:,-]+$", known_hosts) else shlex.quote(known_hosts))
        return HOST_KEY_CHANGED, (
            "SSH host key of %s differs from the one recorded in %s: if the instance was replaced, remove the old "
            "key (%s) and connect again; otherwise someone else answers at that address" % (
                where or "the host",
                ("the fleet's known-hosts file %s (the inventory's known_hosts_file)" % known_hosts) if known_hosts
                else "your known-hosts file", remove))
    if "Host key verification failed" in text:
        return HOST_KEY_REJECTED, "SSH refused the host key (Host key verification failed): " + (_one_line(text) or "")
    return None


def is_checkout_import(record):
    """Crashed because the daemon cannot import its own checkout (PYTHONPATH / working directory)."""
    return record.get("diagnosis") == "crashed" and record.get("error_kind") == CHECKOUT_IMPORT


def is_missing_dependency(record):
    """Crashed on a third-party module the venv lacks (the `deps` stage installs it)."""
    return record.get("diagnosis") == "crashed" and bool(record.get("missing_module")) and not is_checkout_import(record)


def type_name(value):
    """The YAML-level type of a value for error messages (not ansible-core's internal tagged classes)."""
    if value is None:
        return "null"
    for kind, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (bytes, "bytes"),
                       (dict, "dict"), (list, "list"), (tuple, "list")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def healthy_share_floor(value, field="min_healthy_share"):
    """Validated floor for the healthy share: a number from 0 (off) to 1."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0.0
    if isinstance(value, bool):
        raise ValueError("%s must be a number between 0 and 1, got bool %r" % (field, value))
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ValueError("%s must be a number between 0 and 1, got %s %r" % (field, type_name(value), value))
    if not 0.0 <= share <= 1.0:
        raise ValueError("%s must be between 0 and 1 (a share: 0.8 means 80%%), got %r" % (field, value))
    return share


def host_record(name, facts, result):
    """One host's record from its inventory facts and its ``node_audit`` result.

    ``facts`` carries the inventory's ``ringrift_*`` variables (provider, voter,
    GPU); ``result`` is the registered ``node_audit`` result, or an unreachable
    or failed task result, or None when the host produced nothing.
    """
    result = result or {}
    reachable = not result.get("unreachable") and bool(result)
    module_failed = reachable and result.get("failed") and not result.get("diagnosis")
    # The inventory knows the OS (ringrift_unsupported_os): audit.yml skips the node, nothing ran there.
    inventory_reason = facts.get("ringrift_unsupported_os")
    not_run = not result or (result.get("skipped") and not result.get("diagnosis"))
    unsupported_reason = None
    if result.get("diagnosis") == UNSUPPORTED_OS:
        diagnosis = UNSUPPORTED_OS
        unsupported_reason = result.get("unsupported_reason") or _one_line(result.get("msg"))
    elif inventory_reason and not_run:
        diagnosis = UNSUPPORTED_OS
        unsupported_reason = str(inventory_reason)
        reachable = False
    elif module_failed:
        # The module itself failed to run (e.g. no python): not a daemon finding.
        diagnosis = "unreachable"
    elif reachable:
        diagnosis = result.get("diagnosis") or "not_listening"
    else:
        diagnosis = "unreachable"
    gpu = result.get("gpu") or {}
    expected_gpu = None
    if facts.get("ringrift_gpu_count"):
        expected_gpu = "%sx %s" % (facts.get("ringrift_gpu_count"), facts.get("ringrift_gpu_model") or "GPU")
    service = result.get("service") or {}
    error_kind, last_error = result.get("error_kind"), result.get("last_error")
    if not last_error and (module_failed or not reachable) and diagnosis == "unreachable":
        # A refused host key says what to do; the raw message is a banner of @ signs.
        key_failure = ssh_host_key_failure(result.get("msg"), known_hosts_file(facts))
        if key_failure:
            error_kind, last_error = key_failure
        else:
            last_error = _one_line(result.get("msg"))
    record = {
        "name": name,
        "provider": facts.get("ringrift_provider") or "unknown",
        "voter": bool(facts.get("ringrift_is_voter")),
        "reachable": reachable,
        "diagnosis": diagnosis,
        "alive": diagnosis in ALIVE,
        "missing_module": result.get("missing_module"),
        "error_kind": error_kind,
        "last_error": last_error,
        "listening": bool(result.get("listening")),
        "pid": result.get("pid"),
        "port": result.get("port") or facts.get("ringrift_p2p_port") or 8770,
        "service_manager": service.get("manager") or result.get("service_manager"),
        "service_state": service.get("state"),
        "gpu_expected": expected_gpu,
        "gpu": gpu.get("summary") if isinstance(gpu, dict) else None,
        "gpu_diagnosis": gpu.get("diagnosis") if isinstance(gpu, dict) else None,
        "health": result.get("health"),
        "last_converged_at": result.get("last_converged_at"),
        "unsupported_reason": unsupported_reason,
    }
    return record


def _one_line(text, limit=200):
    if not text:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shell_command(args):
    """One copy-pastable command line: every argument shell-quoted (``shlex.quote``)."""
    return " ".join(shlex.quote(str(a)) for a in args)


# fix -> (why, command arguments with "{hosts}" for the comma-separated host names), in report order.
_FIXES = (
    ("deps", "crash-loops on a missing Python module; --tags deps installs it and proves the import",
     ("ansible-playbook", "{playbook}", "--tags", "deps", "--limit", "{hosts}")),
    ("checkout", "crash-loops importing its own checkout (the module is part of the daemon's checkout, not a "
                 "dependency): its working directory or PYTHONPATH is wrong; the service stage rewrites the unit "
                 "(working directory, PYTHONPATH) and restarts it; --tags deps would not help",
     ("ansible-playbook", "{playbook}", "--tags", "service,verify", "--limit", "{hosts}")),
    ("converge", "daemon not running under a supervisor; a full converge installs deps, settings and the unit",
     ("ansible-playbook", "{playbook}", "--limit", "{hosts}")),
    ("service", "a stray copy holds the port; the service stage stops it and lets the managed unit bind",
     ("ansible-playbook", "{playbook}", "--tags", "service,verify", "--limit", "{hosts}")),
    ("verify", "the daemon holds the port but /health fails; restart through the unit and read its log",
     ("ansible-playbook", "{playbook}", "--tags", "service,verify", "--limit", "{hosts}")),
    ("wrong_owner", "another program holds the P2P port; the playbook will not kill what it does not own: "
                    "see which program it is (pid, exe, command line), then free the port or set p2p_port",
     ("ansible", "{hosts}", "--become", "-m", "ringrift.cluster.p2p_listener",
      "-a", "port={{ ringrift_p2p_port | default(8770) }} fail_on_mismatch=false")),
    ("become", "the socket's owner is invisible without root",
     ("ansible-playbook", AUDIT_PLAYBOOK, "--become", "--limit", "{hosts}")),
    ("unreachable", "SSH failed: check the instance in the provider's console (stopped, reclaimed or new port)",
     ("ansible", "{hosts}", "-m", "ansible.builtin.ping")),
    ("wait", "starting within its start grace period (alive under its service manager, not listening yet): "
             "wait, then audit again; repair nothing",
     ("ansible-playbook", AUDIT_PLAYBOOK, "--limit", "{hosts}")),
)


def _fix_for(record):
    d = record["diagnosis"]
    if is_checkout_import(record):
        return "checkout"
    if is_missing_dependency(record):
        return "deps"
    return {
        "never_started": "converge", "not_listening": "converge", "crashed": "converge",
        "unmanaged": "service", "health_failed": "verify", "wrong_owner": "wrong_owner", "port_shared": "wrong_owner",
        "owner_unknown": "become", "unreachable": "unreachable", "starting": "wait",
    }.get(d)


def recommend(records, playbook=SITE_PLAYBOOK):
    """Recommended commands for what is broken, one per fix, grouped by hosts.

    Every argument is shell-quoted: host names and the playbook come from the
    inventory and the play, not from this code.
    """
    hosts_by_fix = {}
    for r in records:
        fix = _fix_for(r)
        if fix:
            hosts_by_fix.setdefault(fix, []).append(r["name"])
    out = []
    for fix, why, args in _FIXES:
        if fix not in hosts_by_fix:
            continue
        hosts = hosts_by_fix[fix]
        limit = ",".join(hosts)
        out.append({
            "fix": fix,
            "hosts": hosts,
            "why": why,
            "command": shell_command(a.replace("{playbook}", playbook).replace("{hosts}", limit)
                                     if a in ("{playbook}", "{hosts}") else a for a in args),
        })
    return out


def build_report(records, quorum, kind="audit", generated_at=None, inventory_source=None,
                 playbook=SITE_PLAYBOOK, dry_run=None, min_healthy_share=0.0):
    """Whole report (see docs/report-schema.md) from host records.

    ``quorum`` is the object ``plugin_utils.quorum.status()`` computed from the same records.
    """
    floor = healthy_share_floor(min_healthy_share)
    generated_at = generated_at or datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z"
    records = sorted(records, key=lambda r: (r["provider"], r["name"]))
    providers = {}
    managed_by_provider = {}
    for r in records:
        p = providers.setdefault(r["provider"], {"total": 0, "healthy": 0, "rate": 0.0, "hosts": []})
        p["total"] += 1
        p["hosts"].append(r["name"])
        if r["diagnosis"] != UNSUPPORTED_OS:
            managed_by_provider[r["provider"]] = managed_by_provider.get(r["provider"], 0) + 1
        if r["alive"]:
            p["healthy"] += 1
    for name, p in providers.items():
        # Hosts the collection cannot manage cannot be made healthy: not in the rate.
        managed_here = managed_by_provider.get(name, 0)
        p["rate"] = round(p["healthy"] / managed_here, 3) if managed_here else 0.0
    counts = dict((d, 0) for d in DIAGNOSES)
    root_causes = {}
    for r in records:
        counts[r["diagnosis"]] = counts.get(r["diagnosis"], 0) + 1
        if r["diagnosis"] == "healthy":
            continue
        cause = root_causes.setdefault(r["diagnosis"], {
            "count": 0, "hosts": [], "description": _ROOT_CAUSE_TEXT.get(r["diagnosis"], r["diagnosis"]),
        })
        cause["count"] += 1
        cause["hosts"].append(r["name"])
        if r["diagnosis"] == UNSUPPORTED_OS:
            cause.setdefault("reasons", {})[r["name"]] = r.get("unsupported_reason") or "unknown"
        if is_checkout_import(r):
            cause.setdefault("checkout_imports", {}).setdefault(r.get("missing_module") or "?", []).append(r["name"])
        elif r.get("missing_module"):
            cause.setdefault("missing_modules", {}).setdefault(r["missing_module"], []).append(r["name"])
    alive = sum(1 for r in records if r["alive"])
    unsupported = counts.get(UNSUPPORTED_OS, 0)
    managed = len(records) - unsupported
    share = float(alive) / managed if managed else 0.0
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "generated_at": generated_at,
        "inventory_source": inventory_source,
        "summary": {
            "total": len(records),
            "healthy": alive,
            "rate": round(share, 3),
            "crashed_missing_deps": sum(1 for r in records if is_missing_dependency(r)),
            "crashed_checkout_import": sum(1 for r in records if is_checkout_import(r)),
            "not_started": sum(1 for r in records if r["diagnosis"] in ("never_started", "not_listening")),
            "starting": sum(1 for r in records if r["diagnosis"] in WAITING),
            "unreachable": counts.get("unreachable", 0),
            "unsupported_os": unsupported,
            "managed": managed,
            "by_diagnosis": counts,
            "min_healthy_share": floor,
            # 0 is off. Compared with the unrounded share, not the 3-decimal `rate`.
            "healthy_share_ok": floor <= 0 or share >= floor,
        },
        "providers": providers,
        "quorum": quorum,
        "root_causes": root_causes,
        "recommendations": recommend(records, playbook),
        "hosts": records,
    }
    if dry_run is not None:
        report["dry_run"] = dry_run
    return report


# --------------------------------------------------------------------------- Markdown escaping
#
# Every value that did not come from this file (host and provider names, log lines,
# task names, paths) is escaped for where it lands, so no value can end a table row,
# open or close a code block, start a heading, or pass HTML through.

_LINE_BREAKS = frozenset("\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# CommonMark backslash-escapes any ASCII punctuation; these are the ones that can start
# inline markup mid-line (emphasis, code, links, tables, strike-through, math).
_MD_PUNCTUATION = frozenset("\\`*_[]|~$")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _flat(value):
    """``value`` on one line: line breaks and tabs become spaces, other control characters ``\\xNN``."""
    out = []
    for ch in str(value):
        if ch in _LINE_BREAKS:
            out.append(" ")
        elif ord(ch) < 0x20 or 0x7f <= ord(ch) < 0xa0:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def md_text(value):
    """A value in running text or a table cell: one line, Markdown punctuation and HTML escaped."""
    text = _flat(value)
    out = []
    for i, ch in enumerate(text):
        if ch in _HTML:
            out.append(_HTML[ch])
        elif ch == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
            # An underscore between letters or digits never opens or closes emphasis
            # (CommonMark): `never_started` stays readable.
            out.append(ch)
        elif ch in _MD_PUNCTUATION:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def md_code(value, in_table=False):
    """A value as an inline code span: fenced by more backticks than it contains (HTML is inert there)."""
    text = _flat(value)
    run = longest = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`") or not text:
        text = " %s " % text
    if in_table:
        # GFM splits table rows on '|' before it sees code spans.
        text = text.replace("|", "\\|")
    return "%s%s%s" % (fence, text, fence)


def md_fenced(text, indent=""):
    """Lines of a fenced code block whose fence no line of ``text`` can close."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    longest = 0
    for line in lines:
        run = 0
        for ch in line:
            run = run + 1 if ch == "`" else 0
            longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return [indent + fence] + [indent + line for line in lines] + [indent + fence]


def _cell(value):
    if value is None or value == "":
        return "-"
    return md_text(value)


def render_markdown(report):
    """The report a person reads: summary, per-provider tables, quorum, causes, commands."""
    s = report["summary"]
    q = report["quorum"]
    title = "Fleet dry-run report" if report["kind"] == "dry_run" else "Fleet status report"
    lines = [
        "# %s" % title,
        "",
        "Generated %s%s." % (md_text(report["generated_at"]),
                             (" from %s" % md_code(report["inventory_source"])) if report.get("inventory_source") else ""),
        "",
        "## Executive summary",
        "",
    ]
    if not report["hosts"]:
        # A dry run without a node_audit task: no finding, so no health, quorum or cause to claim.
        lines += ["- No node was audited in this run: no health, quorum or root-cause findings.", ""]
        if report.get("dry_run") is not None:
            lines += _render_dry_run(report["dry_run"])
        return "\n".join(lines).rstrip() + "\n"
    lines += [
        "- **%d of %d** P2P nodes healthy (%.0f%%)." % (s["healthy"], s.get("managed", s["total"]), 100.0 * s["rate"]),
        "- %d crashed on missing Python dependencies; %d never started or not listening; %d unreachable."
        % (s["crashed_missing_deps"], s["not_started"], s["unreachable"]),
    ]
    if s.get("unsupported_os"):
        lines.append("- %d on an operating system the collection cannot manage (not Linux, such as macOS): left out of "
                     "the converge and of the count above." % s["unsupported_os"])
    if s.get("crashed_checkout_import"):
        lines.append("- %d crashed importing their own checkout (working directory or PYTHONPATH wrong, not a "
                     "missing dependency)." % s["crashed_checkout_import"])
    if s.get("starting"):
        lines.append("- %d starting (within their start grace period, not listening yet): wait and audit again; "
                     "not a fault." % s["starting"])
    if s.get("min_healthy_share"):
        lines.append("- Healthy share floor %.0f%%: **%s**." % (100.0 * s["min_healthy_share"],
                                                                "met" if s["healthy_share_ok"] else "NOT MET"))
    lines += [
        "- Voter quorum: **%s** (%d of %d voters alive, %d required)."
        % ("met" if q["ok"] else "LOST", len(q["healthy_voters"]), len(q["voters"]), q["required"])
        if q["voters"] or q["required"] else "- Voter quorum: no voters declared (`p2p_voters` is empty).",
        "",
    ]
    if report.get("dry_run") is not None:
        lines += _render_dry_run(report["dry_run"])
    by_provider = {}
    for r in report["hosts"]:
        by_provider.setdefault(r["provider"], []).append(r)
    for provider in sorted(by_provider):
        p = report["providers"][provider]
        lines += [
            "## %s: %d of %d healthy (%.0f%%)" % (md_text(provider), p["healthy"], p["total"], 100.0 * p["rate"]),
            "",
            "| node | GPU | daemon running | port %s | last error | last converge | status |" % _cell(by_provider[provider][0]["port"]),
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in by_provider[provider]:
            # Without an audit finding (SSH or the module failed) nothing is known about the daemon.
            seen = r["reachable"] and r["diagnosis"] != "unreachable"
            if r["alive"]:
                running = "yes (pid %s)" % _cell(r["pid"]) if r.get("pid") else "yes"
            elif r["diagnosis"] in WAITING:
                running = "starting"
            else:
                running = "no" if seen else "?"
            port = "listening" if r["listening"] else ("free" if seen else "?")
            # No stamp on a node the audit reached: site.yml never converged it (nor ever will, unsupported).
            converged = r.get("last_converged_at") or ("never" if seen else "?")
            if r["diagnosis"] == UNSUPPORTED_OS:
                running, port, converged = "not managed", "?", "not managed"
            lines.append("| %s%s | %s | %s | %s | %s | %s | %s |" % (
                _cell(r["name"]), " (voter)" if r["voter"] else "", _cell(r.get("gpu") or r.get("gpu_expected")),
                running, port, _cell(r.get("last_error")), _cell(converged), _status_cell(r)))
        lines.append("")
    lines += [
        "## Voter quorum",
        "",
        "| voter | status |",
        "| --- | --- |",
    ]
    by_name = dict((r["name"], r) for r in report["hosts"])
    for v in q["voters"]:
        r = by_name.get(v)
        lines.append("| %s | %s |" % (_cell(v), _status_cell(r) if r else "not audited"))
    lines += [
        "",
        "%d of %d alive, %d required: quorum %s%s." % (
            len(q["healthy_voters"]), len(q["voters"]), q["required"], "met" if q["ok"] else "**LOST**",
            "" if not q["ok"] or not q["at_risk"] else ", **one more loss breaks it**"),
    ]
    if q.get("duplicate_voters"):
        lines.append("`p2p_voters` lists %s more than once; each counts once."
                     % ", ".join(md_text(v) for v in q["duplicate_voters"]))
    lines += [
        "",
        "## Root causes",
        "",
    ]
    if not report["root_causes"]:
        lines.append("None: every node is healthy.")
    known = [d for d in DIAGNOSES if d in report["root_causes"]]
    # A diagnosis this code does not know yet still shows, after the known ones.
    for diag in known + sorted(d for d in report["root_causes"] if d not in DIAGNOSES):
        cause = report["root_causes"][diag]
        lines.append("- **%s** (%d): %s. Nodes: %s." % (
            md_text(diag), cause["count"], md_text(cause["description"]), ", ".join(md_text(h) for h in cause["hosts"])))
        for module, hosts in sorted(cause.get("missing_modules", {}).items()):
            lines.append("  - %s on %s" % (md_code("ModuleNotFoundError: No module named '%s'" % module),
                                           ", ".join(md_text(h) for h in hosts)))
        for host in cause["hosts"] if "reasons" in cause else ():
            lines.append("  - %s: %s" % (md_text(host), md_text(cause["reasons"].get(host) or "unknown")))
        for module, hosts in sorted(cause.get("checkout_imports", {}).items()):
            lines.append("  - %s on %s: %s is part of the daemon's own checkout, so the daemon runs with the wrong "
                         "working directory or PYTHONPATH (not a missing dependency)"
                         % (md_code("ModuleNotFoundError: No module named '%s'" % module),
                            ", ".join(md_text(h) for h in hosts), md_code(module)))
    lines += ["", "## Recommended commands", ""]
    if not report["recommendations"]:
        lines.append("Nothing to fix.")
    for rec in report["recommendations"]:
        lines += ["- %s:" % md_text(rec["why"]), ""] + md_fenced(rec["command"], indent="  ") + [""]
    return "\n".join(lines).rstrip() + "\n"


def _status_cell(r):
    d = r["diagnosis"]
    if is_checkout_import(r):
        return "crashed (checkout module %s not importable: PYTHONPATH)" % md_code(r.get("missing_module") or "?", in_table=True)
    if d == "crashed" and r.get("missing_module"):
        return "crashed (missing %s)" % md_code(r["missing_module"], in_table=True)
    return {"healthy": "healthy", "busy": "busy (alive)", "starting": "starting (wait)",
            UNSUPPORTED_OS: "unsupported OS (not managed)"}.get(d, "**%s**" % _cell(d))


def _render_dry_run(dry_run):
    lines = ["## Would change (check mode: nothing was changed)", ""]
    hosts = dry_run.get("hosts") or {}
    if not hosts:
        lines += ["No task would change anything.", ""]
        return lines
    lines += ["| node | stage | task | why |", "| --- | --- | --- | --- |"]
    for host in sorted(hosts):
        for change in hosts[host]:
            cells = (host, change.get("stage"), change.get("task"), change.get("why"))
            lines.append("| %s |" % " | ".join(_cell(c) for c in cells))
    lines.append("")
    return lines


# --------------------------------------------------------------------------- JUnit XML

# XML 1.0 cannot carry most control characters at all, not even as references.
def _xml_text(value):
    out = []
    for ch in "" if value is None else str(value):
        code = ord(ch)
        if ch in "\t\n\r" or 0x20 <= code <= 0xd7ff or 0xe000 <= code <= 0xfffd or 0x10000 <= code <= 0x10ffff:
            out.append(ch)
        else:
            out.append("\\x%02x" % code if code < 0x100 else "\\u%04x" % code)
    return "".join(out)


def _junit_detail(record, fix_by_host):
    lines = ["diagnosis: %s" % record["diagnosis"],
             "cause: %s" % _ROOT_CAUSE_TEXT.get(record["diagnosis"], record["diagnosis"])]
    for key in ("last_error", "unsupported_reason", "missing_module", "error_kind", "service_manager", "service_state",
                "gpu_diagnosis"):
        if record.get(key):
            lines.append("%s: %s" % (key, record[key]))
    fix = fix_by_host.get(record["name"])
    if fix:
        lines.append("fix: %s" % fix)
    return "\n".join(lines)


def render_junit(report):
    """JUnit XML: one test suite per provider, one test case per node.

    Alive nodes pass; ``starting`` (not decided yet) and ``unsupported_os`` (nothing the
    collection can decide) are skipped; every other
    diagnosis is a failure whose ``type`` is the diagnosis and whose ``message``
    is the last error or the cause.
    """
    timestamp = report["generated_at"].rstrip("Z")
    fix_by_host = {}
    for rec in report["recommendations"]:
        for host in rec["hosts"]:
            fix_by_host[host] = rec["command"]
    by_provider = {}
    for r in report["hosts"]:
        by_provider.setdefault(r["provider"], []).append(r)
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    root = ET.Element("testsuites", name="ringrift.cluster fleet %s" % report["kind"])
    for provider in sorted(by_provider):
        suite = ET.SubElement(root, "testsuite", name=_xml_text(provider), timestamp=timestamp, time="0")
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for r in by_provider[provider]:
            case = ET.SubElement(suite, "testcase", classname=_xml_text("fleet.%s" % provider), name=_xml_text(r["name"]),
                                 time="0")
            counts["tests"] += 1
            if r["alive"]:
                continue
            message = r.get("last_error") or r.get("unsupported_reason") or _ROOT_CAUSE_TEXT.get(r["diagnosis"], r["diagnosis"])
            if r["diagnosis"] in WAITING or r["diagnosis"] == UNSUPPORTED_OS:
                counts["skipped"] += 1
                child = ET.SubElement(case, "skipped", message=_xml_text("%s: %s" % (r["diagnosis"], message)))
            else:
                counts["failures"] += 1
                child = ET.SubElement(case, "failure", type=_xml_text(r["diagnosis"]),
                                      message=_xml_text("%s: %s" % (r["diagnosis"], message)))
            child.text = _xml_text(_junit_detail(r, fix_by_host))
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("errors", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    root.set("time", "0")
    if hasattr(ET, "indent"):
        ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------- Prometheus metrics

def _prom_label(value):
    # Text exposition format: backslash, double quote and line feed are escaped in label values.
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _prom_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def render_prometheus(report):
    """Prometheus text exposition format (for node_exporter's textfile collector): gauges, no timestamps."""
    s, q = report["summary"], report["quorum"]
    generated = calendar.timegm(time.strptime(report["generated_at"], "%Y-%m-%dT%H:%M:%SZ"))
    diagnoses = list(DIAGNOSES) + sorted(d for d in s["by_diagnosis"] if d not in DIAGNOSES)
    families = [
        ("ringrift_fleet_report_timestamp_seconds", "When the fleet report was generated (Unix time).",
         [({}, generated)]),
        ("ringrift_fleet_nodes", "Nodes in the report, per provider.",
         [({"provider": p}, report["providers"][p]["total"]) for p in sorted(report["providers"])]),
        ("ringrift_fleet_healthy_nodes", "Nodes whose daemon is alive (healthy or busy), per provider.",
         [({"provider": p}, report["providers"][p]["healthy"]) for p in sorted(report["providers"])]),
        ("ringrift_fleet_diagnosis_nodes", "Nodes per diagnosis (every diagnosis, zeros included).",
         [({"diagnosis": d}, s["by_diagnosis"].get(d, 0)) for d in diagnoses]),
        ("ringrift_fleet_healthy_share", "Share of nodes whose daemon is alive (0 to 1, 3 decimals).",
         [({}, float(s["rate"]))]),
        ("ringrift_fleet_healthy_share_floor", "Configured floor for the healthy share (0: off).",
         [({}, float(s.get("min_healthy_share") or 0.0))]),
        ("ringrift_fleet_voters", "Distinct P2P voters declared.", [({}, len(q["voters"]))]),
        ("ringrift_fleet_voters_alive", "P2P voters whose daemon is alive.", [({}, len(q["healthy_voters"]))]),
        ("ringrift_fleet_quorum_required", "P2P voters that must be alive for leader election.", [({}, q["required"])]),
        ("ringrift_fleet_quorum_ok", "1 when enough voters are alive for leader election, else 0.", [({}, bool(q["ok"]))]),
    ]
    lines = []
    for name, help_text, samples in families:
        lines.append("# HELP %s %s" % (name, help_text.replace("\\", "\\\\").replace("\n", "\\n")))
        lines.append("# TYPE %s gauge" % name)
        for labels, value in samples:
            label_text = ",".join('%s="%s"' % (k, _prom_label(v)) for k, v in sorted(labels.items()))
            lines.append("%s%s %s" % (name, "{%s}" % label_text if label_text else "", _prom_value(value)))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- files

def _atomic_write(path, text):
    # A scraper (textfile collector, CI) never reads a half-written file.
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        # mkstemp creates 0600; give the file the mode open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_report(report, directory, prefix=None, extra_formats=()):
    """Write ``<prefix>-<UTC timestamp>.json`` and ``.md`` (and the extra formats); return their paths.

    ``extra_formats``: ``junit`` writes ``<prefix>-<stamp>.junit.xml``; ``prometheus`` writes
    ``<prefix>.prom``, one stable name replaced on every run, as the textfile collector
    reads every ``*.prom`` of its directory (timestamped files would repeat each series).
    Returns ``{"json_path", "md_path"[, "junit_path"][, "metrics_path"]}``.
    """
    unknown = [f for f in extra_formats if f not in EXTRA_FORMATS]
    if unknown:
        raise ValueError("unknown report format(s) %s (known: %s)" % (", ".join(map(str, unknown)), ", ".join(EXTRA_FORMATS)))
    # Render everything before writing anything: no half-written set of files.
    contents = {"md_path": render_markdown(report)}
    if "junit" in extra_formats:
        contents["junit_path"] = render_junit(report)
    if "prometheus" in extra_formats:
        contents["metrics_path"] = render_prometheus(report)
    if not os.path.isdir(directory):
        os.makedirs(directory)
    stamp = report["generated_at"].replace("-", "").replace(":", "")
    prefix = prefix or ("dry-run" if report["kind"] == "dry_run" else "fleet-audit")
    base = os.path.join(directory, "%s-%s" % (prefix, stamp))
    paths = {"json_path": base + ".json", "md_path": base + ".md", "junit_path": base + ".junit.xml",
             "metrics_path": os.path.join(directory, "%s.prom" % prefix)}
    _atomic_write(paths["json_path"], json.dumps(report, indent=2, sort_keys=True) + "\n")
    for key in ("md_path", "junit_path", "metrics_path"):
        if key in contents:
            _atomic_write(paths[key], contents[key])
    return dict((k, v) for k, v in paths.items() if k == "json_path" or k in contents)
