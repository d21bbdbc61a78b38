"""Round-trip probe for test/python/roundtrip.test.ts: Python reads and rewrites TypeScript files.

Usage: python3 python/tests/roundtrip.py CHECKPOINT_DIR OUT_DIR HANDMADE_FILE

- Loads model.safetensors and train_state.safetensors of CHECKPOINT_DIR (written by the
  TypeScript trainer) and saves every tensor with the same metadata under OUT_DIR.
- Saves load_checkpoint(CHECKPOINT_DIR)'s state_dict() as OUT_DIR/state_dict.safetensors.
- Saves OUT_DIR/dtypes.safetensors holding F16, BF16, F64, I64, I32 and F32 tensors.
- Reads HANDMADE_FILE (F16, BF16 and I64 tensors the TypeScript wrote byte by byte).
- Breaks copies of the checkpoint in OUT_DIR/broken-* and records load_checkpoint's errors.
Prints JSON: the handmade file's tensors (dtype and values), the values of dtypes.safetensors,
alphas_cumprod for T = 10 and 1000, and the errors by case.
"""

import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from transfusion import alphas_cumprod, load, load_checkpoint, save  # noqa: E402


def main(src: str, dst: str, handmade: str) -> dict:
    os.makedirs(dst, exist_ok=True)
    for name in ("model.safetensors", "train_state.safetensors"):
        tensors, metadata = load(os.path.join(src, name))
        save(os.path.join(dst, name), tensors, metadata)
    model, _ = load_checkpoint(src)
    _, model_meta = load(os.path.join(src, "model.safetensors"))
    save(os.path.join(dst, "state_dict.safetensors"), model.state_dict(), model_meta)

    dtypes = {
        "f16": torch.tensor([1.0, -2.0, 0.5, 65504.0, 1e-3], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -2.0, 0.5, 3.140625, 1e30], dtype=torch.bfloat16),
        "f64": torch.tensor([0.1, -1e300, 2.5], dtype=torch.float64),
        "i64": torch.tensor([[-5, 123456], [7, -2147483648]], dtype=torch.int64),
        "i32": torch.tensor([3, -4], dtype=torch.int32),
        "f32": torch.tensor([[1.5, -0.25]], dtype=torch.float32),
    }
    save(os.path.join(dst, "dtypes.safetensors"), dtypes, {"note": "written by Python"})

    tensors, _ = load(handmade)
    return {
        "errors": broken_checkpoints(src, dst),
        "handmade": {
            k: {"dtype": str(t.dtype), "shape": list(t.shape), "values": t.double().reshape(-1).tolist()}
            for k, t in tensors.items()
        },
        "dtypes": {k: t.double().reshape(-1).tolist() for k, t in dtypes.items()},
        "alphas": {str(T): alphas_cumprod(T).tolist() for T in (10, 1000)},
    }


def broken_checkpoints(src: str, dst: str) -> dict[str, str]:
    """Returns load_checkpoint's error message for each way of breaking a copy of src."""
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    weights, meta = load(os.path.join(src, "model.safetensors"))
    cases = {
        "bad field": ({**config, "model": {**config["model"], "heads": "x"}}, weights),
        "unknown field": ({**config, "model": {**config["model"], "depth": 3}}, weights),
        "version": ({**config, "version": 2}, weights),
        "missing tensor": (config, {k: v for k, v in weights.items() if k != "head.weight"}),
        "extra tensor": (config, {**weights, "extra.weight": torch.zeros(2)}),
        "wrong shape": (config, {**weights, "norm.weight": torch.zeros(3)}),
    }
    errors = {}
    for name, (cfg, tensors) in cases.items():
        d = os.path.join(dst, "broken-" + name.replace(" ", "-"))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        save(os.path.join(d, "model.safetensors"), tensors, meta)
        try:
            load_checkpoint(d)
            errors[name] = ""
        except ValueError as err:
            errors[name] = str(err)
    return errors


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(main(*sys.argv[1:4])))
