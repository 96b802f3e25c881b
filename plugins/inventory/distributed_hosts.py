# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin ringrift.cluster.distributed_hosts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: distributed_hosts
author:
  - RingRift maintainers (@ringrift)
short_description: The RingRift fleet from C(distributed_hosts.yaml)
version_added: 0.1.0
description:
  - Reads the fleet's own C(distributed_hosts.yaml) (the file the P2P daemon already uses) and turns it into an
    inventory, so there is never a second, hand-written one. Only its top-level C(hosts) mapping and C(p2p_voters)
    list are read. The inventory source is a YAML file whose name ends in C(distributed_hosts.yml) or
    C(distributed_hosts.yaml), with O(plugin) and O(path); see EXAMPLES.
  - "Groups: one per provider (V(vast), V(runpod), V(vultr), V(nebius), V(hetzner), V(aws), V(local), those of
    O(provider_prefixes); the host's C(provider) key, else its name's prefix) and V(unknown_provider);
    V(containerized) (no systemd, O(container_providers)) and V(vm_or_metal); V(p2p_voters) (exactly the top-level
    C(p2p_voters) list) and V(p2p_enabled); V(gpu) (an NVIDIA C(gpu), O(nvidia_gpu_patterns)) and V(cpu_only);
    V(unsupported_os) (not Linux, so not manageable: C(site.yml) leaves it out, the audit does not contact it);
    V(role_<role>) and V(status_<status>). All but the last two always exist, possibly empty."
  - "Host variables: C(ansible_host), C(ansible_port), C(ansible_user) and C(ansible_ssh_private_key_file) from the
    C(ssh_*) keys, C(ansible_ssh_common_args), and the C(ringrift_*) variables every role reads (provider, paths,
    GPU, voters, peers, advertise host, OS family, ...; the table is in C(docs/architecture.md)).
    C(ringrift_host_config) holds every raw key of the entry, secrets included: never print it."
  - "Host keys are trusted on first use: every SSH connection to the fleet, and the jump host's ssh of a host with
    C(ssh_proxy), runs with C(-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=FILE), FILE being
    O(known_hosts_file). The first connection records a host's key; a different key later makes that host alone
    unreachable. After replacing an instance on purpose, remove its old key
    (C(ssh-keygen -R '[HOST]:PORT' -f ~/.ssh/ringrift_known_hosts)). Leave C(host_key_checking) on: off, Ansible
    puts C(StrictHostKeyChecking=no) first and OpenSSH keeps the first value."
  - Hosts with an inactive C(status) are left out by default (O(exclude_statuses), O(include_statuses)). Bad input
    is an error naming the file, line, host and field; with O(strict) any host-level problem fails the source,
    without it the broken host is dropped with a warning.
  - "How each group and variable is derived, what is validated, the file limits, the cache and vault files:
    C(docs/inventory.md) in the collection."
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Token that ensures this is a source file for this plugin.
    required: true
    type: str
    choices: ['ringrift.cluster.distributed_hosts']
  path:
    description:
      - Path of C(distributed_hosts.yaml). A relative path is relative to the directory of the inventory source file.
      - C(~) and environment variables are expanded.
    required: true
    type: str
  provider_prefixes:
    description:
      - Host-name prefixes mapped to provider names, merged over the defaults (each of V(vast), V(runpod), V(vultr),
        V(nebius), V(hetzner), V(aws), V(local) maps to itself). Matching is case-insensitive, the longest prefix wins.
      - Map a prefix to an empty string to remove a default.
      - A host's own C(provider) key wins over any prefix.
    type: dict
    default: {}
  container_providers:
    description:
      - Providers whose hosts are containers without systemd (group V(containerized)), unless a host's own
        C(is_container) key says otherwise.
    type: list
    elements: str
    default: ['vast', 'runpod']
  include_statuses:
    description:
      - When set, it alone decides which hosts are added - exactly those whose C(status) is in this list
        (hosts without C(status) are then left out) - and O(exclude_statuses) is ignored.
      - The only way to add hosts whose C(status) is not a known status.
    type: list
    elements: str
  exclude_statuses:
    description:
      - Hosts whose C(status) is in this list are left out (unless O(include_statuses) is set). Set to V([]) to get
        every host with a known status (or none).
    type: list
    elements: str
    default: ['terminated', 'offline', 'retired', 'archived']
  prefer_tailscale:
    description: Use a host's C(tailscale_ip) as its advertise host when it has one.
    type: bool
    default: false
  nvidia_gpu_patterns:
    description:
      - Extra regular expressions (case-insensitive, searched in the GPU model) that mark a C(gpu) value as NVIDIA,
        checked before the built-in rules.
    type: list
    elements: str
    default: []
  ssh_gateway_patterns:
    description:
      - Regular expressions (case-insensitive) for SSH addresses that are a provider's shared gateway rather than
        the host's own address; such an C(ssh_host) is never used as advertise host.
    type: list
    elements: str
    default: ['^ssh\d*\.vast\.']
  known_hosts_file:
    description:
      - The fleet's own known-hosts file, in which every SSH connection of the fleet (jump hosts included) records a
        host's key the first time and checks it every time after (OpenSSH C(StrictHostKeyChecking=accept-new)).
      - Absolute or C(~/...) (OpenSSH expands C(~)), without spaces, quotes, C(%) or C($). Its directory must exist
        and be writable (C(~/.ssh) usually is); OpenSSH creates the file.
    type: str
    default: ~/.ssh/ringrift_known_hosts
    version_added: 0.3.0
"""

EXAMPLES = r"""
# inventory/cluster.distributed_hosts.yml
plugin: ringrift.cluster.distributed_hosts
path: ../config/distributed_hosts.yaml

---
# Everything, including offline and retired hosts, advertised over Tailscale
plugin: ringrift.cluster.distributed_hosts
path: /etc/ringrift/distributed_hosts.yaml
exclude_statuses: []
prefer_tailscale: true

---
# Extra provider prefix, constructed features, cached parse
plugin: ringrift.cluster.distributed_hosts
path: ../config/distributed_hosts.yaml
provider_prefixes:
  lambda: lambda
  gh: nebius
strict: true
compose:
  ansible_python_interpreter: (ringrift_venv_path ~ '/bin/python') if ringrift_venv_path else '/usr/bin/python3'
groups:
  big_gpu: ringrift_gpu_count >= 8
keyed_groups:
  - key: ringrift_host_config.region | default('none')
    prefix: region
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ringrift-inventory
"""

import hashlib
import os
import re
import stat

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.parsing.vault import is_encrypted
from ansible.plugins.inventory import BaseFileInventoryPlugin, Cacheable, Constructable

from ansible_collections.ringrift.cluster.plugins.plugin_utils.distributed_hosts import (
    DocumentError,
    OptionError,
    build_model,
    format_problem,
    load_document,
)

_SOURCE_SUFFIXES = ('distributed_hosts.yml', 'distributed_hosts.yaml')
_MODEL_OPTIONS = (
    'provider_prefixes', 'container_providers', 'include_statuses', 'exclude_statuses',
    'prefer_tailscale', 'nvidia_gpu_patterns', 'ssh_gateway_patterns', 'known_hosts_file',
)
# The real file is about 10 KiB; anything this large is not a fleet description.
MAX_DATA_BYTES = 16 * 1024 * 1024
# Part of every cache key: a document cached by an earlier version of the loader (without
# its checks, or with decrypted vault content) is never used again.
_DOCUMENT_FORMAT = b'distributed_hosts-document-2'

_FILE_KINDS = (
    (stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO (named pipe)'), (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'),
)


class _NotARegularFile(Exception):
    pass


def _kind_of_file(mode):
    for test, kind in _FILE_KINDS:
        if test(mode):
            return kind
    return 'not a regular file'


def read_regular_file(path, limit):
    """Content of the regular file ``path`` (symlinks followed), at most ``limit`` bytes.

    Never opens a FIFO or device for real: it is refused after ``stat``, and the file is
    opened non-blocking and checked again with ``fstat`` (it may have been replaced in
    between), so a FIFO without a writer cannot hang the inventory. Raises OSError, or
    _NotARegularFile with the reason.
    """
    b_path = to_bytes(path, errors='surrogate_or_strict')
    mode = os.stat(b_path).st_mode
    if not stat.S_ISREG(mode):
        raise _NotARegularFile('it is %s, not a regular file' % _kind_of_file(mode))
    flags = os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_NOCTTY', 0) | getattr(os, 'O_CLOEXEC', 0)
    fd = os.open(b_path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotARegularFile('it is %s, not a regular file' % _kind_of_file(info.st_mode))
        if info.st_size > limit:
            raise _NotARegularFile('it is %d bytes, more than the limit of %d' % (info.st_size, limit))
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise _NotARegularFile('it grew past the limit of %d bytes while being read' % limit)
        return b''.join(chunks)
    finally:
        os.close(fd)


class InventoryModule(BaseFileInventoryPlugin, Constructable, Cacheable):
    """Inventory from the cluster's distributed_hosts.yaml."""

    NAME = 'ringrift.cluster.distributed_hosts'

    def verify_file(self, path):
        """Accept readable files whose name ends in distributed_hosts.yml/.yaml."""
        if super(InventoryModule, self).verify_file(path):
            return to_native(path).endswith(_SOURCE_SUFFIXES)
        return False

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        try:
            self._read_config_data(path)
        except AnsibleParserError:
            if self._is_data_file(path):
                raise AnsibleParserError(
                    '%s is a distributed_hosts data file, not an inventory source: use a source such as '
                    'inventory/cluster.distributed_hosts.yml ("plugin: %s" and "path: <this file>")' % (path, self.NAME))
            raise
        data_path = self._data_path(path)
        content, vaulted = self._read_data(data_path)

        user_cache_setting = self.get_option('cache')
        if vaulted and user_cache_setting:
            # The document is the decrypted content: it never goes to a cache.
            self._forget_legacy_cache_entry(path, data_path, content)
            self.display.vvv('%s: vault-encrypted, so not cached' % data_path)
            user_cache_setting = False
        digest = hashlib.sha256(_DOCUMENT_FORMAT + b'\0' + to_bytes(data_path, errors='surrogate_or_strict') + b'\0' + content).hexdigest()
        cache_key = '%s_%s' % (self.get_cache_key(path), digest[:20])
        attempt_to_read_cache = user_cache_setting and cache
        cache_needs_update = user_cache_setting and not cache

        document = None
        if attempt_to_read_cache:
            try:
                document = self._cache[cache_key]
            except KeyError:
                cache_needs_update = True
        if document is None:
            document = self._load(content, data_path)
        if cache_needs_update:
            self._cache[cache_key] = document

        options = dict((name, self.get_option(name)) for name in _MODEL_OPTIONS)
        try:
            model = build_model(document, options)
        except re.error as exc:
            raise AnsibleParserError('%s: invalid regular expression in the inventory source options: %s' % (path, to_native(exc)))
        except OptionError as exc:
            raise AnsibleParserError('%s: option %s' % (path, to_native(exc)))
        self._report(model)
        # The file itself, so p2p_daemon can deploy the very file the controller read.
        for host in model['hosts'].values():
            host['vars']['ringrift_fleet_file'] = data_path
        self._apply(model)

    # -- reading

    @staticmethod
    def _is_data_file(path):
        try:
            head = read_regular_file(path, MAX_DATA_BYTES)
        except (IOError, OSError, _NotARegularFile):
            return False
        return re.search(br'^hosts:[ \t]*(#.*)?$', head, re.M) is not None and re.search(br'^plugin:', head, re.M) is None

    def _data_path(self, source):
        raw = self.get_option('path')
        if not raw:
            raise AnsibleParserError('%s: option "path" (the distributed_hosts.yaml file) is empty' % source)
        expanded = os.path.expandvars(os.path.expanduser(raw))
        if not os.path.isabs(expanded):
            expanded = os.path.join(os.path.dirname(os.path.abspath(source)), expanded)
        return os.path.normpath(expanded)

    def _read_data(self, data_path):
        """Return (content, whether it was vault-encrypted)."""
        try:
            content = read_regular_file(data_path, MAX_DATA_BYTES)
        except _NotARegularFile as exc:
            raise AnsibleParserError('%s: cannot read distributed_hosts file: %s' % (data_path, to_native(exc)))
        except (IOError, OSError) as exc:
            reason = exc.strerror or to_native(exc)
            hint = ''
            if not os.path.exists(data_path):
                hint = ' (put the cluster\'s distributed_hosts.yaml there, see config/README.md, or point "path" at it)'
            raise AnsibleParserError('%s: cannot read distributed_hosts file: %s%s' % (data_path, reason, hint))
        if not is_encrypted(content):
            return content, False
        try:
            return self.loader._vault.decrypt(content), True  # pylint: disable=protected-access
        except AnsibleError as exc:
            raise AnsibleParserError('%s: cannot decrypt vault-encrypted distributed_hosts file: %s' % (data_path, to_native(exc)))

    def _forget_legacy_cache_entry(self, source, data_path, content):
        """Remove the entry an earlier version cached for this vaulted file: its decrypted content."""
        digest = hashlib.sha256(to_bytes(data_path, errors='surrogate_or_strict') + b'\0' + content).hexdigest()
        key = '%s_%s' % (self.get_cache_key(source), digest[:20])
        backend = getattr(self._cache, '_plugin', None)  # the cache plugin behind the adjudicator
        try:
            if backend is not None and backend.contains(key):
                backend.delete(key)
                self.display.warning('%s: removed the inventory cache entry %s, which an earlier version of this plugin wrote '
                                     'with the decrypted content of the vault-encrypted file' % (source, key))
        except Exception as exc:  # pylint: disable=broad-except
            self.display.warning('%s: could not remove the inventory cache entry %s holding decrypted vault content: %s'
                                 % (source, key, to_native(exc)))

    def _load(self, content, data_path):
        try:
            return load_document(content, source=data_path)
        except DocumentError as exc:
            raise AnsibleParserError(to_native(exc))

    # -- reporting

    def _report(self, model):
        problems = model['problems']
        if problems and self.get_option('strict'):
            lines = [format_problem(problem) for problem in problems]
            raise AnsibleParserError(
                '%s: %d problem%s in distributed_hosts file (strict: nothing was added to the inventory):\n  %s'
                % (model['source'], len(lines), '' if len(lines) == 1 else 's', '\n  '.join(lines)))
        for problem in problems:
            if problem.get('kept'):
                suffix = '; ' + problem['kept']
            else:
                suffix = '; host dropped' if problem.get('host') is not None else '; entry ignored'
            self.display.warning(format_problem(problem) + suffix)
        for warning in model['warnings']:
            self.display.warning(warning)
        if model['excluded']:
            self.display.vvv('%s: %d host(s) left out by status: %s' % (
                model['source'], len(model['excluded']), ', '.join(sorted(model['excluded']))))

    # -- applying

    def _apply(self, model):
        inventory = self.inventory
        compose = self.get_option('compose')
        groups = self.get_option('groups')
        keyed_groups = self.get_option('keyed_groups')
        strict = self.get_option('strict')
        constructed = bool(compose or groups or keyed_groups)

        new_groups = [name for name in model['groups'] if name not in inventory.groups]
        new_hosts = [name for name in model['hosts'] if name not in inventory.hosts]
        groups_before = set(inventory.groups)
        try:
            for group in model['groups']:
                inventory.add_group(group)
            for name, host in model['hosts'].items():
                inventory.add_host(name)
                host_vars = host['vars']
                for key, value in host_vars.items():
                    inventory.set_variable(name, key, value)
                for group in host['groups']:
                    inventory.add_child(group, name)
                if constructed:
                    # Like ansible.builtin.constructed: expressions may use the host's name.
                    template_vars = dict(host_vars, inventory_hostname=name)
                    self._set_composite_vars(compose, template_vars, name, strict=strict)
                    self._add_host_to_composed_groups(groups, template_vars, name, strict=strict)
                    self._add_host_to_keyed_groups(keyed_groups, template_vars, name, strict=strict)
        except Exception:
            self._roll_back(new_hosts, new_groups, groups_before)
            raise

    def _roll_back(self, new_hosts, new_groups, groups_before):
        """Remove what this source added before failing, so nothing is half-applied."""
        inventory = self.inventory
        for name in new_hosts:
            host = inventory.get_host(name)
            if host is not None:
                inventory.remove_host(host)
        for name in list(new_groups) + [g for g in list(inventory.groups) if g not in groups_before]:
            group = inventory.groups.get(name)
            if group is not None:
                inventory.remove_group(group)
