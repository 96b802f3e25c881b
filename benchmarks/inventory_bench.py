#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: ringrift.cluster.distributed_hosts vs the builtin yaml inventory plugin.

Generates a distributed_hosts.yaml with N hosts (default 10,000; documentation-only
placeholder addresses, nothing is contacted) in a temporary directory, plus the
equivalent static YAML inventory (same hosts, same groups, same host variables, as
the plugin derives them) for ansible.builtin.yaml. Then times
``ansible-inventory --list`` on each, interleaved, several repetitions, and reports
the medians and their ratio (plugin / builtin; target <= 1.5).

For context it also times a third, smaller static inventory holding only the
connection variables (ansible_host, ansible_port, ansible_user, ...) and the same
groups - what a hand-written inventory would carry, not an equivalent of the plugin's
output - and reports that ratio as ``ratio_vs_connection_only`` (informational).

    .venv/bin/python benchmarks/inventory_bench.py [--hosts 10000] [--repeat 5] [--output FILE]
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'collections'))

from ansible_collections.ringrift.cluster.plugins.plugin_utils.distributed_hosts import (  # noqa: E402  pylint: disable=wrong-import-position
    build_model,
    load_document,
)

_DUMPER = getattr(yaml, 'CSafeDumper', yaml.SafeDumper)
_NETS = ('192.0.2', '198.51.100', '203.0.113')
_GPUS = ('8x RTX 4090', '2x RTX 5090', 'A40', 'H100 SXM', 'A100 PCIe', 'L40S', 'A100D-20C (vGPU)', None, 'M3 Max/Ultra (MPS)')
_ROLES = ('gpu_selfplay', 'gpu_selfplay_primary', 'nn_training_primary', 'cpu_selfplay', 'backbone', 'proxy')
_STATUSES = ('ready',) * 12 + ('pending_setup', 'needs_setup', 'proxy_only', 'offline', 'retired', 'terminated', 'archived')
_PROVIDERS = ('vast', 'runpod', 'vultr', 'nebius', 'hetzner', 'aws')


def _address(i):
    return '%s.%d' % (_NETS[i % 3], 1 + (i // 3) % 254)


def generate_hosts_file(count):
    """A distributed_hosts.yaml-shaped dict with count hosts and 7 voters."""
    hosts = {}
    names = []
    for i in range(count):
        provider = _PROVIDERS[i % len(_PROVIDERS)]
        name = '%s-%05d' % (provider, i)
        names.append(name)
        entry = {
            'ssh_host': ('ssh%d.vast.example' % (i % 10)) if provider == 'vast' else _address(i),
            'ssh_port': 20000 + i if provider in ('vast', 'runpod') else 22,
            'ssh_user': 'ubuntu' if provider == 'nebius' else 'root',
            'ssh_key': '~/.ssh/id_cluster',
            'ringrift_path': '~/ringrift/ai-service',
            'venv_activate': 'source ~/ringrift/ai-service/venv/bin/activate' if i % 4 else ':',
            'memory_gb': 64 + i % 512,
            'cpus': 8 + i % 120,
            'role': _ROLES[i % len(_ROLES)],
            'status': _STATUSES[i % len(_STATUSES)],
            'p2p_enabled': i % 5 != 0,
            'note': 'generated host %d' % i,
        }
        gpu = _GPUS[i % len(_GPUS)]
        if gpu:
            entry['gpu'] = gpu
            entry['gpu_vram_gb'] = 24 + i % 56
        if provider == 'nebius' and i % 12 == 3 and i > 12:
            entry['ssh_proxy'] = names[i - 6]  # an earlier nebius host
        hosts[name] = entry
    voters = [n for n in names if n.startswith(('nebius', 'hetzner')) and hosts[n]['status'] == 'ready' and 'ssh_proxy' not in hosts[n]][:7]
    return {'sync_routing': {'replication_target': 2}, 'p2p_voters': voters, 'hosts': hosts}


def static_inventory(model, connection_only=False):
    """The builtin yaml plugin's form of what the plugin produces (or of its connection variables only)."""
    children = dict((group, {'hosts': {}}) for group in model['groups'])
    for name, host in model['hosts'].items():
        for group in host['groups']:
            children[group]['hosts'][name] = None
    hosts = {}
    for name, host in model['hosts'].items():
        host_vars = host['vars']
        if connection_only:
            host_vars = dict((key, value) for key, value in host_vars.items() if key.startswith('ansible_'))
        hosts[name] = host_vars
    return {'all': {'hosts': hosts, 'children': children}}


def _time(cmd, env):
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit('command failed (%d): %s\n%s' % (proc.returncode, ' '.join(cmd), proc.stderr.decode(errors='replace')[-4000:]))
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=10000)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--output', help='write the result as JSON to this file (default: print it)')
    parser.add_argument('--keep', action='store_true', help='keep the temporary directory')
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix='inventory_bench_')
    try:
        data_path = os.path.join(work, 'distributed_hosts.yaml')
        with open(data_path, 'w', encoding='utf-8') as handle:
            yaml.dump(generate_hosts_file(args.hosts), handle, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
        source = os.path.join(work, 'bench.distributed_hosts.yml')
        with open(source, 'w', encoding='utf-8') as handle:
            handle.write('plugin: ringrift.cluster.distributed_hosts\npath: distributed_hosts.yaml\n')
        with open(data_path, 'rb') as handle:
            model = build_model(load_document(handle.read(), data_path))
        static = os.path.join(work, 'static.yml')
        with open(static, 'w', encoding='utf-8') as handle:
            yaml.dump(static_inventory(model), handle, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
        connection_only = os.path.join(work, 'connection_only.yml')
        with open(connection_only, 'w', encoding='utf-8') as handle:
            yaml.dump(static_inventory(model, connection_only=True), handle, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)

        env = dict(os.environ)
        env.update({
            'ANSIBLE_CONFIG': os.path.join(REPO, 'ansible.cfg'),
            'ANSIBLE_INVENTORY_CACHE': 'False',
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_LOCALHOST_WARNING': 'False',
        })
        inventory_bin = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')
        commands = {
            'distributed_hosts': [inventory_bin, '-i', source, '--list'],
            'builtin_yaml': [inventory_bin, '-i', static, '--list'],
            'builtin_yaml_connection_only': [inventory_bin, '-i', connection_only, '--list'],
        }
        times = dict((key, []) for key in commands)
        for dummy in range(args.repeat):
            for key, cmd in commands.items():
                times[key].append(_time(cmd, env))
        medians = dict((key, statistics.median(values)) for key, values in times.items())
        result = {
            'benchmark': 'ansible-inventory --list',
            'hosts': args.hosts,
            'hosts_in_inventory': len(model['hosts']),
            'groups': len(model['groups']),
            'repeat': args.repeat,
            'data_file_bytes': os.path.getsize(data_path),
            'static_file_bytes': os.path.getsize(static),
            'connection_only_file_bytes': os.path.getsize(connection_only),
            'seconds': times,
            'median_seconds': medians,
            'ratio': round(medians['distributed_hosts'] / medians['builtin_yaml'], 3),
            'target_ratio': 1.5,
            'ratio_vs_connection_only': round(medians['distributed_hosts'] / medians['builtin_yaml_connection_only'], 3),
            'python': platform.python_version(),
        }
        text = json.dumps(result, indent=2, sort_keys=True)
        if args.output:
            with open(args.output, 'w', encoding='utf-8') as handle:
                handle.write(text + '\n')
        print(text)
        return 0 if result['ratio'] <= result['target_ratio'] else 1
    finally:
        if args.keep:
            print('kept %s' % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
