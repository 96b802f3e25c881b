# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse ``distributed_hosts.yaml`` and derive the fleet inventory model from it.

Controller-only (hence ``plugin_utils``: nothing here is shipped to a node), pure logic of
the ``ringrift.cluster.distributed_hosts`` inventory plugin, also used by
``benchmarks/inventory_bench.py``:

* :func:`load_document` turns the file's text into a *document*: the ``hosts`` and
  ``p2p_voters`` sections plus the line numbers of every host entry, every
  duplicated key (PyYAML silently keeps the last of two equal keys) and every key
  that YAML reads as something other than text (``010`` is the integer 8, ``1:30`` is
  90, ``on`` is true); such keys are taken out of the data and reported. Aliases that
  expand the data beyond a bound, or refer to themselves, are refused. The document
  is plain JSON-compatible data, so it can be cached.
* :func:`document_from_data` builds the same document from an already parsed dict.
* :func:`build_model` turns a document plus options into the model: per host the
  variables and groups, the groups to create, the problems found and the warnings.

Nothing here touches the network or the inventory; the inventory plugin decides
what to do with problems (``strict``) and applies the model.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.ringrift.cluster.plugins.module_utils.validate import is_valid
from ansible_collections.ringrift.cluster.plugins.module_utils.validate import problem as value_problem

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core on the controller
    yaml = None
    YAML_IMPORT_ERROR = True
else:
    YAML_IMPORT_ERROR = False


DEFAULT_SSH_PORT = 22
# Every SSH connection to the fleet (and through its jump hosts) trusts a host key on first use
# and records it here, the fleet's own file: a key that changes later fails that host's connection.
DEFAULT_KNOWN_HOSTS_FILE = '~/.ssh/ringrift_known_hosts'
DEFAULT_P2P_PORT = 8770

KNOWN_PROVIDERS = ('vast', 'runpod', 'vultr', 'nebius', 'hetzner', 'aws', 'local')
UNKNOWN_PROVIDER = 'unknown'
UNKNOWN_PROVIDER_GROUP = 'unknown_provider'

DEFAULT_PROVIDER_PREFIXES = dict((name, name) for name in KNOWN_PROVIDERS)
DEFAULT_CONTAINER_PROVIDERS = ('vast', 'runpod')

INACTIVE_STATUSES = ('terminated', 'offline', 'retired', 'archived')
# Every status the cluster's distributed_hosts.yaml uses. Any other value (a typo, a stray
# space) leaves the host out as inactive, with a warning: a rented machine whose status was
# meant to say "terminated" may by now belong to someone else.
KNOWN_STATUSES = ('ready', 'offline', 'retired', 'proxy_only', 'pending_setup', 'needs_setup', 'terminated', 'archived')

# Provider SSH gateways shared by many instances (Vast: ssh6.vast.ai, ssh6.vast.example):
# the SSH address is not the instance's own address, so it is never advertised to peers.
DEFAULT_SSH_GATEWAY_PATTERNS = (r'^ssh\d*\.vast\.',)

# Fixed groups, always created (possibly empty) so plays targeting them never miss.
GROUP_GPU = 'gpu'
GROUP_CPU_ONLY = 'cpu_only'
GROUP_CONTAINERIZED = 'containerized'
GROUP_VM_OR_METAL = 'vm_or_metal'
GROUP_P2P_VOTERS = 'p2p_voters'
GROUP_P2P_ENABLED = 'p2p_enabled'
GROUP_UNSUPPORTED_OS = 'unsupported_os'
FIXED_GROUPS = (GROUP_P2P_VOTERS, GROUP_P2P_ENABLED, GROUP_GPU, GROUP_CPU_ONLY, GROUP_CONTAINERIZED, GROUP_VM_OR_METAL,
                GROUP_UNSUPPORTED_OS)
# Group names a provider must not take: its hosts would land in a group with another meaning.
RESERVED_GROUPS = FIXED_GROUPS + ('all', 'ungrouped', UNKNOWN_PROVIDER_GROUP)
RESERVED_GROUP_PREFIXES = ('role_', 'status_')

# Aliases (*name) may add at most this many nodes to the data once expanded. PyYAML shares
# one object per anchor, but everything that walks the data (host variables, the cache,
# ansible-inventory --list) expands each use: nested anchors turn 400 bytes into gigabytes.
MAX_ALIAS_NODES = 100000
_GROUP_UNSAFE_RE = re.compile(r'[^A-Za-z0-9_]')
_GPU_COUNT_RE = re.compile(r'^\s*(\d+)\s*[xX\u00d7*]\s*(\S.*?)\s*$')
_VENV_RE = re.compile(r'''^\s*(?:(?:source|\.)\s+)?(["']?)(\S.*?)/bin/activate\1\s*(?:;\s*)?$''')
_NO_VENV_VALUES = ('', ':', 'true', 'none')
_NO_GPU_VALUES = ('', 'none', 'no', 'false', '0', 'n/a', 'cpu')

# GPU model classification. Order matters: unmistakable NVIDIA brand words first
# (so "Tesla M60" stays NVIDIA), then other vendors' accelerators, then NVIDIA model codes.
_NVIDIA_BRAND_RE = re.compile(r'\b(?:NVIDIA|GeForce|Tesla|Quadro|Titan|RTX|GTX|GRID|DGX|Jetson|CUDA)\b', re.I)
_NON_NVIDIA_RE = re.compile(
    r'\(MPS\)|\bMPS\b|\bApple\b|\bM[1-9]\d?\b|\bAMD\b|\bRadeon\b|\bInstinct\b|\bMI\d{2,3}[A-Z]?\b|\bROCm\b'
    r'|\bIntel\b|\bArc\b|\bGaudi\d*\b|\bHabana\b|\bTPU\b|\bInferentia\d*\b|\bTrainium\d*\b',
    re.I,
)
_NVIDIA_MODEL_RE = re.compile(r'\b(?:G[HB]\d{3}|[ABHLTVPK]\d{1,4}[A-Z]{0,3})\b')

# Operating systems. The collection manages Linux only: it reads /proc and runs the daemon under
# systemd or supervisor. An explicit ``os`` key names the family (case-insensitive); without one
# a host is taken to be Linux unless its entry shows macOS (an Apple GPU, a path under /Users/).
OS_LINUX = 'linux'
OS_DARWIN = 'darwin'
SUPPORTED_OS_FAMILIES = (OS_LINUX,)
_OS_FAMILIES = {
    'linux': OS_LINUX, 'ubuntu': OS_LINUX, 'debian': OS_LINUX, 'centos': OS_LINUX, 'rhel': OS_LINUX,
    'rocky': OS_LINUX, 'almalinux': OS_LINUX, 'fedora': OS_LINUX, 'amazon': OS_LINUX, 'amzn': OS_LINUX,
    'darwin': OS_DARWIN, 'macos': OS_DARWIN, 'mac': OS_DARWIN, 'osx': OS_DARWIN,
    'windows': 'windows', 'freebsd': 'freebsd', 'openbsd': 'openbsd',
}
# Apple silicon / Metal: "M3 Max/Ultra (MPS)", "Apple M2", "M1 Pro". Checked only on values that are not NVIDIA.
_APPLE_GPU_RE = re.compile(r'\bMPS\b|\bApple\b|\bM[1-9]\d?\s*(?:Pro|Max|Ultra)\b', re.I)
# Home directories of macOS; a node's own paths (ringrift_path, the venv), not the controller's ssh_key.
_MACOS_HOME_PREFIX = '/Users/'

_LOOPBACK_NAMES = ('localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback')

_STR_FIELDS = (
    'ssh_host', 'ssh_user', 'ssh_key', 'ssh_proxy', 'ringrift_path', 'venv_activate', 'role', 'status',
    'provider', 'p2p_public_host', 'public_ip', 'tailscale_ip', 'os',
)
# Values passed on to connection variables, ProxyCommand, peer URLs and role defaults:
# field -> kind of plugins/module_utils/validate.py. An empty string still means "absent".
_FIELD_KINDS = (
    ('ssh_host', 'host'), ('public_ip', 'host'), ('p2p_public_host', 'host'), ('tailscale_ip', 'host'),
    ('ssh_user', 'ssh_user'), ('ssh_key', 'path'), ('ringrift_path', 'path'), ('ssh_proxy', 'node_id'),
)
_BOOL_FIELDS = ('p2p_enabled', 'is_container')
_PORT_FIELDS = (('ssh_port', DEFAULT_SSH_PORT), ('p2p_port', DEFAULT_P2P_PORT))

_MAX_NAMES_IN_WARNING = 10


class DocumentError(Exception):
    """A problem with the file as a whole: it cannot be used at all."""


class OptionError(Exception):
    """A problem with the options given to build_model (the inventory source's settings)."""


def reserved_group(name):
    """The fixed or prefixed group that a provider named ``name`` would collide with, else None."""
    group = safe_group_name(name)
    if group in RESERVED_GROUPS or group.startswith(RESERVED_GROUP_PREFIXES):
        return group
    return None


def safe_group_name(name):
    """Return name with every character outside [A-Za-z0-9_] replaced by '_'."""
    safe = _GROUP_UNSAFE_RE.sub('_', str(name))
    if safe[:1].isdigit():
        safe = '_' + safe
    return safe


def is_loopback(address):
    """True for localhost names and loopback IPv4/IPv6 addresses."""
    if not address:
        return False
    address = str(address).strip().lower()
    if address in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip('[]')).is_loopback
    except ValueError:
        return False


def classify_gpu(value, extra_nvidia_patterns=()):
    """Classify a raw ``gpu`` value.

    Returns ``(count, model, kind)``; kind is ``'none'`` (no GPU: key absent, null,
    ``none``), ``'nvidia'``, ``'other'`` (a recognised non-NVIDIA accelerator such as
    Apple MPS or AMD Instinct) or ``'unknown'`` (a string this module cannot place).
    ``8x RTX 4090`` gives ``(8, 'RTX 4090', 'nvidia')``; ``H100 SXM`` gives ``(1, 'H100 SXM', 'nvidia')``.
    """
    if value is None or value is False:
        return 0, None, 'none'
    text = str(value).strip()
    if text.lower() in _NO_GPU_VALUES:
        return 0, None, 'none'
    match = _GPU_COUNT_RE.match(text)
    if match:
        count, model = int(match.group(1)), match.group(2)
    else:
        count, model = 1, text
    if count == 0:
        return 0, None, 'none'
    for pattern in extra_nvidia_patterns:
        if pattern.search(model):
            return count, model, 'nvidia'
    if _NVIDIA_BRAND_RE.search(model):
        return count, model, 'nvidia'
    if _NON_NVIDIA_RE.search(model):
        return count, model, 'other'
    if _NVIDIA_MODEL_RE.search(model):
        return count, model, 'nvidia'
    return count, model, 'unknown'


def venv_path(value):
    """``source X/bin/activate`` -> ``X``; ``":"``, empty or absent -> None.

    Returns ``(path, recognised)``; recognised is False for a command this function
    cannot read (the path is then None).
    """
    if value is None:
        return None, True
    text = str(value).strip()
    if text.lower() in _NO_VENV_VALUES:
        return None, True
    match = _VENV_RE.match(text)
    if match:
        return match.group(2), True
    return None, False


def os_family(entry, gpu_kind=None):
    """The OS family of a host entry and, when the collection cannot manage it, why.

    Returns ``(family, reason)``; ``reason`` is None for a Linux host. An explicit ``os`` key
    wins (``ubuntu`` is ``linux``, ``macos`` is ``darwin``, see ``_OS_FAMILIES``); without one an
    Apple GPU (``M3 Max/Ultra (MPS)``) or a node path under ``/Users/`` (``ringrift_path``, the venv
    of ``venv_activate``) means macOS, and anything else is taken to be Linux. ``gpu_kind`` is
    :func:`classify_gpu`'s kind: an NVIDIA GPU is never Apple's.
    """
    explicit = entry.get('os')
    if isinstance(explicit, str) and explicit.strip():
        family = _OS_FAMILIES.get(explicit.strip().lower(), explicit.strip().lower())
        evidence = 'os "%s"' % explicit
    else:
        family, evidence = OS_LINUX, None
        gpu = entry.get('gpu')
        venv, dummy = venv_path(entry.get('venv_activate'))
        if gpu_kind != 'nvidia' and isinstance(gpu, str) and _APPLE_GPU_RE.search(gpu):
            family, evidence = OS_DARWIN, 'gpu "%s" is an Apple GPU' % gpu
        else:
            for field, path in (('ringrift_path', entry.get('ringrift_path')), ('venv_activate', venv)):
                if isinstance(path, str) and path.startswith(_MACOS_HOME_PREFIX):
                    family, evidence = OS_DARWIN, '%s "%s" is under %s' % (field, path, _MACOS_HOME_PREFIX)
                    break
    if family in SUPPORTED_OS_FAMILIES:
        return family, None
    name = 'macOS' if family == OS_DARWIN else family
    return family, ('%s (%s): the collection manages Linux nodes only (it reads /proc and runs the daemon '
                    'under systemd or supervisor)' % (name, evidence))


def peer_url(address, port):
    """``http://<address>:<port>``, with IPv6 literals bracketed."""
    if ':' in address and not address.startswith('['):
        address = '[%s]' % address
    return 'http://%s:%d' % (address, port)


def host_key_options(known_hosts_file):
    """ssh options for trust on first use into ``known_hosts_file`` (OpenSSH's ``accept-new``).

    An unknown host's key is accepted and recorded; a recorded key that no longer matches makes
    ssh refuse the connection ("Host key verification failed"), so only that host fails.
    """
    return ['-o', 'StrictHostKeyChecking=accept-new', '-o', 'UserKnownHostsFile=' + known_hosts_file]


def ssh_common_args(known_hosts_file, proxy=None):
    """The ``ansible_ssh_common_args`` of a fleet host reached over SSH.

    ``proxy``: ``(address, port, user, key)`` of its ``ssh_proxy`` jump host, or None. The host key
    options come first (OpenSSH keeps the first value of an option) and the jump's own ssh gets
    the same ones, so every connection of the fleet uses one policy and one known-hosts file.
    """
    args = ' '.join(host_key_options(known_hosts_file))
    if proxy is not None:
        address, port, user, key = proxy
        args += ' ' + proxy_command_args(address, port, user, key, known_hosts_file=known_hosts_file)
    return args


def proxy_command_args(address, port, user=None, key=None, known_hosts_file=None):
    """Return an ``ansible_ssh_common_args`` value that tunnels through a jump host.

    ProxyJump cannot carry the jump host's key, so this is
    ``-o ProxyCommand="ssh -o BatchMode=yes [HOST KEY OPTIONS] -W '[%h]:%p' -p PORT -i KEY USER@HOST"``.
    Ansible splits the value with shlex (the double quotes); ssh expands the ``%`` tokens
    (a literal ``%`` in a word is doubled) and runs the command through ``$SHELL -c``
    (each word shell-quoted, a leading ``~/`` left for the shell to expand).

    ``[%h]:%p``: ``-W`` takes the last ``:`` as the port separator only inside brackets, so
    a bare IPv6 target (``2001:db8::5:22``) is refused while ``[2001:db8::5]:22``,
    ``[10.0.0.8]:22`` and ``[name]:22`` all work; single-quoted so that the shell does not
    read the brackets as a glob. ``BatchMode=yes``: the inner ssh talks to the terminal,
    not to Ansible, so a password, passphrase or host-key prompt would hang the run;
    it fails instead. ``known_hosts_file``: the jump host's key is trusted on first use into
    that file (:func:`host_key_options`); ssh expands its ``~`` itself, whatever the shell does.
    """
    head = ['ssh', '-o', 'BatchMode=yes']
    if known_hosts_file:
        options = host_key_options(known_hosts_file)
        head.extend(options[:-1] + ['UserKnownHostsFile=' + _shell_word(known_hosts_file, tilde=True)])
    words = ['-p', str(port)]
    if key:
        words.extend(['-i', _shell_word(key, tilde=True)])
    target = '%s@%s' % (user, address) if user else str(address)
    words.append(_shell_word(target))
    inner = ' '.join(_percent(w) for w in head) + " -W '[%h]:%p' " + ' '.join(_percent(w) for w in words)
    inner = inner.replace('\\', '\\\\').replace('"', '\\"')
    return '-o ProxyCommand="%s"' % inner


def _percent(word):
    return word.replace('%', '%%')


_SHELL_SAFE_RE = re.compile(r'^[A-Za-z0-9_@%+=:,./-]+$')


def _shell_word(word, tilde=False):
    word = str(word)
    if tilde and word.startswith('~/'):
        rest = word[2:]
        return '~/' + (_shell_word(rest) if rest else '')
    if _SHELL_SAFE_RE.match(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


# --------------------------------------------------------------------------- loading

def _make_loader_class():
    base = getattr(yaml, 'CSafeLoader', None) or yaml.SafeLoader

    class DistributedHostsLoader(base):  # pylint: disable=too-many-ancestors
        """Safe loader that keeps YAML timestamps as strings (JSON-safe, cacheable)."""

    DistributedHostsLoader.yaml_implicit_resolvers = dict(
        (first, [(tag, regexp) for tag, regexp in resolvers if tag != 'tag:yaml.org,2002:timestamp'])
        for first, resolvers in base.yaml_implicit_resolvers.items()
    )
    return DistributedHostsLoader


_LOADER_CLASS = None


def _loader_class():
    global _LOADER_CLASS  # pylint: disable=global-statement
    if _LOADER_CLASS is None:
        if YAML_IMPORT_ERROR:
            raise DocumentError('PyYAML is required to read distributed_hosts.yaml')
        _LOADER_CLASS = _make_loader_class()
    return _LOADER_CLASS


_STR_TAG = 'tag:yaml.org,2002:str'
_MERGE_TAG = 'tag:yaml.org,2002:merge'


def _key_lines(mapping_node):
    """Yield (key, line, value_node) for the string keys of a mapping node.

    Merge keys and keys YAML reads as something else (``8``, ``on``) are skipped: those are
    reported by _non_string_keys.
    """
    for key_node, value_node in mapping_node.value:
        if key_node.tag != _STR_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        yield key_node.value, key_node.start_mark.line + 1, value_node


def _duplicates(pairs):
    seen = {}
    for key, line, dummy in pairs:
        seen.setdefault(key, []).append(line)
    return dict((key, lines) for key, lines in seen.items() if len(lines) > 1)


def _non_string_keys(loader, mapping_node):
    """Yield (text, line, value) for each scalar key that YAML reads as other than a string."""
    for key_node, dummy in mapping_node.value:
        if key_node.tag in (_STR_TAG, _MERGE_TAG) or not isinstance(key_node, yaml.ScalarNode):
            continue
        try:
            value = loader.construct_object(key_node)
        except yaml.YAMLError:
            value = key_node.value
        yield key_node.value, key_node.start_mark.line + 1, value


def _non_string_message(what, text, value):
    return ('%s %s is read by YAML as %s, not as the text "%s": quote it (\'%s\')'
            % (what, text, _type_name(value), text, text))


def _check_aliases(root, source):
    """Refuse recursive aliases and aliases that add more than MAX_ALIAS_NODES nodes.

    Counts, without building anything, the nodes of the data as a walk over it sees them
    (every alias use expanded) against the nodes actually written.
    """
    expanded = {}  # id(node) -> node count of its subtree, aliases expanded
    on_path = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = ()
        if children_done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in children)
            continue
        if key in expanded:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                mark = child.start_mark
                raise DocumentError('%s: the YAML anchor (&name) at line %d is used by an alias (*name) inside itself: '
                                    'a recursive alias would make the data infinite' % (source, mark.line + 1))
            if id(child) not in expanded:
                stack.append((child, False))
    written = len(expanded)
    added = expanded[id(root)] - written
    if added > MAX_ALIAS_NODES:
        raise DocumentError('%s: YAML aliases (*name) expand the %d nodes written to %s nodes, more than %d added by aliases '
                            '(nested anchors?); refusing to load it'
                            % (source, written, expanded[id(root)] if added < 10 ** 12 else 'over 10^12', MAX_ALIAS_NODES))


def load_document(text, source='<distributed_hosts>'):
    """Parse the text of a distributed_hosts.yaml file into a document.

    Raises DocumentError for file-level problems (YAML syntax, not a mapping,
    ``hosts`` missing or not a mapping, a duplicated ``hosts``/``p2p_voters`` section,
    aliases that expand too far or refer to themselves).
    """
    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise DocumentError('%s: the file is empty' % source)
        if not isinstance(node, yaml.MappingNode):
            raise DocumentError('%s: the top level must be a mapping with a "hosts" section, found %s' % (source, _node_kind(node)))
        _check_aliases(node, source)
        top = list(_key_lines(node))
        for key, lines in _duplicates(top).items():
            if key in ('hosts', 'p2p_voters'):
                raise DocumentError('%s: top-level section "%s" appears more than once (lines %s)' % (source, key, _lines(lines)))
        host_lines = {}
        duplicate_hosts = {}
        duplicate_fields = {}
        key_problems = []
        hosts_line = None
        for key, line, value_node in top:
            if key != 'hosts':
                continue
            hosts_line = line
            if isinstance(value_node, yaml.MappingNode):
                for text, key_line, value in _non_string_keys(loader, value_node):
                    key_problems.append({'host': text, 'field': 'name', 'line': key_line, 'key': value,
                                         'message': _non_string_message('host name', text, value)})
                host_pairs = list(_key_lines(value_node))
                duplicate_hosts = _duplicates(host_pairs)
                for name, host_line, entry_node in host_pairs:
                    host_lines[name] = host_line
                    if not isinstance(entry_node, yaml.MappingNode):
                        continue
                    fields = _duplicates(_key_lines(entry_node))
                    if fields:
                        duplicate_fields.setdefault(name, {}).update(fields)
                    for text, key_line, value in _non_string_keys(loader, entry_node):
                        key_problems.append({'host': name, 'field': text, 'line': key_line, 'key': value,
                                             'message': _non_string_message('key', text, value)})
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = ' at line %d, column %d' % (mark.line + 1, mark.column + 1) if mark is not None else ''
        problem = ' '.join(str(part) for part in (exc.context, exc.problem) if part)
        raise DocumentError('%s: YAML syntax error%s: %s' % (source, where, problem or exc))
    except yaml.YAMLError as exc:
        raise DocumentError('%s: YAML error: %s' % (source, exc))
    except RecursionError:
        raise DocumentError('%s: YAML data is nested too deeply' % source)
    finally:
        loader.dispose()
    document = document_from_data(data, source, hosts_line=hosts_line, key_problems=key_problems)
    document['host_lines'] = host_lines
    document['duplicate_hosts'] = duplicate_hosts
    document['duplicate_fields'] = duplicate_fields
    return document


def _node_kind(node):
    if isinstance(node, yaml.SequenceNode):
        return 'a list'
    return 'a scalar (%r)' % (node.value,)


def _lines(lines):
    return ', '.join(str(line) for line in lines)


def _string_keys_only(hosts, key_problems):
    """Copy of ``hosts`` without non-string keys (host names and entry keys), each one reported.

    YAML 1.1 reads ``010`` and ``8`` as the same integer, ``1:30`` as 90 and ``on`` as true: such
    keys are never host names or settings, and a JSON cache would turn them into other strings.
    Keys already reported from the YAML text (``key_problems`` with the text as written) are
    not reported again; the others (from a parsed dict, or merged in with ``<<``) are reported
    here by value.
    """
    reported = set()
    for record in key_problems:
        reported.add((record['host'] if record['field'] != 'name' else None, _hashable(record['key'])))
    clean = {}
    for name, entry in hosts.items():
        if not isinstance(name, str):
            if (None, _hashable(name)) not in reported:
                key_problems.append({'host': str(name), 'field': 'name', 'line': None, 'key': name,
                                     'message': 'host name must be a string, found %s' % _type_name(name)})
            continue
        if isinstance(entry, dict) and not all(isinstance(key, str) for key in entry):
            for key in entry:
                if not isinstance(key, str) and (name, _hashable(key)) not in reported:
                    key_problems.append({'host': name, 'field': str(key), 'line': None, 'key': key,
                                         'message': 'key must be a string, found %s' % _type_name(key)})
            entry = dict((key, value) for key, value in entry.items() if isinstance(key, str))
        clean[name] = entry
    for record in key_problems:
        record.pop('key', None)  # the parsed value served only to match; the document stays JSON-safe
    return clean


def _hashable(key):
    # True == 1 and hash alike: keep them apart, as YAML does not merge them either.
    return (type(key).__name__, key) if isinstance(key, (bool, int, float, str)) or key is None else (type(key).__name__, repr(key))


def document_from_data(data, source='<distributed_hosts>', hosts_line=None, key_problems=None):
    """Build a document from parsed data (no line numbers, no duplicate detection).

    Non-string host names and entry keys are taken out and listed in ``key_problems``.
    """
    if not isinstance(data, dict):
        raise DocumentError('%s: the top level must be a mapping with a "hosts" section, found %s' % (source, type(data).__name__))
    if 'hosts' not in data:
        raise DocumentError('%s: no "hosts" section: the file must map host names to host entries under "hosts:"' % source)
    hosts = data['hosts']
    if not isinstance(hosts, dict):
        where = ' (line %d)' % hosts_line if hosts_line else ''
        raise DocumentError('%s: "hosts"%s must be a mapping of host name to host entry, found %s' % (source, where, _type_name(hosts)))
    voters = data.get('p2p_voters')
    if voters is None:
        voters = []
    if not isinstance(voters, list):
        raise DocumentError('%s: top-level "p2p_voters" must be a list of host names, found %s' % (source, _type_name(voters)))
    key_problems = list(key_problems or ())
    hosts = _string_keys_only(hosts, key_problems)
    return {
        'source': source,
        'hosts': hosts,
        'p2p_voters': voters,
        'host_lines': {},
        'duplicate_hosts': {},
        'duplicate_fields': {},
        'key_problems': key_problems,
    }


def _type_name(value):
    if isinstance(value, bool):
        return 'a boolean (%r)' % (value,)
    if isinstance(value, dict):
        return 'a mapping'
    if isinstance(value, list):
        return 'a list'
    if value is None:
        return 'nothing (null)'
    return '%s (%r)' % (type(value).__name__, value)


# --------------------------------------------------------------------------- model

def default_options():
    """Options of build_model with their defaults."""
    return {
        'provider_prefixes': {},
        'container_providers': list(DEFAULT_CONTAINER_PROVIDERS),
        'include_statuses': None,
        'exclude_statuses': list(INACTIVE_STATUSES),
        'prefer_tailscale': False,
        'nvidia_gpu_patterns': [],
        'ssh_gateway_patterns': list(DEFAULT_SSH_GATEWAY_PATTERNS),
        'known_hosts_file': DEFAULT_KNOWN_HOSTS_FILE,
    }


def format_problem(problem, source=None):
    """One line: ``FILE:LINE: host 'H': field 'F': message``."""
    parts = []
    src = source or problem.get('source')
    if src:
        parts.append(src + (':%d' % problem['line'] if problem.get('line') else ''))
    if problem.get('host') is not None:
        parts.append('host ' + _quoted(problem['host']))
    if problem.get('field'):
        parts.append('field ' + _quoted(problem['field']))
    parts.append(problem['message'])
    return ': '.join(parts)


def _quoted(text):
    """``'text'``; a name with a newline, a quote or another control character as its repr."""
    text = str(text)
    if text.isprintable() and "'" not in text:
        return "'%s'" % text
    return repr(text)


class _Builder(object):
    """One build_model run."""

    def __init__(self, document, options):
        self.doc = document
        self.source = document.get('source') or '<distributed_hosts>'
        opts = default_options()
        opts.update(dict((k, v) for k, v in (options or {}).items() if v is not None or k == 'include_statuses'))
        self.opts = opts
        prefixes = dict(DEFAULT_PROVIDER_PREFIXES)
        for prefix, provider in (opts['provider_prefixes'] or {}).items():
            if provider:
                prefixes[str(prefix).lower()] = str(provider)
            else:
                prefixes.pop(str(prefix).lower(), None)
        for prefix, provider in sorted(prefixes.items()):
            message = self.provider_problem(provider)
            if message:
                raise OptionError('provider_prefixes: prefix "%s": %s' % (prefix, message))
        self.prefixes = sorted(prefixes.items(), key=lambda item: -len(item[0]))
        self.providers = list(KNOWN_PROVIDERS) + sorted(set(p for p in prefixes.values() if p not in KNOWN_PROVIDERS))
        self.container_providers = set(str(p) for p in (opts['container_providers'] or ()))
        self.include_statuses = None if opts['include_statuses'] is None else set(str(s).lower() for s in opts['include_statuses'])
        self.exclude_statuses = set(str(s).lower() for s in (opts['exclude_statuses'] or ()))
        self.prefer_tailscale = bool(opts['prefer_tailscale'])
        self.nvidia_patterns = [re.compile(p, re.I) for p in (opts['nvidia_gpu_patterns'] or ())]
        self.gateway_patterns = [re.compile(p, re.I) for p in (opts['ssh_gateway_patterns'] or ())]
        self.known_hosts_file = opts['known_hosts_file']
        if not isinstance(self.known_hosts_file, str) or not is_valid('path', self.known_hosts_file):
            raise OptionError('known_hosts_file: %s' % value_problem('path', self.known_hosts_file, 'known_hosts_file'))
        self.problems = []
        self.warnings = []
        self._grouped_warnings = {}
        self.host_lines = document.get('host_lines') or {}

    # -- reporting
    def problem(self, host, field, message, line=None, kept=None):
        """Record a problem. ``kept``: how the host stays without ``strict`` (else it is dropped)."""
        if line is None and host is not None:
            line = self.host_lines.get(host)
        record = {'source': self.source, 'host': host, 'field': field, 'line': line, 'message': message}
        if kept:
            record['kept'] = kept
        self.problems.append(record)

    def warn_hosts(self, message, host):
        """Collect one warning per kind, listing the hosts concerned."""
        self._grouped_warnings.setdefault(message, []).append(host)

    def flush_warnings(self):
        for message, hosts in self._grouped_warnings.items():
            shown = ', '.join(hosts[:_MAX_NAMES_IN_WARNING])
            more = ' and %d more' % (len(hosts) - _MAX_NAMES_IN_WARNING) if len(hosts) > _MAX_NAMES_IN_WARNING else ''
            label = 'host' if len(hosts) == 1 else '%d hosts' % len(hosts)
            self.warnings.append('%s: %s (%s: %s%s)' % (self.source, message, label, shown, more))

    # -- per-host checks
    @staticmethod
    def provider_problem(provider):
        """Why ``provider`` cannot name a provider group, or None."""
        if not is_valid('provider', provider):
            return value_problem('provider', provider, 'provider')
        group = reserved_group(provider)
        if group:
            return ('provider "%s" would be group "%s", which the inventory fills by other rules (%s, role_*, status_*)'
                    % (provider, group, ', '.join(RESERVED_GROUPS)))
        return None

    def provider_for(self, name, entry):
        """Return (provider, warning or None)."""
        explicit = entry.get('provider')
        if explicit:
            message = self.provider_problem(explicit)
            if message:
                self.problem(name, 'provider', message, kept='host kept with provider "%s" (group %s)' % (UNKNOWN_PROVIDER, UNKNOWN_PROVIDER_GROUP))
                return UNKNOWN_PROVIDER, None
            if explicit not in self.providers:
                return explicit, 'explicit "provider" is not a known provider (known: %s); used as given' % ', '.join(self.providers)
            return explicit, None
        lowered = name.lower()
        for prefix, provider in self.prefixes:
            if lowered.startswith(prefix):
                rest = lowered[len(prefix):]
                if not rest or not rest[0].isalpha():
                    return provider, None
        if entry.get('role') == 'coordinator' or is_loopback(entry.get('ssh_host')):
            return 'local', None
        return UNKNOWN_PROVIDER, 'no provider: host name matches no provider prefix and no "provider" key is set; group %s' % UNKNOWN_PROVIDER_GROUP

    def check_entry(self, name, entry):
        """Type checks of the fields this module reads. Returns the set of bad fields."""
        bad = set()
        for field in _STR_FIELDS:
            value = entry.get(field)
            if value is not None and not isinstance(value, str):
                self.problem(name, field, 'must be a string, found %s' % _type_name(value))
                bad.add(field)
        for field in _BOOL_FIELDS:
            value = entry.get(field)
            if value is not None and not isinstance(value, bool):
                self.problem(name, field, 'must be true or false, found %s' % _type_name(value))
                bad.add(field)
        for field, dummy in _PORT_FIELDS:
            value = entry.get(field)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not is_valid('port', str(value)):
                self.problem(name, field, 'must be an integer port in 1..65535, found %s' % _type_name(value))
                bad.add(field)
        vram = entry.get('gpu_vram_gb')
        if vram is not None and (isinstance(vram, bool) or not isinstance(vram, (int, float))):
            self.problem(name, 'gpu_vram_gb', 'must be a number of GiB, found %s' % _type_name(vram))
            bad.add('gpu_vram_gb')
        gpu = entry.get('gpu')
        if gpu is not None and not isinstance(gpu, (str, bool)):
            self.problem(name, 'gpu', 'must be a string such as "8x RTX 4090" or "none", found %s' % _type_name(gpu))
            bad.add('gpu')
        for field, kind in _FIELD_KINDS:
            value = entry.get(field)
            if field not in bad and isinstance(value, str) and value != '' and not is_valid(kind, value):
                self.problem(name, field, value_problem(kind, value, 'value'))
                bad.add(field)
        system = entry.get('os')
        if 'os' not in bad and isinstance(system, str) and system.strip() and system.strip().lower() not in _OS_FAMILIES:
            self.problem(name, 'os', 'unknown operating system "%s": one of %s (case-insensitive)'
                         % (system, ', '.join(sorted(_OS_FAMILIES))))
            bad.add('os')
        activate = entry.get('venv_activate')
        if 'venv_activate' not in bad and isinstance(activate, str):
            venv, dummy = venv_path(activate)
            if venv is not None and not is_valid('path', venv):
                self.problem(name, 'venv_activate', value_problem('path', venv, 'the venv path'))
                bad.add('venv_activate')
        return bad

    def base_facts(self, name, entry, bad):
        if bad:
            entry = dict((key, value) for key, value in entry.items() if key not in bad)
        facts = {}
        facts['provider'], facts['provider_warning'] = self.provider_for(name, entry)
        is_container = entry.get('is_container')
        if isinstance(is_container, bool):
            facts['containerized'] = is_container
        else:
            facts['containerized'] = facts['provider'] in self.container_providers
        facts['ssh_host'] = entry.get('ssh_host')
        facts['ssh_port'] = entry.get('ssh_port') if entry.get('ssh_port') is not None else DEFAULT_SSH_PORT
        facts['p2p_port'] = entry.get('p2p_port') if entry.get('p2p_port') is not None else DEFAULT_P2P_PORT
        facts['advertise'] = self.advertise_host(entry)
        facts['status'] = entry.get('status')
        return facts

    def advertise_host(self, entry):
        if self.prefer_tailscale and entry.get('tailscale_ip'):
            return entry['tailscale_ip']
        for field in ('p2p_public_host', 'public_ip'):
            if entry.get(field):
                return entry[field]
        ssh_host = entry.get('ssh_host')
        if not ssh_host or is_loopback(ssh_host):
            return None
        for pattern in self.gateway_patterns:
            if pattern.search(ssh_host):
                return None
        return ssh_host

    def included(self, status):
        key = status.lower() if isinstance(status, str) else None
        if self.include_statuses is not None:
            return key in self.include_statuses
        if key is not None and key not in KNOWN_STATUSES:
            return False
        return key not in self.exclude_statuses

    def unknown_status(self, status):
        """True for a status outside KNOWN_STATUSES that include_statuses does not name."""
        if not isinstance(status, str) or status.lower() in KNOWN_STATUSES:
            return False
        return self.include_statuses is None or status.lower() not in self.include_statuses

    # -- the run
    def run(self):
        doc = self.doc
        raw_hosts = doc['hosts']
        entries = {}
        facts = {}
        invalid = set()

        for record in doc.get('key_problems') or ():
            self.problem(record['host'], record['field'], record['message'], line=record.get('line'))
            invalid.add(record['host'])
        for name, entry in raw_hosts.items():
            if not isinstance(name, str):  # a document from an older cache; load_document takes them out
                self.problem(str(name), 'name', 'host name must be a string, found %s' % _type_name(name))
                continue
            if not is_valid('node_id', name):
                self.problem(name, 'name', value_problem('node_id', name, 'host name'))
                invalid.add(name)
            dup = doc.get('duplicate_hosts', {}).get(name)
            if dup:
                self.problem(name, 'name', 'host is defined more than once (lines %s); YAML would silently keep only the last' % _lines(dup),
                             line=dup[-1])
                invalid.add(name)
            if not isinstance(entry, dict):
                self.problem(name, 'entry', 'host entry must be a mapping of settings, found %s' % _type_name(entry))
                invalid.add(name)
                continue
            for field, lines in sorted(doc.get('duplicate_fields', {}).get(name, {}).items()):
                self.problem(name, field, 'field appears more than once in the entry (lines %s)' % _lines(lines), line=lines[-1])
                invalid.add(name)
            bad = self.check_entry(name, entry)
            if bad:
                invalid.add(name)
            entries[name] = entry
            facts[name] = self.base_facts(name, entry, bad)

        # ssh_proxy targets
        proxies = {}
        for name, entry in entries.items():
            target = entry.get('ssh_proxy')
            if target is None or not isinstance(target, str):
                continue
            if target not in entries:
                self.problem(name, 'ssh_proxy', '"%s" is not a host in the file' % target)
            elif target == name:
                self.problem(name, 'ssh_proxy', 'a host cannot be its own proxy')
            elif entries[target].get('ssh_proxy'):
                self.problem(name, 'ssh_proxy', 'proxy "%s" itself uses ssh_proxy; chained proxies are not supported' % target)
            elif not facts[target]['ssh_host']:
                self.problem(name, 'ssh_proxy', 'proxy "%s" has no ssh_host' % target)
            elif target in invalid:
                self.problem(name, 'ssh_proxy', 'proxy "%s" has problems of its own and was dropped' % target)
            else:
                proxies[name] = target
                continue
            invalid.add(name)

        # voters
        voters = []
        for index, voter in enumerate(doc['p2p_voters']):
            if not isinstance(voter, str):
                hint = '; quote it' if voter is not None and not isinstance(voter, (dict, list)) else ''
                self.problem(None, 'p2p_voters', 'entry %d must be a host name, found %s%s' % (index + 1, _type_name(voter), hint))
            elif voter not in entries and voter not in invalid:
                self.problem(None, 'p2p_voters', 'voter "%s" is not a host in the file' % voter)
            elif voter in voters:
                self.warn_hosts('listed more than once in p2p_voters; counted once', voter)
            else:
                voters.append(voter)
        voter_set = set(voters)
        voter_urls = []
        for voter in voters:
            if voter in invalid:
                self.warn_hosts('voter has problems and is left out of ringrift_p2p_peers', voter)
                continue
            fact = facts[voter]
            if not fact['advertise']:
                self.warn_hosts('voter has no advertise address (p2p_public_host, public_ip, or a non-gateway ssh_host) '
                                'and is left out of ringrift_p2p_peers', voter)
                continue
            if not self.included(fact['status']):
                self.warn_hosts('voter has an inactive status but stays in p2p_voters (quorum counts the whole list)', voter)
            voter_urls.append((voter, peer_url(fact['advertise'], fact['p2p_port'])))
        all_peer_urls = [url for dummy, url in voter_urls]

        groups = list(FIXED_GROUPS) + [safe_group_name(p) for p in self.providers]
        group_seen = set(groups)
        hosts = {}
        excluded = {}
        dropped = sorted(invalid)
        for name, entry in entries.items():
            if name in invalid:
                continue
            fact = facts[name]
            if self.unknown_status(fact['status']):
                self.warn_hosts('status "%s" is not a known status (%s); host left out as inactive: correct it, '
                                'or name it in include_statuses' % (fact['status'], ', '.join(KNOWN_STATUSES)), name)
            if not self.included(fact['status']):
                excluded[name] = fact['status']
                continue
            host_vars, host_groups = self.host_result(name, entry, fact, voters, voter_set, all_peer_urls, voter_urls, entries, facts, proxies)
            for group in host_groups:
                if group not in group_seen:
                    group_seen.add(group)
                    groups.append(group)
            hosts[name] = {'vars': host_vars, 'groups': host_groups}

        self.flush_warnings()
        return {
            'source': self.source,
            'hosts': hosts,
            'groups': groups,
            'excluded': excluded,
            'dropped': dropped,
            'p2p_voters': voters,
            'problems': self.problems,
            'warnings': self.warnings,
        }

    def host_result(self, name, entry, fact, voters, voter_set, all_peer_urls, voter_urls, entries, facts, proxies):
        # pylint: disable=too-many-arguments,too-many-locals
        provider = fact['provider']
        if fact['provider_warning']:
            self.warn_hosts(fact['provider_warning'], name)
        if 'p2p_voter' in entry:
            self.warn_hosts('per-host "p2p_voter" is ignored: the top-level p2p_voters list is the single source of truth', name)
        host_vars = {}
        if fact['ssh_host']:
            host_vars['ansible_host'] = fact['ssh_host']
        host_vars['ansible_port'] = fact['ssh_port']
        if entry.get('ssh_user'):
            host_vars['ansible_user'] = entry['ssh_user']
        if entry.get('ssh_key'):
            host_vars['ansible_ssh_private_key_file'] = entry['ssh_key']
        if name in proxies:
            target = proxies[name]
            proxy_entry = entries[target]
            host_vars['ansible_ssh_common_args'] = ssh_common_args(self.known_hosts_file, proxy=(
                facts[target]['ssh_host'], facts[target]['ssh_port'], proxy_entry.get('ssh_user'), proxy_entry.get('ssh_key')))
        elif provider == 'local' and is_loopback(fact['ssh_host']) and fact['ssh_port'] == DEFAULT_SSH_PORT:
            host_vars['ansible_connection'] = 'local'
        else:
            host_vars['ansible_ssh_common_args'] = ssh_common_args(self.known_hosts_file)

        count, model, kind = classify_gpu(entry.get('gpu'), self.nvidia_patterns)
        if kind == 'unknown':
            self.warn_hosts('"gpu" value is not recognised as an NVIDIA or other known accelerator; host is in neither '
                            '"gpu" nor "cpu_only" (extend nvidia_gpu_patterns if it is NVIDIA)', name)
        vram = entry.get('gpu_vram_gb')
        if isinstance(vram, float):
            vram = int(round(vram))
        venv, recognised = venv_path(entry.get('venv_activate'))
        if not recognised:
            self.warn_hosts('"venv_activate" is not of the form "source <venv>/bin/activate"; ringrift_venv_path is null', name)
        is_voter = name in voter_set
        if is_voter:
            peers = [url for voter, url in voter_urls if voter != name]
        else:
            peers = all_peer_urls
        status = fact['status']
        role = entry.get('role')

        host_vars['ringrift_provider'] = provider
        host_vars['ringrift_containerized'] = fact['containerized']
        host_vars['ringrift_path'] = entry.get('ringrift_path')
        host_vars['ringrift_venv_path'] = venv
        host_vars['ringrift_gpu_count'] = count
        host_vars['ringrift_gpu_model'] = model
        host_vars['ringrift_gpu_vram_gb'] = vram
        host_vars['ringrift_nvidia_gpu'] = kind == 'nvidia'
        host_vars['ringrift_is_voter'] = is_voter
        host_vars['ringrift_p2p_voters'] = voters
        host_vars['ringrift_p2p_enabled'] = entry.get('p2p_enabled') is True
        host_vars['ringrift_p2p_port'] = fact['p2p_port']
        host_vars['ringrift_advertise_host'] = fact['advertise']
        host_vars['ringrift_p2p_peers'] = peers
        host_vars['ringrift_role'] = role
        host_vars['ringrift_status'] = status
        host_vars['ringrift_ssh_proxy'] = proxies.get(name)
        host_vars['ringrift_host_config'] = entry
        host_vars['ringrift_os_family'], host_vars['ringrift_unsupported_os'] = os_family(entry, kind)

        host_groups = [UNKNOWN_PROVIDER_GROUP if provider == UNKNOWN_PROVIDER else safe_group_name(provider)]
        host_groups.append(GROUP_CONTAINERIZED if fact['containerized'] else GROUP_VM_OR_METAL)
        if kind == 'nvidia':
            host_groups.append(GROUP_GPU)
        elif kind == 'none':
            host_groups.append(GROUP_CPU_ONLY)
        if is_voter:
            host_groups.append(GROUP_P2P_VOTERS)
        if host_vars['ringrift_p2p_enabled']:
            host_groups.append(GROUP_P2P_ENABLED)
        if role:
            host_groups.append('role_' + _GROUP_UNSAFE_RE.sub('_', role))
        if status:
            host_groups.append('status_' + _GROUP_UNSAFE_RE.sub('_', status))
        if host_vars['ringrift_unsupported_os']:
            host_groups.append(GROUP_UNSUPPORTED_OS)
        return host_vars, host_groups


def build_model(document, options=None):
    """Derive the inventory model from a document (see load_document).

    Hosts with problems are left out of ``hosts`` and listed in ``dropped``; the
    problems themselves are in ``problems`` (dicts with source, host, field, line,
    message; see format_problem). Hosts filtered out by status are in ``excluded``.
    """
    return _Builder(document, options).run()
