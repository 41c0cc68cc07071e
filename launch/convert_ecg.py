#!/usr/bin/python3
"""Turn scipy's ecg.dat (a zip holding one uint16 .npy array, 360 Hz) into data/ecg.csv in mV.

DATA.md: mV = (x - 1024) / 200. Standard library only (zipfile + the .npy header), so it runs on
any Python 3. Usage: launch/convert_ecg.py [--src data/ecg.dat] [--dst data/ecg.csv] [--limit N]
"""
import argparse
import ast
import os
import struct
import sys
import zipfile


def read_npy_uint16(blob: bytes):
    if blob[:6] != b"\x93NUMPY":
        raise ValueError("not a .npy array")
    major = blob[6]
    header_len_size = 2 if major == 1 else 4
    fmt = "<H" if major == 1 else "<I"
    header_len = struct.unpack(fmt, blob[8:8 + header_len_size])[0]
    start = 8 + header_len_size
    header = ast.literal_eval(blob[start:start + header_len].decode("latin1"))
    if header["descr"] not in ("<u2", "|u2") or header["fortran_order"]:
        raise ValueError(f"expected a little-endian uint16 C-order array; got {header}")
    count = 1
    for dim in header["shape"]:
        count *= dim
    data = blob[start + header_len:]
    return struct.unpack(f"<{count}H", data[:2 * count])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default="data/ecg.dat")
    parser.add_argument("--dst", default="data/ecg.csv")
    parser.add_argument("--limit", type=int, default=0, help="keep the first N samples (0: all)")
    args = parser.parse_args()
    try:
        with zipfile.ZipFile(args.src) as archive:
            names = [n for n in archive.namelist() if n.endswith(".npy")]
            if len(names) != 1:
                raise ValueError(f"expected one .npy member; got {archive.namelist()}")
            samples = read_npy_uint16(archive.read(names[0]))
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        print(f"convert_ecg.py: error: {args.src}: {error}", file=sys.stderr)
        return 2
    if args.limit > 0:
        samples = samples[:args.limit]
    tmp = args.dst + ".tmp"
    with open(tmp, "w", encoding="ascii") as out:
        out.write("t,mV\n")
        for i, x in enumerate(samples):
            out.write(f"{i},{(x - 1024) / 200!r}\n")
    os.replace(tmp, args.dst)
    print(f"convert_ecg.py: wrote {len(samples)} samples to {args.dst}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
