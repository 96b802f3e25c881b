# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.fleet_alert_send_errors."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_alert_send_errors
short_description: Say which alert webhooks refused a message, without repeating anything secret
version_added: 0.3.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Input is the C(results) list of a looped C(ansible.builtin.uri) task that posted to webhooks with
    C(failed_when) false, C(no_log) and the target's kind (C(slack), C(discord), C(webhook)) as loop item.
  - Returns one line per target that did not answer 2xx, naming the kind and the HTTP status only.
    The request URL, the response body and the module's message are left out on purpose, since any of them
    may repeat the webhook's secret path.
options:
  _input:
    description: The registered loop results.
    type: list
    elements: dict
    required: true
  timeout:
    description: The request timeout in seconds, quoted in the line for a target that never answered.
    type: raw
"""

EXAMPLES = r"""
- name: Fail when a webhook refused the alert
  ansible.builtin.fail:
    msg: "{{ sent.results | ringrift.cluster.fleet_alert_send_errors(timeout=10) | join('; ') }}"
  when: sent.results | ringrift.cluster.fleet_alert_send_errors | length > 0
"""

RETURN = r"""
_value:
  description: "Lines like C(slack: HTTP 404) or C(webhook: no HTTP answer (connection refused, DNS or TLS failure or over 10 s))."
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def fleet_alert_send_errors(results, timeout=None):
    """See DOCUMENTATION."""
    if not isinstance(results, list):
        raise AnsibleFilterError("fleet_alert_send_errors: input must be the loop's results list, got %s"
                                 % type(results).__name__)
    errors = []
    for result in results:
        if not isinstance(result, Mapping) or result.get("skipped"):
            continue
        target = result.get("item") if isinstance(result.get("item"), str) else "target"
        status = result.get("status")
        if isinstance(status, int) and not isinstance(status, bool) and 200 <= status < 300:
            continue
        if isinstance(status, int) and not isinstance(status, bool) and status > 0:
            errors.append("%s: HTTP %d" % (target, status))
        else:
            within = " or over %s s" % timeout if timeout not in (None, "") else ""
            errors.append("%s: no HTTP answer (connection refused, DNS or TLS failure%s)" % (target, within))
    return errors


class FilterModule:
    def filters(self):
        return {"fleet_alert_send_errors": fleet_alert_send_errors}
