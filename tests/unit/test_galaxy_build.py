# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as Galaxy users get it: the tarball `ansible-galaxy collection build` makes.

It ships the licence it declares and what runs, never the repository's tests and tooling;
galaxy.yml names no invented URL; the version it builds is a released one in the changelog.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import re
import subprocess
import tarfile

import pytest
import yaml

from ansible_collections.ringrift.cluster.tests.helpers import BIN, REPO, ansible_env

# Top-level entries of the repository that are development tooling, not the collection.
NOT_SHIPPED = ("tests", "molecule", "benchmarks", "tools", ".ci", ".github", "reports", "build",
               "collections", "config", "context", ".venv", ".git", "Makefile", "ansible.cfg",
               "requirements-dev.txt", "requirements-dev.lock", "execution-environment.yml",
               ".ansible-lint", ".yamllint", ".gitignore")
SHIPPED = ("LICENSE", "README.md", "CHANGELOG.rst", "changelogs/changelog.yaml", "meta/runtime.yml",
           "meta/execution-environment.yml", "requirements.yml", "bindep.txt", "docs/operator-first-day.md",
           "docs/ansible.cfg.example", "playbooks/site.yml", "playbooks/audit.yml",
           "plugins/inventory/distributed_hosts.py", "roles/p2p_service/meta/argument_specs.yml")
# Keys whose values would be links on the collection's Galaxy page.
URL_KEYS = ("repository", "documentation", "homepage", "issues")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def galaxy():
    return load(os.path.join(REPO, "galaxy.yml"))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(dist), REPO],
                          cwd=str(dist), env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = glob.glob(str(dist / "ringrift-cluster-*.tar.gz"))
    assert len(built) == 1, built
    with tarfile.open(built[0]) as tar:
        members = {member.name: member for member in tar.getmembers()}
        licence = tar.extractfile(members["LICENSE"]).read().decode() if "LICENSE" in members else None
        manifest = json.loads(tar.extractfile(members["MANIFEST.json"]).read())
    return {"path": built[0], "names": set(members), "licence": licence, "manifest": manifest}


def test_the_tarball_ships_the_gpl3_text_it_declares(tarball, galaxy):
    assert galaxy["license"] == ["GPL-3.0-or-later"]
    assert tarball["manifest"]["collection_info"]["license"] == ["GPL-3.0-or-later"]
    assert tarball["licence"] is not None, "LICENSE missing from %s" % tarball["path"]
    with open(os.path.join(REPO, "LICENSE")) as handle:
        assert tarball["licence"] == handle.read()
    text = " ".join(tarball["licence"].split())
    assert text.startswith("GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007")
    # The whole text, not a notice pointing elsewhere.
    assert "END OF TERMS AND CONDITIONS" in text and "How to Apply These Terms to Your New Programs" in text


def test_the_tarball_leaves_tests_and_tooling_out(tarball):
    top = set(name.split("/", 1)[0] for name in tarball["names"])
    assert not top & set(NOT_SHIPPED), sorted(top & set(NOT_SHIPPED))
    assert not [name for name in tarball["names"] if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in tarball["names"] if name.startswith("changelogs/fragments/")]


def test_the_tarball_ships_what_runs_and_its_documentation(tarball, galaxy):
    missing = [name for name in SHIPPED if name not in tarball["names"]]
    assert not missing, missing
    assert os.path.basename(tarball["path"]) == "ringrift-cluster-%s.tar.gz" % galaxy["version"]


def test_galaxy_yml_names_no_invented_url_or_address(galaxy):
    for key in URL_KEYS:
        value = galaxy.get(key)
        # A key is either left out or a real https link; reserved example domains are not real.
        if value is not None:
            assert re.match(r"https://[^/]+\.[a-z]+/", value), (key, value)
            assert not re.search(r"\.(example|invalid|test|localhost)(/|$)|example\.(com|org|net)", value), (key, value)
    for author in galaxy["authors"]:
        assert not re.search(r"\.(example|invalid|test)\b", author), author


def test_the_built_version_is_released_in_the_changelog(galaxy):
    changelog = load(os.path.join(REPO, "changelogs", "changelog.yaml"))
    version = galaxy["version"]
    assert version in changelog["releases"], "galaxy.yml %s is not released in changelogs/changelog.yaml" % version
    assert changelog["releases"][version].get("release_date")
    with open(os.path.join(REPO, "CHANGELOG.rst")) as handle:
        notes = handle.read()
    for released in changelog["releases"]:
        assert "\nv%s\n" % released in notes, "CHANGELOG.rst was not regenerated for %s" % released
    with open(os.path.join(REPO, "README.md")) as handle:
        assert "(CHANGELOG.rst)" in handle.read()


def test_no_plugin_claims_a_version_after_the_one_it_ships_in(galaxy):
    # antsibull-changelog files a plugin under its version_added: a plugin the 0.3.0 tarball
    # ships that claims 0.4.0 is left out of the 0.3.0 release notes.
    def key(version):
        return tuple(int(part) for part in version.split("."))

    later = []
    for path in glob.glob(os.path.join(REPO, "plugins", "*", "*.py")):
        with open(path) as handle:
            for found in re.findall(r"^\s*version_added: ['\"]?([0-9.]+)", handle.read(), re.M):
                if key(found) > key(galaxy["version"]):
                    later.append((os.path.relpath(path, REPO), found))
    assert not later, "galaxy.yml is %s: %s" % (galaxy["version"], later)
