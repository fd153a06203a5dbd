#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (small valid files and a few near-misses) into fuzz/corpus/. The valid
files go to a valid/ folder of each target's: the corpus replay checks that every one of them loads."""
import io
import os
import zipfile
import struct

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def npy(descr, shape, data, version=1):
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    lead = 12 if version >= 2 else 10
    header += " " * ((64 - (lead + len(header) + 1) % 64) % 64) + "\n"
    length = struct.pack("<I", len(header)) if version >= 2 else struct.pack("<H", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode() + data


def f8(values):
    return struct.pack("<%dd" % len(values), *values)


def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def write(folder, name, content):
    os.makedirs(os.path.join(here, folder), exist_ok=True)
    with open(os.path.join(here, folder, name), "wb") as f:
        f.write(content)


write("npy/valid", "f8_2x3", npy("<f8", (2, 3), f8(range(6))))
write("npy/valid", "f4_3", npy("<f4", (3,), struct.pack("<3f", 1.5, 2.5, -1)))
write("npy/valid", "i8_scalar", npy("<i8", (), struct.pack("<q", -7)))
write("npy/valid", "f8_empty", npy("<f8", (0, 3), b""))
write("npy/valid", "f8_v2", npy("<f8", (2, 1, 1, 2), f8([1, 2, 3, 4]), version=2))
write("npy", "truncated", npy("<f8", (4,), f8([1, 2])))

write("idx/valid", "images_2x2x2", idx((2, 2, 2), bytes(range(8))))
write("idx/valid", "labels_3", idx((3,), bytes([0, 9, 4])))
write("idx", "huge_declared", idx((65536, 65536, 65536, 65536), b""))

record = lambda label: bytes([label]) + bytes((i * 7 + label) % 256 for i in range(3072))
write("cifar10/valid", "two_records", record(3) + record(9))
write("cifar10", "bad_label", record(11))

def archive(entries, compression=zipfile.ZIP_STORED):
    """An .npz archive of .npy entries (name -> bytes), with fixed timestamps so the corpus is reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for name, content in entries.items():
            z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(2026, 1, 1, 0, 0, 0)), content, compress_type=compression)
    return buffer.getvalue()


# load_state (io/tree.hpp): an Adam-HD optimizer state for parameters of shapes [3, 2] and [4], entries named by path.
state = {}
for part, lists in (("rule", ("first_moment", "second_moment")), ("step_size", ("previous_direction",))):
    if part == "step_size":
        state["step_size.step_size"] = npy("<f8", (), f8([1e-3]))
    for name in lists:
        state["%s.%s[0]" % (part, name)] = npy("<f8", (3, 2), f8([0.5] * 6))
        state["%s.%s[1]" % (part, name)] = npy("<f8", (4,), f8([0.25] * 4))
    state[part + ".steps"] = npy("<i8", (), struct.pack("<q", 1))
valid_state = archive(state)
write("state/valid", "adam_hd", valid_state)
write("state", "wrong_shape", archive(dict(state, **{"rule.first_moment[1]": npy("<f8", (5,), f8([0.25] * 5))})))
write("state", "extra_entry", archive(dict(state, **{"rule.first_moment[2]": npy("<f8", (4,), f8([0.25] * 4))})))
write("state", "float_counter", archive(dict(state, **{"rule.steps": npy("<f8", (), f8([1]))})))
write("state", "truncated", valid_state[: len(valid_state) // 2])


def learned_optimizer(hidden=2, compression=zipfile.ZIP_STORED, version=1.0, skip=False):
    """A learned optimizer's file (learned/optimizer_file.hpp): an .npz archive of .npy entries. Weight k (in the order
    below) holds k + 1 + i / 1000 at flat index i, so that every entry's values are its own: tests/learned checks
    that each lands in the weight of its name (two same-shaped weights swapped would not)."""
    entries = {"metagrad_lstm_optimizer_version": npy("<f8", (), f8([version])),
               "preprocessing": npy("<f8", (2,), f8([1, 10])),
               "output_scale": npy("<f8", (), f8([0.1]))}
    shapes = {"layer1.input": (2, 4 * hidden), "layer1.recurrent": (hidden, 4 * hidden), "layer1.bias": (4 * hidden,),
              "layer2.input": (hidden, 4 * hidden), "layer2.recurrent": (hidden, 4 * hidden), "layer2.bias": (4 * hidden,),
              "output.weight": (hidden, 1), "output.bias": (1,)}
    if skip:
        shapes["output.skip"] = (2, 1)
    for k, (name, shape) in enumerate(shapes.items()):
        n = 1
        for d in shape:
            n *= d
        entries[name] = npy("<f8", shape, f8([k + 1 + i / 1000 for i in range(n)]))
    return archive(entries, compression)


valid = learned_optimizer()
write("learned/valid", "h2", valid)
write("learned/valid", "h2_version_2", learned_optimizer(version=2.0, skip=True))
write("learned", "version_2", learned_optimizer(version=2.0))
write("learned", "deflated", learned_optimizer(compression=zipfile.ZIP_DEFLATED))
write("learned", "bit_flipped", valid[:200] + bytes([valid[200] ^ 1]) + valid[201:])
write("learned", "truncated", valid[: len(valid) // 2])
