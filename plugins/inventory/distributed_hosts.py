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
  - Reads the cluster's own C(distributed_hosts.yaml) (the file the P2P daemon, data sync and Elo sync
    already use) and turns it into an inventory, so there is never a second, hand-written one.
  - The inventory source is a YAML file whose name ends in C(distributed_hosts.yml) or
    C(distributed_hosts.yaml), with O(plugin) and O(path); see EXAMPLES.
  - Only the top-level C(hosts) mapping and C(p2p_voters) list are read; other top-level sections
    and unknown per-host keys are tolerated and kept.
  - "Groups: one per provider (V(vast), V(runpod), V(vultr), V(nebius), V(hetzner), V(aws), V(local), plus the providers
    named in O(provider_prefixes)) and V(unknown_provider) for hosts no rule places (with a warning).
    The provider is the host's own C(provider) key, else the longest matching host-name prefix of
    O(provider_prefixes) (the prefix must be followed by a non-letter or the end of the name),
    else V(local) for coordinator machines (C(role: coordinator) or a loopback C(ssh_host))."
  - "A provider is a name of letters, digits, C(_) and C(-) starting with a letter, and its group must not be one
    the inventory fills by other rules (V(gpu), V(cpu_only), V(containerized), V(vm_or_metal), V(p2p_voters),
    V(p2p_enabled), V(unknown_provider), V(all), V(ungrouped), C(role_*), C(status_*); C(-) counts as C(_)), or
    C(provider: p2p_voters) would make a non-voter a voter. A C(provider) key breaking this is a problem naming the
    file, host and field: an error with O(strict), otherwise a warning and the host is kept in V(unknown_provider).
    In O(provider_prefixes) it is an error."
  - "V(containerized) (containers without systemd: the host's C(is_container) key, else whether its provider is in
    O(container_providers)) and V(vm_or_metal) for all others."
  - "V(p2p_voters): exactly the hosts of the top-level C(p2p_voters) list (a per-host C(p2p_voter) key is ignored
    with a warning). V(p2p_enabled): hosts with C(p2p_enabled: true)."
  - "V(gpu): hosts whose C(gpu) value names an NVIDIA GPU (the CUDA-check targets): brand words (NVIDIA, GeForce,
    Tesla, Quadro, Titan, RTX, GTX, GRID) or NVIDIA model codes (A100, A100D-20C (vGPU), A40, A10, L40S, L4, H100,
    H200, B200, GH200, T4, V100, P100 ...). V(cpu_only): no C(gpu) key, C(gpu: none) or a null value.
    Other accelerators (Apple MPS and M-series, AMD Radeon/Instinct/MI300, Intel, TPU ...) are in neither group.
    A C(gpu) string matching none of these rules is in neither group either and produces a warning; add a
    pattern to O(nvidia_gpu_patterns) if it is an NVIDIA model."
  - "V(role_<role>) and V(status_<status>) for each C(role) and C(status) value, characters outside C([A-Za-z0-9_])
    replaced by C(_)."
  - The fixed groups (providers, V(gpu), V(cpu_only), V(containerized), V(vm_or_metal), V(p2p_voters), V(p2p_enabled),
    V(unsupported_os))
    always exist, possibly empty, so plays targeting them never fail to match.
  - "Connection variables: C(ansible_host) (C(ssh_host)), C(ansible_port) (C(ssh_port), default 22), C(ansible_user)
    (C(ssh_user)), C(ansible_ssh_private_key_file) (C(ssh_key)), and C(ansible_ssh_common_args) for every host reached
    over SSH: C(-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=FILE) with FILE from O(known_hosts_file)."
  - "Host keys are trusted on first use: the first connection to a host records its key in O(known_hosts_file)
    (the fleet's own file, default C(~/.ssh/ringrift_known_hosts)); from then on a different key makes OpenSSH refuse
    the connection (C(Host key verification failed)), so that host alone is unreachable and the run names it. After
    replacing an instance on purpose, remove its old key, for example
    C(ssh-keygen -R '[ssh6.vast.example]:19528' -f ~/.ssh/ringrift_known_hosts). OpenSSH keeps the first value of an option,
    so C(host_key_checking = False) (C(ANSIBLE_HOST_KEY_CHECKING=False)), which makes Ansible put
    C(-o StrictHostKeyChecking=no) ahead of these, switches the check off: leave it unset."
  - "A host with C(ssh_proxy: <other host>) gets, after those options, C(-o ProxyCommand=\"ssh -o BatchMode=yes
    -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=FILE -W '[%h]:%p' -p PORT -i KEY USER@HOST\")
    built from the other host's address, port, user and key (ProxyJump cannot carry a key): the jump host's key is
    checked the same way, in the same file. C([%h]:%p) also works for
    an IPv6 target; C(BatchMode=yes) makes the jump fail instead of waiting for a password or passphrase
    that Ansible never sees (so the jump's private key must load without a prompt - unencrypted or in
    ssh-agent). Chained proxies are refused.
    A host of provider V(local) whose C(ssh_host) is loopback and whose SSH port is 22 gets C(ansible_connection: local)
    (and no SSH options); a loopback address with another port is taken to be an SSH tunnel and keeps SSH."
  - "V(unsupported_os): hosts the collection cannot manage (it reads C(/proc) and runs the daemon under systemd or
    supervisor, so Linux only). The host's own C(os) key decides when present (V(linux), V(ubuntu), V(debian), ... are
    Linux; V(darwin), V(macos), V(mac), V(osx), V(windows), V(freebsd), V(openbsd) are not; any other value is a
    problem naming the field); without it a C(gpu) naming an Apple GPU (C(MPS), C(Apple), C(M3 Max)) or a
    C(ringrift_path) or venv under C(/Users/) means macOS, and every other host is taken to be Linux.
    C(ringrift_os_family) is the family (V(linux), V(darwin), ...) and C(ringrift_unsupported_os) the reason, or null.
    C(playbooks/site.yml) leaves these hosts out of the converge with that reason; the audit reports them as
    C(unsupported_os) without connecting to them. Set C(os: linux) on a host this guesses wrong."
  - "Derived variables, all prefixed C(ringrift_) (the contract in docs/architecture.md): C(ringrift_provider)
    (provider, or V(unknown)), C(ringrift_containerized), C(ringrift_path) (the C(ringrift_path) key, null if absent),
    C(ringrift_venv_path) (C(source X/bin/activate) gives X; C(\":\") or absent gives null), C(ringrift_gpu_count)
    and C(ringrift_gpu_model) (C(8x RTX 4090) gives 8 and C(RTX 4090); C(H100 SXM) gives 1 and C(H100 SXM); 0 and null
    without GPU; other accelerators are counted too), C(ringrift_gpu_vram_gb), C(ringrift_nvidia_gpu),
    C(ringrift_is_voter), C(ringrift_p2p_voters) (the voter list), C(ringrift_p2p_enabled), C(ringrift_p2p_port)
    (C(p2p_port), default 8770), C(ringrift_advertise_host), C(ringrift_p2p_peers), C(ringrift_role),
    C(ringrift_status), C(ringrift_ssh_proxy) (name of the jump host or null), C(ringrift_os_family) and
    C(ringrift_unsupported_os) (see V(unsupported_os)), C(ringrift_host_config)
    (every raw key of the host's entry) and C(ringrift_fleet_file) (the absolute path of the file read, which
    C(ringrift.cluster.p2p_daemon) deploys into the daemon's tree)."
  - "C(ringrift_advertise_host) is C(tailscale_ip) when O(prefer_tailscale) is set and the host has one, else
    C(p2p_public_host), else C(public_ip), else C(ssh_host) unless that is loopback or a provider's shared SSH
    gateway (O(ssh_gateway_patterns), Vast's C(sshN.vast.ai)); otherwise null."
  - "C(ringrift_p2p_peers) lists C(http://<advertise host>:<p2p port>) of every voter except the host itself, in
    C(p2p_voters) order. Voters without an advertise host are left out with a warning. Voters filtered out by
    status stay in (quorum counts the whole list), with a warning."
  - C(ringrift_host_config) keeps every key of the entry, including secrets such as C(*token*), C(*password*) or
    C(*secret*) keys. Playbooks and reports must never print C(ringrift_host_config) or those keys.
  - "Inventory values are not templates: a C({{ }}) inside C(distributed_hosts.yaml) stays literal text.
    YAML dates stay strings."
  - "Hosts are filtered by C(status) (O(include_statuses), O(exclude_statuses)); by default every host except
    inactive ones (V(terminated), V(offline), V(retired), V(archived))."
  - "Known statuses (case-insensitive): V(ready), V(offline), V(retired), V(proxy_only), V(pending_setup),
    V(needs_setup), V(terminated), V(archived); a host without C(status) counts as active. Any other value (a typo
    such as C(raedy), a stray space as in C(' ready')) gives a warning naming the host and the value, and the host is
    left out as inactive - a rented machine meant to be C(terminated) may by now belong to someone else - unless
    O(include_statuses) names that value."
  - "Bad input gives an error naming the file, the line, the host and the field: unreadable or missing file,
    YAML syntax errors, C(hosts) missing or not a mapping, a host entry that is not a mapping, a host name defined
    twice (both lines), two equal keys in one entry, C(ssh_port)/C(p2p_port) not an integer in 1..65535, wrong value
    types for the keys read here, and a C(p2p_voters) entry or C(ssh_proxy) target that is not a host."
  - "Every value passed on is checked whole (never a prefix, never with a trailing newline), with the kinds of
    C(plugins/module_utils/validate.py) that the C(ringrift.cluster.valid) test also uses: host names (letters,
    digits, C(.), C(_), C(-), not starting with C(.) or C(-), at most 128 characters; also C(ssh_proxy));
    C(ssh_host), C(public_ip), C(p2p_public_host), C(tailscale_ip) (a host name or IP address, no spaces, not
    starting with C(-), so never an ssh option); C(ssh_user) (a login name not starting with C(-) or C(.));
    C(ssh_key), C(ringrift_path) and the venv of C(venv_activate) (absolute or C(~/...), without spaces, quotes,
    C(%) or C($)). An empty string still means the key is absent."
  - "Keys are checked in the YAML text, before YAML converts them: a host name or entry key that YAML 1.1 reads as
    something other than a string (C(010) and C(8) are both the integer 8, C(1:30) is 90, C(on) is true, C(null))
    is a problem saying so; quote it (C('010'))."
  - "With O(strict) every host-level problem is collected and reported in one error before anything is added to
    the inventory; without it each broken host is dropped with a warning (a bad C(provider) keeps the host, see
    above) and the rest is kept. File-level problems are always errors."
  - "File-level limits: O(path) must be a regular file (or a symlink to one) of at most 16 MiB; a FIFO, device,
    socket or directory is refused without being opened for reading, so it cannot hang the inventory. YAML aliases
    (C(*name)) may add at most 100000 nodes once expanded, and an alias inside its own anchor is refused: a few
    hundred bytes of nested anchors would otherwise expand to gigabytes wherever the data is walked
    (C(ringrift_host_config), the cache, C(ansible-inventory --list))."
  - The parsed file is cached (O(cache)) under a key made of the source's path and a hash of the data file's
    path and content, so any edit of C(distributed_hosts.yaml) invalidates it; a cache hit skips YAML parsing.
    The file itself is still read to compute the hash.
  - The data file may be encrypted with ansible-vault. A vault-encrypted file is never cached, whatever O(cache)
    says (the cache would hold its decrypted content in plain text); it is decrypted and parsed on every run, and
    a cache entry that an earlier version of this plugin wrote for it is removed, with a warning.
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
