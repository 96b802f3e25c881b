#!/usr/bin/env python3
"""Write DIST/requirements.yml: the collection tarball in DIST, for execution-environment.yml.

    tools/ee-requirements.py build/dist     (run by `make build`, after the tarball is built)

execution-environment.yml takes its Galaxy requirements from this file, so that
`ansible-builder create` fails with "Dependency file ... does not exist" where no tarball was
built (it only warns about a missing additional_build_files source), and the image installs
the collection as built, with the dependencies its MANIFEST names (galaxy.yml `dependencies`).
The path is where ansible-builder's additional_build_files puts the tarball in the image
(`dest: collections` under /build).
"""

import glob
import os
import sys

IMAGE_DIR = "/build/collections"


def main(dist):
    tarballs = sorted(glob.glob(os.path.join(dist, "ringrift-cluster-*.tar.gz")))
    if len(tarballs) != 1:
        sys.exit("%s: expected one ringrift-cluster-*.tar.gz (make build), found %d" % (dist, len(tarballs)))
    path = os.path.join(dist, "requirements.yml")
    with open(path, "w") as handle:
        handle.write("---\n# Written by tools/ee-requirements.py (make build) for execution-environment.yml.\n"
                     "collections:\n  - name: %s/%s\n    type: file\n" % (IMAGE_DIR, os.path.basename(tarballs[0])))
    print(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    main(sys.argv[1])
