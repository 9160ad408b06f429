"""Cut the bundled MNIST sample from the official MNIST files.

    python minidl/data/sample/make_sample.py /path/to/mnist [--out DIR]

The source folder holds the four official files (gzipped or not):
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``. Their decompressed contents are checked against the
SHA-256 of the official files (recompressed archives are fine: the payload is what
counts), then the first 6,000 training and the first 1,000 test images, with their
labels, are written as gzip IDX files (``minidl.data.write_idx``: compression level 9,
no time stamp, so the same zlib gives the same bytes) into ``--out`` (by default the
``mnist/`` folder next to this script). The script prints each file's size, MD5 and
SHA-256, for ``minidl.data.datasets`` and the README beside it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import sys

import numpy as np

from minidl.data.idx import write_idx

# (training images, test images) kept: the first ones of each official file
TRAIN_COUNT, TEST_COUNT = 6000, 1000

# SHA-256 of the decompressed official files (IDX bytes, header included)
OFFICIAL = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def read_official(source: str, name: str) -> bytes:
    """The decompressed bytes of official file ``name`` in ``source``, checked by SHA-256."""
    for candidate, opener in ((name + ".gz", gzip.open), (name, open)):
        path = os.path.join(source, candidate)
        if os.path.isfile(path):
            with opener(path, "rb") as handle:
                payload = handle.read()
            digest = hashlib.sha256(payload).hexdigest()
            if digest != OFFICIAL[name]:
                raise SystemExit(
                    f"{path}: its content has SHA-256 {digest}, not the official "
                    f"{OFFICIAL[name]}: not the official MNIST file"
                )
            return payload
    raise SystemExit(f"{source} holds neither {name}.gz nor {name}")


def cut(payload: bytes, count: int, item_bytes: int, header_bytes: int) -> bytes:
    """The first ``count`` items of an IDX payload, as raw bytes after its header."""
    return payload[header_bytes : header_bytes + count * item_bytes]


def main(argv: list[str] | None = None) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("source", help="folder holding the four official MNIST files")
    parser.add_argument(
        "--out", default=os.path.join(here, "mnist"), help="folder to write the sample into"
    )
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    # (official name, items kept, bytes per item, header bytes): idx3 has 3 sizes, idx1 one
    plan = (
        ("train-images-idx3-ubyte", TRAIN_COUNT, 28 * 28, 16),
        ("train-labels-idx1-ubyte", TRAIN_COUNT, 1, 8),
        ("t10k-images-idx3-ubyte", TEST_COUNT, 28 * 28, 16),
        ("t10k-labels-idx1-ubyte", TEST_COUNT, 1, 8),
    )
    for name, count, item_bytes, header_bytes in plan:
        kept = cut(read_official(args.source, name), count, item_bytes, header_bytes)
        shape = (count, 28, 28) if item_bytes > 1 else (count,)
        path = os.path.join(args.out, name + ".gz")
        write_idx(path, np.frombuffer(kept, dtype=np.uint8).reshape(shape))
        os.chmod(path, 0o644)  # package data: readable by everyone, as git checks it out
        with open(path, "rb") as handle:
            data = handle.read()
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        print(f"{name}.gz  {len(data)} bytes  md5 {md5}  sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1:])
