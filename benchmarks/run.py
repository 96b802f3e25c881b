#!/usr/bin/env python3
"""Fleet-scale benchmarks on the simulated fleet (`make bench`).

Every figure is a ratio to a baseline measured side by side in the same run,
interleaved, several repetitions, median reported:

- audit_vs_ping:  playbooks/audit.yml on N nodes / `ansible all -m ping` on the same nodes
- rerun_vs_ping:  a second playbooks/site.yml on the already healthy fleet (must be changed=0) / ping;
                  every node takes the fast path (its converge stamp still holds)
- full_rerun_vs_ping: the same with -e site_fast_path=false (every role on every node) / ping,
                  for scale: what the fast path saves
- inventory_vs_yaml: benchmarks/inventory_bench.py (10,000 hosts, plugin / builtin yaml plugin)

for each fleet size (default 5 and 26 nodes). Results go to benchmarks/results.json.

The nodes are reached the way operators reach the fleet (--transport ssh, the default):
over SSH through the inventory plugin's connection variables, Vast nodes behind one
gateway address, Nebius nodes through a jump host as `ubuntu` with sudo (tools/demo.py).
--transport docker reaches them with `docker exec` as root, for comparison.

    .venv/bin/python benchmarks/run.py [--sizes 5,26] [--repeat 3] [--forks 30] [--transport ssh|docker]
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))

import demo  # noqa: E402  pylint: disable=wrong-import-position

BIN = os.path.join(REPO, ".venv", "bin")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
UNCHANGED = re.compile(r"targeted hosts converged \((\d+) unchanged since their last converge")


def timed(cmd, forks):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORKS=str(forks),
               RINGRIFT_REPORT_DIR=os.path.join(demo.WORK, "reports"),
               # The profile_tasks callback prints per-task timings; keep output equal for both sides.
               ANSIBLE_CALLBACKS_ENABLED="ringrift.cluster.dry_run_report")
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        raise SystemExit("benchmark command failed (rc=%d): %s" % (proc.returncode, " ".join(cmd)))
    return took, proc.stdout


def healthy_fleet(size, transport):
    """Start `size` nodes and converge them all: the state both measured runs start from."""
    demo.down(quiet=True)
    nodes, voters = demo.plan(size)
    source = demo.write_fleet_files(nodes, voters, transport=transport)
    demo.start_containers(nodes)
    proc, took = demo.playbook(source, "site.yml")
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-6000:])
        raise SystemExit("initial converge of %d nodes failed" % size)
    demo.log("converged %d nodes in %.0f s" % (size, took))
    return source, took


def measure(size, repeat, forks, transport):
    source, converge_seconds = healthy_fleet(size, transport)
    ping = [BIN + "/ansible", "-i", source, "all", "-m", "ansible.builtin.ping"]
    audit = [BIN + "/ansible-playbook", "-i", source, os.path.join(REPO, "playbooks", "audit.yml")]
    rerun = [BIN + "/ansible-playbook", "-i", source, os.path.join(REPO, "playbooks", "site.yml")]
    full_rerun = rerun + ["-e", "site_fast_path=false"]
    samples = {"ping": [], "audit": [], "rerun": [], "full_rerun": []}
    changed = {"rerun": [], "full_rerun": []}
    fast_path_nodes = []
    for _ in range(repeat):
        # Interleaved so that a slow moment of the machine hits all of them alike.
        samples["ping"].append(timed(ping, forks)[0])
        samples["audit"].append(timed(audit, forks)[0])
        for name, cmd in (("rerun", rerun), ("full_rerun", full_rerun)):
            took, out = timed(cmd, forks)
            samples[name].append(took)
            changed[name].append(sum(int(m.group(3)) for m in RECAP.finditer(out)))
            if name == "rerun":
                match = UNCHANGED.search(out)
                fast_path_nodes.append(int(match.group(1)) if match else 0)
    med = dict((k, statistics.median(v)) for k, v in samples.items())
    result = {
        "nodes": size,
        "transport": transport,
        "forks": forks,
        "repeat": repeat,
        "initial_converge_seconds": round(converge_seconds, 2),
        "seconds": dict((k, [round(x, 3) for x in v]) for k, v in samples.items()),
        "median_seconds": dict((k, round(v, 3)) for k, v in med.items()),
        "audit_vs_ping": round(med["audit"] / med["ping"], 2),
        "rerun_vs_ping": round(med["rerun"] / med["ping"], 2),
        "full_rerun_vs_ping": round(med["full_rerun"] / med["ping"], 2),
        "rerun_changed": changed["rerun"],
        "full_rerun_changed": changed["full_rerun"],
        "rerun_fast_path_nodes": fast_path_nodes,
    }
    demo.log("%d nodes: ping %.1fs, audit %.1fs (x%.2f), rerun %.1fs (x%.2f, %s on the fast path), "
             "full rerun %.1fs (x%.2f), changed=%s/%s" % (
                 size, med["ping"], med["audit"], result["audit_vs_ping"], med["rerun"], result["rerun_vs_ping"],
                 fast_path_nodes, med["full_rerun"], result["full_rerun_vs_ping"], changed["rerun"], changed["full_rerun"]))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="5,26")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--forks", type=int, default=30)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results.json"))
    parser.add_argument("--transport", choices=demo.TRANSPORTS, default="ssh",
                        help="ssh: as the fleet file says (default); docker: docker exec as root")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    fleets = []
    try:
        for size in sizes:
            fleets.append(measure(size, args.repeat, args.forks, args.transport))
    finally:
        demo.down(quiet=True)
    inv_out = os.path.join(REPO, "build", "inventory-bench.json")
    subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "inventory_bench.py"), "--output", inv_out],
                   cwd=REPO, check=False)  # exits 1 above its target: still record the ratio
    with open(inv_out) as f:
        inventory = json.load(f)
    largest = fleets[-1]
    results = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "node_counts": sizes,
        "transport": args.transport,
        "audit_vs_ping": largest["audit_vs_ping"],
        "rerun_vs_ping": largest["rerun_vs_ping"],
        "full_rerun_vs_ping": largest["full_rerun_vs_ping"],
        "inventory_vs_yaml": inventory.get("ratio"),
        "fleets": fleets,
        "inventory": inventory,
        "targets": {"audit_vs_ping": 2.0, "rerun_vs_ping": 6.0, "inventory_vs_yaml": 1.5},
    }
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print("\ntransport: %s" % args.transport)
    print("nodes  ping(s)  audit(s)  audit/ping  rerun(s)  rerun/ping  full rerun(s)  full/ping  changed (rerun/full)")
    for fl in fleets:
        m = fl["median_seconds"]
        print("%5d  %7.1f  %8.1f  %10.2f  %8.1f  %10.2f  %13.1f  %9.2f  %s/%s" % (
            fl["nodes"], m["ping"], m["audit"], fl["audit_vs_ping"], m["rerun"], fl["rerun_vs_ping"],
            m["full_rerun"], fl["full_rerun_vs_ping"], fl["rerun_changed"], fl["full_rerun_changed"]))
    print("inventory (10,000 hosts) plugin/yaml: %s" % results["inventory_vs_yaml"])
    print("written to %s" % args.output)


if __name__ == "__main__":
    main()
