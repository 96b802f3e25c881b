# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet report: per-host audit records -> aggregates, quorum, root causes, Markdown.

Pure functions (no I/O besides ``write_report``), shared by the
``ringrift.cluster.fleet_report`` action plugin, the ``dry_run_report`` callback
and the quorum guard filter. The JSON schema is documented in
``docs/report-schema.md``; ``SCHEMA_VERSION`` changes when it does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_proc

SCHEMA_VERSION = 1

# Every diagnosis a host record may carry: the listener's own, plus the one only
# the controller can make (the node did not answer at all).
DIAGNOSES = p2p_proc.DIAGNOSES + ("unreachable",)

# The daemon answers in both: `busy` is the real daemon's `healthy: false`
# ("too busy for new jobs"), which is alive and counts for quorum.
ALIVE = frozenset(p2p_proc.ALIVE_DIAGNOSES)

_ROOT_CAUSE_TEXT = {
    "crashed": "Daemon crash-loops (last error in its log)",
    "never_started": "Daemon never started (no unit, no log)",
    "not_listening": "Nothing listens on the P2P port",
    "wrong_owner": "Another program holds the P2P port",
    "unmanaged": "A stray copy started by hand holds the port; the managed one cannot bind",
    "owner_unknown": "A socket listens but its owner cannot be seen (run with become)",
    "health_failed": "Port is held by the daemon but /health does not answer 2xx",
    "unreachable": "Node unreachable over SSH",
    "busy": "Alive but reports itself too busy for new jobs (disk, memory or load)",
}


def quorum_required(voter_count, explicit=None):
    """Voters that must be alive: ``explicit`` when given, else a strict majority."""
    if explicit is not None and str(explicit) != "":
        required = int(explicit)
        if required < 1:
            raise ValueError("quorum size must be at least 1, got %d" % required)
        return required
    # No voters declared: nothing to elect, nothing required.
    return voter_count // 2 + 1 if voter_count else 0


def quorum_status(records, voters, explicit=None):
    """Quorum object of the report from host records and the ``p2p_voters`` list."""
    by_name = dict((r["name"], r) for r in records)
    required = quorum_required(len(voters), explicit)
    healthy = [v for v in voters if by_name.get(v, {}).get("diagnosis") in ALIVE]
    down = [v for v in voters if v not in healthy]
    margin = len(healthy) - required
    return {
        "voters": list(voters),
        "healthy_voters": healthy,
        "down_voters": down,
        "not_audited": [v for v in voters if v not in by_name],
        "required": required,
        "ok": margin >= 0,
        # One more voter lost breaks leader election (nothing to break when none is required).
        "at_risk": margin < 1 and required > 0,
        "margin": margin,
    }


def quorum_decision(voter, alive_by_voter, voters, explicit=None):
    """May ``voter`` be restarted now without breaking quorum?

    ``alive_by_voter`` maps voter names to whether their daemon is alive right
    now. A voter that is itself down costs nothing to restart. A live one may
    only go down when the *other* live voters are still a quorum without it.
    Returns ``{"allowed": bool, "reason": str, "others_alive": int, "required": int}``.
    """
    required = quorum_required(len(voters), explicit)
    others = [v for v in voters if v != voter and alive_by_voter.get(v)]
    if voter not in voters:
        return {"allowed": True, "reason": "%s is not a voter" % voter, "others_alive": len(others), "required": required}
    if not alive_by_voter.get(voter):
        return {
            "allowed": True,
            "reason": "%s is down already: restarting it cannot lower the quorum" % voter,
            "others_alive": len(others),
            "required": required,
        }
    if len(others) >= required:
        return {
            "allowed": True,
            "reason": "%d other voters alive (%s), %d required" % (len(others), ", ".join(others), required),
            "others_alive": len(others),
            "required": required,
        }
    return {
        "allowed": False,
        "reason": "restarting %s would leave %d live voters of %d (%d required for quorum); skipped"
        % (voter, len(others), len(voters), required),
        "others_alive": len(others),
        "required": required,
    }


def host_record(name, facts, result):
    """One host's record from its inventory facts and its ``node_audit`` result.

    ``facts`` carries the inventory's ``ringrift_*`` variables (provider, voter,
    GPU); ``result`` is the registered ``node_audit`` result, or an unreachable
    or failed task result, or None when the host produced nothing.
    """
    result = result or {}
    reachable = not result.get("unreachable") and bool(result)
    module_failed = reachable and result.get("failed") and not result.get("diagnosis")
    if module_failed:
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
    record = {
        "name": name,
        "provider": facts.get("ringrift_provider") or "unknown",
        "voter": bool(facts.get("ringrift_is_voter")),
        "reachable": reachable,
        "diagnosis": diagnosis,
        "alive": diagnosis in ALIVE,
        "missing_module": result.get("missing_module"),
        "last_error": result.get("last_error") or (
            _one_line(result.get("msg")) if module_failed or not reachable else None),
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
    }
    return record


def _one_line(text, limit=200):
    if not text:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def recommend(records, playbook="playbooks/site.yml"):
    """Recommended commands for what is broken, one per fix, grouped by hosts."""
    groups = {}

    def add(key, host, command, why):
        entry = groups.setdefault(key, {"command": command, "why": why, "hosts": []})
        entry["hosts"].append(host)

    for r in records:
        d = r["diagnosis"]
        name = r["name"]
        if d == "crashed" and r.get("missing_module"):
            add("deps", name, "ansible-playbook %s --tags deps --limit {hosts}" % playbook,
                "crash-loops on a missing Python module; --tags deps installs it and proves the import")
        elif d in ("never_started", "not_listening", "crashed"):
            add("converge", name, "ansible-playbook %s --limit {hosts}" % playbook,
                "daemon not running under a supervisor; a full converge installs deps, settings and the unit")
        elif d == "unmanaged":
            add("service", name, "ansible-playbook %s --tags service,verify --limit {hosts}" % playbook,
                "a stray copy holds the port; the service stage stops it and lets the managed unit bind")
        elif d == "health_failed":
            add("verify", name, "ansible-playbook %s --tags service,verify --limit {hosts}" % playbook,
                "the daemon holds the port but /health fails; restart through the unit and read its log")
        elif d == "wrong_owner":
            add("wrong_owner", name, "ssh {hosts} 'ls -l /proc/<pid>/exe' && free the port or set p2p_port",
                "another program holds the P2P port; the playbook will not kill what it does not own")
        elif d == "owner_unknown":
            add("become", name, "ansible-playbook playbooks/audit.yml --become --limit {hosts}",
                "the socket's owner is invisible without root")
        elif d == "unreachable":
            add("unreachable", name, "ansible {hosts} -m ansible.builtin.ping",
                "SSH failed: check the instance in the provider's console (stopped, reclaimed or new port)")
    out = []
    for key in ("deps", "converge", "service", "verify", "wrong_owner", "become", "unreachable"):
        if key in groups:
            entry = groups[key]
            hosts = ",".join(entry["hosts"])
            out.append({
                "fix": key,
                "hosts": entry["hosts"],
                "why": entry["why"],
                "command": entry["command"].replace("{hosts}", hosts),
            })
    return out


def build_report(records, voters, kind="audit", quorum_size=None, generated_at=None,
                 inventory_source=None, playbook="playbooks/site.yml", dry_run=None):
    """Whole report (see docs/report-schema.md) from host records."""
    generated_at = generated_at or datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z"
    records = sorted(records, key=lambda r: (r["provider"], r["name"]))
    providers = {}
    for r in records:
        p = providers.setdefault(r["provider"], {"total": 0, "healthy": 0, "rate": 0.0, "hosts": []})
        p["total"] += 1
        p["hosts"].append(r["name"])
        if r["alive"]:
            p["healthy"] += 1
    for p in providers.values():
        p["rate"] = round(p["healthy"] / p["total"], 3) if p["total"] else 0.0
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
        if r.get("missing_module"):
            cause.setdefault("missing_modules", {}).setdefault(r["missing_module"], []).append(r["name"])
    alive = sum(1 for r in records if r["alive"])
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "generated_at": generated_at,
        "inventory_source": inventory_source,
        "summary": {
            "total": len(records),
            "healthy": alive,
            "rate": round(alive / len(records), 3) if records else 0.0,
            "crashed_missing_deps": sum(1 for r in records if r["diagnosis"] == "crashed" and r.get("missing_module")),
            "not_started": sum(1 for r in records if r["diagnosis"] in ("never_started", "not_listening")),
            "unreachable": counts.get("unreachable", 0),
            "by_diagnosis": counts,
        },
        "providers": providers,
        "quorum": quorum_status(records, voters, quorum_size),
        "root_causes": root_causes,
        "recommendations": recommend(records, playbook),
        "hosts": records,
    }
    if dry_run is not None:
        report["dry_run"] = dry_run
    return report


def _cell(value):
    if value is None or value == "":
        return "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report):
    """The report a person reads: summary, per-provider tables, quorum, causes, commands."""
    s = report["summary"]
    q = report["quorum"]
    title = "Fleet dry-run report" if report["kind"] == "dry_run" else "Fleet status report"
    lines = [
        "# %s" % title,
        "",
        "Generated %s%s." % (report["generated_at"],
                             (" from `%s`" % report["inventory_source"]) if report.get("inventory_source") else ""),
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
        "- **%d of %d** P2P nodes healthy (%.0f%%)." % (s["healthy"], s["total"], 100.0 * s["rate"]),
        "- %d crashed on missing Python dependencies; %d never started or not listening; %d unreachable."
        % (s["crashed_missing_deps"], s["not_started"], s["unreachable"]),
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
            "## %s: %d of %d healthy (%.0f%%)" % (provider, p["healthy"], p["total"], 100.0 * p["rate"]),
            "",
            "| node | GPU | daemon running | port %s | last error | last converge | status |" % _cell(by_provider[provider][0]["port"]),
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in by_provider[provider]:
            # Without an audit finding (SSH or the module failed) nothing is known about the daemon.
            seen = r["reachable"] and r["diagnosis"] != "unreachable"
            if r["alive"]:
                running = "yes (pid %s)" % r["pid"] if r.get("pid") else "yes"
            else:
                running = "no" if seen else "?"
            port = "listening" if r["listening"] else ("free" if seen else "?")
            # No stamp on a node the audit reached: site.yml never converged it.
            converged = r.get("last_converged_at") or ("never" if seen else "?")
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
        "",
        "## Root causes",
        "",
    ]
    if not report["root_causes"]:
        lines.append("None: every node is healthy.")
    for diag in DIAGNOSES:
        cause = report["root_causes"].get(diag)
        if not cause:
            continue
        lines.append("- **%s** (%d): %s. Nodes: %s." % (diag, cause["count"], cause["description"], ", ".join(cause["hosts"])))
        for module, hosts in sorted(cause.get("missing_modules", {}).items()):
            lines.append("  - `ModuleNotFoundError: No module named '%s'` on %s" % (module, ", ".join(hosts)))
    lines += ["", "## Recommended commands", ""]
    if not report["recommendations"]:
        lines.append("Nothing to fix.")
    for rec in report["recommendations"]:
        lines += ["- %s:" % rec["why"], "", "  ```", "  %s" % rec["command"], "  ```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _status_cell(r):
    d = r["diagnosis"]
    if d == "crashed" and r.get("missing_module"):
        return "crashed (missing `%s`)" % r["missing_module"]
    return {"healthy": "healthy", "busy": "busy (alive)"}.get(d, "**%s**" % d)


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


def write_report(report, directory, prefix=None):
    """Write ``<prefix>-<UTC timestamp>.json`` and ``.md``; return both paths."""
    if not os.path.isdir(directory):
        os.makedirs(directory)
    stamp = report["generated_at"].replace("-", "").replace(":", "")
    prefix = prefix or ("dry-run" if report["kind"] == "dry_run" else "fleet-audit")
    base = os.path.join(directory, "%s-%s" % (prefix, stamp))
    json_path, md_path = base + ".json", base + ".md"
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(md_path, "w") as f:
        f.write(render_markdown(report))
    return json_path, md_path
