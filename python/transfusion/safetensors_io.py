"""Reading and writing safetensors files, byte-compatible with the TypeScript writer.

The format (https://huggingface.co/docs/safetensors):

    [u64 little-endian N][N bytes of UTF-8 JSON header, space-padded to a multiple of 8][data]

The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
into the data section, which the tensors tile exactly) plus an optional "__metadata__" object of
string -> string. Like src/tensor/safetensors.ts (and the reference Rust writer) `save` lists
"__metadata__" first with its keys sorted, orders the tensors by descending dtype (the reference
enum order, I64 > F64 > F32 > I32 > BF16 > F16 > ...) and then by name, and packs them with no
gaps; so a file the TypeScript wrote, loaded and saved again, comes out byte for byte the same.
"""

from __future__ import annotations

import json
import os
import struct
import sys

import numpy as np
import torch

# dtype name -> (torch dtype, numpy dtype used for the raw bytes, rank in the reference enum).
# bfloat16 has no numpy type: its bytes go through int16 and torch's same-size view.
DTYPES: dict[str, tuple[torch.dtype, str, int]] = {
    "BOOL": (torch.bool, "|b1", 0),
    "U8": (torch.uint8, "|u1", 1),
    "I8": (torch.int8, "|i1", 2),
    "I16": (torch.int16, "<i2", 5),
    "F16": (torch.float16, "<f2", 7),
    "BF16": (torch.bfloat16, "<i2", 8),
    "I32": (torch.int32, "<i4", 9),
    "F32": (torch.float32, "<f4", 11),
    "F64": (torch.float64, "<f8", 12),
    "I64": (torch.int64, "<i8", 13),
}
NAME_OF = {torch_dtype: name for name, (torch_dtype, _, _) in DTYPES.items()}
MAX_HEADER_BYTES = 100_000_000


def load(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Returns the tensors (in the file's dtype) and the metadata of the safetensors file at path.

    The whole header is checked the way the TypeScript reader checks it: known dtypes, shapes
    matching the byte spans, tensors tiling the data section with no gap or overlap. Errors name
    the file and the tensor or field.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: file is {len(raw)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    if n > MAX_HEADER_BYTES:
        raise ValueError(f"{path}: header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit")
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: header is not valid UTF-8 JSON: {err}") from err
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header must be a JSON object")

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f'{path}: field "__metadata__" must be an object of strings')

    data = memoryview(raw)[8 + n :]
    spans = []
    for name, info in header.items():
        at = f'{path}: tensor "{name}"'
        if not isinstance(info, dict):
            raise ValueError(f"{at}: header entry must be an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPES:
            raise ValueError(f'{at}: field "dtype" is {dtype!r}, expected one of {", ".join(DTYPES)}')
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f'{at}: field "shape" must be an array of non-negative integers')
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets):
            raise ValueError(f'{at}: field "data_offsets" must be [begin, end]')
        begin, end = offsets
        itemsize = np.dtype(DTYPES[dtype][1]).itemsize
        if end - begin != int(np.prod(shape, dtype=np.int64)) * itemsize:
            raise ValueError(
                f'{at}: field "data_offsets" [{begin}, {end}] does not match shape {shape} of {dtype}'
            )
        spans.append((begin, end, name, dtype, shape))

    spans.sort()
    covered = 0
    tensors: dict[str, torch.Tensor] = {}
    for begin, end, name, dtype, shape in spans:
        if begin != covered or end > len(data):
            raise ValueError(
                f'{path}: tensor "{name}": data_offsets [{begin}, {end}] leave a gap, overlap or run past the data'
            )
        covered = end
        np_dtype = DTYPES[dtype][1]
        array = np.frombuffer(data[begin:end], dtype=np_dtype).copy().reshape(shape)
        t = torch.from_numpy(array)
        tensors[name] = t.view(torch.bfloat16) if dtype == "BF16" else t
    if covered != len(data):
        raise ValueError(f"{path}: tensors cover {covered} bytes but the data section has {len(data)}")
    return {name: tensors[name] for name in header}, metadata


def save(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Writes tensors (each in its own dtype: F32, I32, I64, F16, BF16, ...) and string metadata.

    Atomic: the bytes go to `path.tmp`, are fsynced, and the file is renamed over `path`, so a
    reader never sees a partial file. The layout is the TypeScript writer's (see the module doc).
    """
    plan = []
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError(f'safetensors: tensor "{name}": the name is reserved for metadata')
        if not isinstance(t, torch.Tensor):
            raise TypeError(f'safetensors: tensor "{name}" is a {type(t).__name__}, not a torch.Tensor')
        if t.dtype not in NAME_OF:
            raise ValueError(f'safetensors: tensor "{name}" has unsupported dtype {t.dtype}')
        plan.append((-DTYPES[NAME_OF[t.dtype]][2], name.encode("utf-8"), name, t))
    plan.sort(key=lambda p: (p[0], p[1]))

    parts = []
    if metadata is not None:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError(f'safetensors: metadata "{key}" must be a string')
        entries = (f"{_json(k)}:{_json(metadata[k])}" for k in sorted(metadata))
        parts.append('"__metadata__":{' + ",".join(entries) + "}")
    blobs = []
    offset = 0
    for _, _, name, t in plan:
        blob = _bytes(t)
        dtype = NAME_OF[t.dtype]
        shape = ",".join(str(d) for d in t.shape)
        parts.append(
            f'{_json(name)}:{{"dtype":"{dtype}","shape":[{shape}],"data_offsets":[{offset},{offset + len(blob)}]}}'
        )
        offset += len(blob)
        blobs.append(blob)
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * (-len(header) % 8)

    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _json(s: str) -> str:
    """Returns s as a JSON string literal exactly as JavaScript's JSON.stringify writes it."""
    return json.dumps(s, ensure_ascii=False)


def _bytes(t: torch.Tensor) -> bytes:
    """Returns the row-major bytes of t (little-endian: this host's order, checked on import)."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


if sys.byteorder != "little":
    raise ImportError("safetensors_io: big-endian hosts are not supported")
