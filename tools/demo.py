#!/usr/bin/env python3
"""The main job on a laptop: a simulated fleet that reproduces the outage and repairs it.

    tools/demo.py up [N] [--daemon real] [--transport docker]   start N containers shaped like the real fleet, seed
                           the audit's faults, audit, repair with site.yml, audit again, print a summary
    tools/demo.py fleet N [--daemon real]  start N healthy-to-be nodes, write the fleet files, nothing else
    tools/demo.py down     remove every container and file the demo created

--daemon real puts the real RingRift daemon on the nodes (RINGRIFT_AI_SERVICE: a directory,
an ai-service-*.tar.xz archive or a git URL; default: the archive in ../shared/ringrift-daemon);
the default is the stand-in in tests/fixtures/ai-service, which fails where the real one fails.

Vast/RunPod nodes run the `container` image (no systemd, no sudo), Nebius/Vultr/Hetzner
nodes the `vm` image (systemd PID 1). The fleet is described by a generated
distributed_hosts.yaml in the real format and read through the collection's own
inventory plugin, and Ansible reaches the nodes the way the real fleet is reached
(--transport ssh, the default), with the connection variables the plugin derives:

  Vast      behind one gateway address (127.0.0.1) on a port each, root
  RunPod    its own published port on 127.0.0.1, root
  Hetzner   its own published port, root; the first one is the fleet's jump host
  Nebius    only through the jump host (ssh_proxy: <first Hetzner>), as `ubuntu` with sudo
  Vultr     its own published port, as `ubuntu` with sudo

Each node makes its own host keys at boot; the demo makes a client key per run
(build/demo/ssh/id_cluster) and a known-hosts file of its own (trust on first use).
--transport docker reaches every node with `docker exec` as root instead (faster,
for checks that are not about transport). Addresses other than loopback and the
demo's own containers are documentation placeholders and never contacted.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, "build", "demo")
LABEL = "ringrift.demo=1"
PREFIX = "rr-"
NETWORK = "ringrift-demo"
CHECKOUT_FIXTURE = os.path.join(REPO, "tests", "fixtures", "ai-service")
SHARED_DAEMON = os.path.join(os.path.dirname(REPO), "shared", "ringrift-daemon")
REAL_DAEMON_CACHE = os.path.join(REPO, "build", "real-daemon")
NVIDIA_SMI_DOUBLE = os.path.join(REPO, "tests", "fixtures", "nvidia-smi", "nvidia-smi")
SSH_DIR = os.path.join(WORK, "ssh")
SSH_KEY = os.path.join(SSH_DIR, "id_cluster")
KNOWN_HOSTS = os.path.join(SSH_DIR, "known_hosts")
# Published SSH ports on loopback: 127.0.0.1:<SSH_PORT_BASE + index> -> node:22.
SSH_PORT_BASE = 22000
# Cloud VM images log in as `ubuntu` with passwordless sudo; Vast/RunPod containers and Hetzner as root.
SUDO_PROVIDERS = ("nebius", "vultr")
TRANSPORTS = ("ssh", "docker")

# (name, provider, gpu) in the order nodes are added; shapes follow the real file, with
# GPU models the nvidia-smi test double can print.
_SHAPES = [
    ("nebius-backbone-1", "nebius", "L40S"),
    ("hetzner-cpu1", "hetzner", None),
    ("vast-29129529", "vast", "8x RTX 4090"),
    ("vast-29128352", "vast", "2x RTX 5090"),
    ("runpod-a100-1", "runpod", "A100 SXM"),
    ("vast-28918742", "vast", "A40"),
    ("vast-28925166", "vast", "RTX 4090"),
    ("runpod-h100", "runpod", "H100 PCIe"),
    ("nebius-h100-3", "nebius", "H100 SXM"),
    ("vultr-a100-20gb", "vultr", "A100D-20C (vGPU)"),
    ("hetzner-cpu2", "hetzner", None),
    ("vast-29031187", "vast", "4x RTX A6000"),
    ("vast-29044410", "vast", "RTX 4090"),
    ("runpod-a100-2", "runpod", "A100 SXM"),
    ("nebius-h100-4", "nebius", "H100 SXM"),
    ("vast-29050023", "vast", "2x RTX 4090"),
    ("vultr-a100-40gb", "vultr", "A100D-20C (vGPU)"),
    ("hetzner-cpu3", "hetzner", None),
    ("vast-29061356", "vast", "8x RTX 4090"),
    ("runpod-l40s-1", "runpod", "L40S"),
    ("vast-29077898", "vast", "A40"),
    ("nebius-l40s-2", "nebius", "L40S"),
    ("vast-29080412", "vast", "RTX 5090"),
    ("vultr-l40s-1", "vultr", "L40S"),
    ("vast-29093371", "vast", "4x RTX 4090"),
    ("hetzner-cpu4", "hetzner", None),
]
CONTAINER_PROVIDERS = ("vast", "runpod")


def log(msg):
    print("[demo] %s" % msg, flush=True)


def run(cmd, check=True, capture=False, env=None, **kw):
    full_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.STDOUT if capture else None, **kw)
    if check and proc.returncode != 0:
        if capture:
            sys.stdout.write(proc.stdout or "")
        raise SystemExit("[demo] command failed (rc=%d): %s" % (proc.returncode, " ".join(cmd)))
    return proc


def real_daemon_source():
    """Where the real daemon comes from: RINGRIFT_AI_SERVICE, else the shared archive; None when neither is there."""
    source = os.environ.get("RINGRIFT_AI_SERVICE", "").strip()
    if source:
        return source
    archives = sorted(glob.glob(os.path.join(SHARED_DAEMON, "ai-service-*.tar.xz")))
    return archives[-1] if archives else None


def real_daemon_tree(source=None):
    """An unpacked real ai-service directory (third-party test material, kept under build/, never committed)."""
    source = source or real_daemon_source()
    if not source:
        raise SystemExit("[demo] no real daemon: set RINGRIFT_AI_SERVICE (directory, .tar.xz or git URL) "
                         "or provide %s/ai-service-*.tar.xz" % SHARED_DAEMON)
    if os.path.isdir(source):
        tree = os.path.join(source, "ai-service") if os.path.isdir(os.path.join(source, "ai-service")) else source
    else:
        key = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
        target = os.path.join(REAL_DAEMON_CACHE, key)
        if not os.path.isdir(target):
            staging = target + ".partial"
            shutil.rmtree(staging, ignore_errors=True)
            os.makedirs(staging)
            if os.path.isfile(source):
                # The tree has symlinks to absolute paths (dangling off the machine it came from),
                # which tarfile's safe filter refuses: unpack with tar, as the archive's README does.
                run(["tar", "-xf", os.path.abspath(source), "-C", staging], capture=True)
            else:
                run(["git", "clone", "--depth", "1", "--quiet", source, os.path.join(staging, "repo")], capture=True)
            os.rename(staging, target)
        found = [os.path.dirname(os.path.dirname(p)) for p in glob.glob(os.path.join(target, "**", "scripts", "p2p_orchestrator.py"),
                                                                     recursive=True)]
        if not found:
            raise SystemExit("[demo] %s holds no scripts/p2p_orchestrator.py" % source)
        tree = sorted(found, key=len)[0]
    if not os.path.isfile(os.path.join(tree, "scripts", "p2p_orchestrator.py")):
        raise SystemExit("[demo] %s holds no scripts/p2p_orchestrator.py" % tree)
    return tree


def docker_exec(container, script, check=True, user=None):
    """A shell command on a node through Docker: for setting up and seeding faults, never for what the demo proves."""
    return run(["docker", "exec"] + (["-u", user] if user else []) + [container, "bash", "-c", script],
               check=check, capture=True)


def plan(size):
    """Fleet shape and seeded faults, in the audit's proportions (6/2/18 of 26)."""
    if not 4 <= size <= len(_SHAPES):
        raise SystemExit("[demo] NODES must be between 4 and %d" % len(_SHAPES))
    nodes = []
    for index, (name, provider, gpu) in enumerate(_SHAPES[:size]):
        nodes.append({"name": name, "provider": provider, "gpu": gpu, "index": index,
                      "kind": "container" if provider in CONTAINER_PROVIDERS else "vm"})
    vms = [n["name"] for n in nodes if n["kind"] == "vm"]
    containers = [n["name"] for n in nodes if n["kind"] == "container"]
    voter_count = 5 if size >= 7 else 3
    voters = (vms + containers)[:voter_count - 1] + [c for c in containers if c not in vms][-1:]
    voters = list(dict.fromkeys(voters))[:voter_count]
    required = len(voters) // 2 + 1
    # Leave one voter too few alive: the quorum is lost before the repair.
    alive_voters = voters[:required - 1]
    healthy_total = max(len(alive_voters) + 1, round(size * 6 / 26))
    others = [n["name"] for n in nodes if n["name"] not in voters]
    healthy = alive_voters + [n for n in others if n not in alive_voters][:healthy_total - len(alive_voters)]
    rest = [n["name"] for n in nodes if n["name"] not in healthy]
    # Crash-loops on containers and VMs alike; the rest never started, one with a decoy.
    faults = {name: "never_started" for name in rest}
    crash_candidates = [n for n in rest if n not in voters] + [n for n in rest if n in voters]
    faults[crash_candidates[0]] = "crash_psutil"
    faults[crash_candidates[1]] = "crash_yaml"
    never = [n for n in rest if faults[n] == "never_started"]
    decoy = next((n for n in never if n not in voters), never[0] if never else None)
    if decoy:
        faults[decoy] = "decoy"
    for name in healthy:
        faults[name] = "healthy"
    for node in nodes:
        node["fault"] = faults[node["name"]]
        node["voter"] = node["name"] in voters
    return nodes, voters


def ssh_shapes(nodes, transport):
    """How each node is reached, as the real fleet reaches its kind (see the module's docstring)."""
    jump = next((n["name"] for n in nodes if n["provider"] == "hetzner"), None)
    for node in nodes:
        node["transport"] = transport
        node["login"] = "ubuntu" if transport == "ssh" and node["provider"] in SUDO_PROVIDERS else "root"
        node["home"] = "/home/ubuntu" if node["login"] == "ubuntu" else "/root"
        node["proxy"] = jump if transport == "ssh" and node["provider"] == "nebius" and jump else None
        # Behind the jump host the node has no published port: only the jump host reaches it, by name.
        node["published_port"] = None if node["proxy"] or transport != "ssh" else SSH_PORT_BASE + node["index"]
    return nodes


def checkout_path(node):
    """The checkout as distributed_hosts.yaml writes it (RunPod keeps it on /workspace)."""
    return "/workspace/ringrift/ai-service" if node["provider"] == "runpod" else "~/ringrift/ai-service"


def checkout_on_node(node):
    """The same path on the node: ~ is the login user's home."""
    return checkout_path(node).replace("~", node["home"], 1)


def placeholder_ssh_host(node):
    """Vast nodes sit behind shared SSH gateways; the others have their own address."""
    if node["provider"] == "vast":
        return "ssh%d.vast.example" % (node["index"] % 9 + 1)
    return "203.0.113.%d" % (10 + node["index"])


def write_fleet_files(nodes, voters, daemon="stand-in", transport="ssh"):
    """distributed_hosts.yaml in the real format + the inventory source that reads it.

    Over SSH (the default) every node is reached as :func:`ssh_shapes` says, with the
    connection variables the inventory plugin derives from the file: nothing is overridden.
    The stand-in never contacts its peers, so its advertise addresses are documentation
    placeholders; the real daemon gossips with its peers and voters, so its nodes advertise
    their aliases on the demo's own Docker network and every connection stays between
    containers the demo started.
    """
    os.makedirs(WORK, exist_ok=True)
    ssh_shapes(nodes, transport)
    lines = [
        "# Generated by tools/demo.py for the simulated fleet, in the real format. Reached over %s;" % (
            "SSH through loopback ports and a jump host" if transport == "ssh" else "Docker (docker exec as root)"),
        "# other addresses are documentation placeholders or the demo's own containers.",
        "",
        "p2p_voters:",
    ] + ["  - %s" % v for v in voters] + ["", "hosts:"]
    for node in nodes:
        path = checkout_path(node)
        lines.append("  %s:" % node["name"])
        if transport == "ssh":
            lines += [
                "    ssh_host: %s" % ("127.0.0.1" if node["published_port"] else node["name"]),
                "    ssh_port: %d" % (node["published_port"] or 22),
                "    ssh_user: %s" % node["login"],
                "    ssh_key: %s" % SSH_KEY,
            ]
            if node["proxy"]:
                lines.append("    ssh_proxy: %s" % node["proxy"])
        else:
            lines += [
                "    ssh_host: %s" % (node["name"] if daemon == "real" else placeholder_ssh_host(node)),
                "    ssh_port: %d" % (20000 + node["index"] if node["kind"] == "container" else 22),
                "    ssh_user: root",
                "    ssh_key: ~/.ssh/id_cluster",
            ]
        lines += [
            "    ringrift_path: %s" % path,
            "    venv_activate: source %s/venv/bin/activate" % path,
        ]
        if daemon == "real":
            lines.append("    p2p_public_host: %s" % node["name"])
        elif transport == "ssh" or node["provider"] == "vast":
            lines.append("    p2p_public_host: 198.51.100.%d" % (10 + node["index"]))
        if node["gpu"]:
            lines.append("    gpu: %s" % node["gpu"])
        lines += [
            "    role: %s" % ("gpu_selfplay" if node["gpu"] else "cpu_selfplay"),
            "    status: ready",
            "    p2p_enabled: true",
            "",
        ]
    hosts_file = os.path.join(WORK, "distributed_hosts.yaml")
    with open(hosts_file, "w") as f:
        f.write("\n".join(lines))
    source = os.path.join(WORK, "demo.distributed_hosts.yml")
    if transport == "ssh":
        body = [
            "# Inventory source for the simulated fleet (tools/demo.py): reached over SSH as the file says.",
            "plugin: ringrift.cluster.distributed_hosts",
            "path: distributed_hosts.yaml",
            "# The demo's nodes make new host keys each run: a known-hosts file of its own, not the operator's.",
            "known_hosts_file: %s" % KNOWN_HOSTS,
            "",
        ]
    else:
        body = [
            "# Inventory source for the simulated fleet (tools/demo.py --transport docker).",
            "plugin: ringrift.cluster.distributed_hosts",
            "path: distributed_hosts.yaml",
            "compose:",
            "  # Reached through Docker as root, not SSH: for speed where transport is not the point.",
            "  ansible_connection: \"'community.docker.docker'\"",
            "  ansible_host: \"'%s' ~ inventory_hostname\"" % PREFIX,
            "  ansible_user: \"'root'\"",
            "  ansible_python_interpreter: \"'/usr/bin/python3'\"",
            "",
        ]
    with open(source, "w") as f:
        f.write("\n".join(body))
    for node in nodes:
        node["checkout"] = checkout_on_node(node)
    with open(os.path.join(WORK, "plan.json"), "w") as f:
        json.dump({"nodes": nodes, "voters": voters, "transport": transport}, f, indent=2)
    return source


def client_key():
    """The controller's key for this run (the fleet file's ssh_key), made fresh; never committed."""
    os.makedirs(SSH_DIR, mode=0o700, exist_ok=True)
    if not os.path.exists(SSH_KEY):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ringrift-demo", "-f", SSH_KEY], capture=True)
    with open(SSH_KEY + ".pub") as f:
        return f.read().strip()


def wait_for(what, probe, deadline=90.0):
    """Poll ``probe()`` until it is true; one total deadline."""
    end = time.monotonic() + deadline
    while not probe():
        if time.monotonic() > end:
            raise SystemExit("[demo] gave up waiting for %s after %.0f s" % (what, deadline))
        time.sleep(0.5)


def start_containers(nodes, daemon="stand-in"):
    checkout = real_daemon_tree() if daemon == "real" else CHECKOUT_FIXTURE
    over_ssh = any(n.get("transport") == "ssh" for n in nodes)
    public_key = client_key() if over_ssh else None
    # The demo's own network: nodes reach each other by name, nothing else is on it.
    if run(["docker", "network", "inspect", NETWORK], check=False, capture=True).returncode != 0:
        run(["docker", "network", "create", "--label", LABEL, NETWORK], capture=True)
    for node in nodes:
        name = PREFIX + node["name"]
        cmd = ["docker", "run", "-d", "--name", name, "--hostname", node["name"], "--label", LABEL,
               "--network", NETWORK, "--network-alias", node["name"]]
        if node.get("published_port"):
            cmd += ["-p", "127.0.0.1:%d:22" % node["published_port"]]
        if node["kind"] == "vm":
            # SYS_PTRACE: root on a VM may read every process's /proc/<pid>/fd (Docker drops it, so
            # without it root could not see the sockets of a daemon that runs as `ubuntu`).
            cmd += ["--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE", "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--security-opt", "seccomp=unconfined",
                    "--stop-signal", "SIGRTMIN+3", "ringrift/vm:latest"]
        else:
            cmd += ["ringrift/container:latest"]
        run(cmd, capture=True)
    for node in nodes:
        name = PREFIX + node["name"]
        if node["kind"] == "vm":
            docker_exec(name, "systemctl is-system-running --wait >/dev/null || true")
        home = os.path.dirname(checkout_on_node(node))
        # A real node arrives with the service checkout already there, owned by its login user.
        docker_exec(name, "mkdir -p %s" % home)
        run(["docker", "cp", checkout, "%s:%s/ai-service" % (name, home)], capture=True)
        docker_exec(name, "chown -R %s: %s" % (node.get("login", "root"), home))
        if public_key:
            # What the provider's cloud-init or console does: the operator's key for the login user.
            user = node["login"]
            docker_exec(name, "install -d -m 0700 -o {u} -g {u} {h}/.ssh && echo '{k}' > {h}/.ssh/authorized_keys && "
                              "chown {u}: {h}/.ssh/authorized_keys && chmod 0600 {h}/.ssh/authorized_keys".format(
                                  u=user, h=node["home"], k=public_key))
            wait_for("sshd on %s" % node["name"],
                     lambda n=name: docker_exec(n, "ss -Hltn 'sport = :22' | grep -q .", check=False).returncode == 0)
        if node["gpu"]:
            run(["docker", "cp", NVIDIA_SMI_DOUBLE, "%s:/usr/bin/nvidia-smi" % name], capture=True)
            docker_exec(name, "chmod 0755 /usr/bin/nvidia-smi && mkdir -p /etc/ringrift-test && "
                              "echo '%s' > /etc/ringrift-test/nvidia-smi.scenario" % node["gpu"])


def playbook(source, name, *args, env=None):
    started = time.time()
    proc = run([os.path.join(REPO, ".venv", "bin", "ansible-playbook"), "-i", source,
                os.path.join(REPO, "playbooks", name)] + list(args), check=False, capture=True, env=env)
    with open(os.path.join(WORK, "%s-%d.log" % (name.split(".")[0], int(started))), "w") as f:
        f.write(proc.stdout)
    return proc, time.time() - started


def first_contact(source, nodes):
    """The operator's first step: every node answers a ping through the inventory, as the file says to reach it."""
    started = time.time()
    proc = run([os.path.join(REPO, ".venv", "bin", "ansible"), "-i", source, "all", "-m", "ansible.builtin.ping"],
               check=False, capture=True)
    ponged = sorted(set(re.findall(r"^(\S+) \| SUCCESS", proc.stdout, re.M)))
    with open(os.path.join(WORK, "first-contact.log"), "w") as f:
        f.write(proc.stdout)
    if proc.returncode != 0 or len(ponged) != len(nodes):
        sys.stdout.write(proc.stdout[-6000:])
        raise SystemExit("[demo] not every node answered the first ping")
    return time.time() - started, ponged


def seed_faults(source, nodes):
    """Healthy and crash-looping nodes were converged once; then the audit's faults appear."""
    converged = [n["name"] for n in nodes if n["fault"] in ("healthy", "crash_psutil", "crash_yaml")]
    proc, took = playbook(source, "site.yml", "--limit", ",".join(converged))
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-6000:])
        raise SystemExit("[demo] converging the healthy part of the fleet failed")
    log("converged %d nodes that start healthy or will crash (%.0f s)" % (len(converged), took))
    for node in nodes:
        name = PREFIX + node["name"]
        venv = "%s/venv" % checkout_on_node(node)
        if node["fault"] in ("crash_psutil", "crash_yaml"):
            package = "psutil" if node["fault"] == "crash_psutil" else "PyYAML"
            # A dependency vanishes (an image rebuild without it): the next start crash-loops.
            restart = ("systemctl restart ringrift-p2p" if node["kind"] == "vm"
                       else "supervisorctl restart ringrift-p2p")
            docker_exec(name, "%s/bin/pip uninstall -q -y %s" % (venv, package), user=node.get("login"))
            docker_exec(name, "%s || true" % restart)
        elif node["fault"] == "decoy":
            # The old pgrep false positive: a command line that names the daemon, no listener.
            docker_exec(name, "mkdir -p /tmp/decoy && cd /tmp/decoy && "
                              "nohup bash -c 'exec -a \"tail -f /var/log/p2p_orchestrator.log\" sleep infinity' "
                              ">/dev/null 2>&1 & "
                              "nohup bash -c 'exec -a \"python scripts/p2p_orchestrator.py --node-id %s\" sleep infinity' "
                              ">/dev/null 2>&1 &" % node["name"])


def audit(source, label):
    proc, took = playbook(source, "audit.yml", "-e", "audit_fail_on_quorum_loss=false",
                          env={"RINGRIFT_REPORT_DIR": os.path.join(WORK, "reports")})
    reports = sorted(p for p in os.listdir(os.path.join(WORK, "reports")) if p.endswith(".json"))
    if proc.returncode != 0 or not reports:
        sys.stdout.write(proc.stdout[-6000:])
        raise SystemExit("[demo] %s audit failed" % label)
    path = os.path.join(WORK, "reports", reports[-1])
    with open(path) as f:
        report = json.load(f)
    return report, path, took


# What a converge touches on a node; logs are left out (running daemons write them).
_LISTING = ("find /etc/ringrift /etc/systemd/system /etc/supervisor /etc/logrotate.d /root/ringrift /home/ubuntu/ringrift "
            "/workspace/ringrift /root/onstart.sh /usr/local/bin -xdev -name __pycache__ -prune -o "
            "-printf '%p %s %m %U %T@\\n' 2>/dev/null | sort | sha256sum")


def listing(nodes):
    return dict((n["name"], docker_exec(PREFIX + n["name"], _LISTING).stdout.split()[0]) for n in nodes)


def check_mode_run(source, nodes):
    """site.yml --check on the broken fleet: a dry-run report, and not one byte changed."""
    before = listing(nodes)
    proc, took = playbook(source, "site.yml", "--check", env={"RINGRIFT_REPORT_DIR": os.path.join(WORK, "reports")})
    after = listing(nodes)
    reports = sorted(p for p in os.listdir(os.path.join(WORK, "reports")) if p.startswith("dry-run-") and p.endswith(".json"))
    changed = sorted(n for n in before if before[n] != after[n])
    log("site.yml --check: rc=%d, %d dry-run report(s), nodes changed: %s (%.0f s)"
        % (proc.returncode, len(reports), ", ".join(changed) or "none", took))
    return {"rc": proc.returncode, "listing_unchanged": not changed, "changed_nodes": changed,
            "report": os.path.join(WORK, "reports", reports[-1]) if reports else None}, took


def describe_reach(node):
    if node["transport"] != "ssh":
        return "%s docker exec" % node["name"]
    how = "via %s" % node["proxy"] if node["proxy"] else "127.0.0.1:%d" % node["published_port"]
    return "%s %s@%s" % (node["name"], node["login"], how)


def describe(report):
    s, q = report["summary"], report["quorum"]
    causes = ", ".join("%s=%d" % (k, v) for k, v in sorted(s["by_diagnosis"].items()) if v)
    return "%d/%d healthy; quorum %s (%d/%d voters, %d required); %s" % (
        s["healthy"], s["total"], "met" if q["ok"] else "LOST", len(q["healthy_voters"]),
        len(q["voters"]), q["required"], causes)


def fleet(size, daemon="stand-in", transport="ssh"):
    """Nodes shaped like the real fleet, nothing converged or seeded: for tests that run the playbooks themselves."""
    down(quiet=True)
    if size < 1:
        raise SystemExit("[demo] fleet needs at least one node")
    # Both node kinds from the first nodes on: VMs (systemd) and containers (supervisor) alternate.
    vms = [(i, s) for i, s in enumerate(_SHAPES) if s[1] not in CONTAINER_PROVIDERS]
    containers = [(i, s) for i, s in enumerate(_SHAPES) if s[1] in CONTAINER_PROVIDERS]
    picked = [pair for both in zip(vms, containers) for pair in both][:size]
    nodes = [{"name": name, "provider": provider, "gpu": gpu, "index": index, "fault": "none", "voter": True,
              "kind": "container" if provider in CONTAINER_PROVIDERS else "vm"} for index, (name, provider, gpu) in picked]
    voters = [n["name"] for n in nodes]
    source = write_fleet_files(nodes, voters, daemon, transport)
    start_containers(nodes, daemon)
    log("started %d nodes with the %s daemon over %s (inventory source %s), voters: %s" % (
        len(nodes), daemon, transport, source, ", ".join(voters)))
    return 0


def up(size, check_first=False, daemon="stand-in", transport="ssh"):
    timings = {}
    check = None
    down(quiet=True)
    nodes, voters = plan(size)
    t0 = time.time()
    source = write_fleet_files(nodes, voters, daemon, transport)
    start_containers(nodes, daemon)
    timings["start containers"] = time.time() - t0
    log("started %d nodes with the %s daemon (%s), voters: %s" % (len(nodes), daemon, ", ".join(
        "%s:%s" % (n["name"], n["fault"]) for n in nodes), ", ".join(voters)))
    log("reached over %s: %s" % (transport, ", ".join(describe_reach(n) for n in nodes)))
    t0 = time.time()
    timings["first contact"], ponged = first_contact(source, nodes)
    log("first contact (ansible all -m ping through the inventory): %d/%d nodes answered" % (len(ponged), len(nodes)))
    seed_faults(source, nodes)
    timings["seed faults"] = time.time() - t0

    before, before_path, timings["audit before"] = audit(source, "first")
    log("BEFORE: " + describe(before))
    with open(before_path[:-5] + ".md") as f:
        print(f.read())

    if check_first:
        check, timings["site.yml --check"] = check_mode_run(source, nodes)

    proc, timings["site.yml repair"] = playbook(source, "site.yml")
    recap = [line for line in proc.stdout.splitlines() if "ok=" in line and "changed=" in line]
    print("\n".join(recap))
    if proc.returncode != 0:
        log("site.yml exited %d; the audit below says what is still broken" % proc.returncode)

    after, after_path, timings["audit after"] = audit(source, "second")
    log("AFTER:  " + describe(after))
    print("\nSummary")
    print("  before: %s\n          %s" % (describe(before), before_path))
    print("  after:  %s\n          %s" % (describe(after), after_path))
    for step, took in timings.items():
        print("  %-18s %6.1f s" % (step, took))
    ok = after["summary"]["healthy"] == after["summary"]["total"] and after["quorum"]["ok"]
    with open(os.path.join(WORK, "summary.json"), "w") as f:
        json.dump({"before": before_path, "after": after_path, "timings": timings, "ok": ok, "check": check}, f, indent=2)
    return 0 if ok else 1


def down(quiet=False):
    ids = run(["docker", "ps", "-aq", "--filter", "label=" + LABEL], capture=True).stdout.split()
    if ids:
        run(["docker", "rm", "-f"] + ids, capture=True)
    run(["docker", "network", "rm", NETWORK], check=False, capture=True)
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    if not quiet:
        log("removed %d containers and %s" % (len(ids), WORK))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("nodes", nargs="?", type=int, default=10)
    p_up.add_argument("--check-first", action="store_true",
                      help="run site.yml --check on the broken fleet and prove nothing changed")
    p_fleet = sub.add_parser("fleet")
    p_fleet.add_argument("nodes", type=int)
    for sub_parser in (p_up, p_fleet):
        sub_parser.add_argument("--daemon", choices=["stand-in", "real"], default=os.environ.get("DAEMON") or "stand-in",
                                help="stand-in (tests/fixtures/ai-service) or the real RingRift daemon")
        sub_parser.add_argument("--transport", choices=TRANSPORTS, default=os.environ.get("TRANSPORT") or "ssh",
                                help="ssh (as the fleet file says: gateway, jump host, sudo users) or docker (docker exec as root)")
    sub.add_parser("down")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.nodes, args.check_first, args.daemon, args.transport)
    if args.command == "fleet":
        return fleet(args.nodes, args.daemon, args.transport)
    return down()


if __name__ == "__main__":
    sys.exit(main())
