"""Parity probe for test/python/vae.test.ts: the PyTorch VAE on what the TypeScript wrote.

Usage: python3 python/tests/vae.py CASE_DIR...

Each CASE_DIR holds vae/ (vae.safetensors and vae.json, saved by the TypeScript's saveVae) and
probe.safetensors with images [N, C, H, W] in [-1, 1] and scaled latents [N, c, h, w]. Writes
CASE_DIR/out.safetensors: mean and logvar (the raw posterior), encoded (Vae.encode of the
images) and decoded (Vae.decode of the latents).
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from transfusion import load, load_vae, save  # noqa: E402


def run_case(case: str) -> dict:
    vae = load_vae(os.path.join(case, "vae"))
    probe, _ = load(os.path.join(case, "probe.safetensors"))
    with torch.no_grad():
        mean, logvar = vae.moments(probe["images"])
        out = {
            "mean": mean,
            "logvar": logvar,
            "encoded": vae.encode(probe["images"]),
            "decoded": vae.decode(probe["latents"]),
        }
    save(os.path.join(case, "out.safetensors"), out)
    return {"scaling_factor": vae.scaling_factor, "shift_factor": vae.shift_factor, "config": vae.config}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps({case: run_case(case) for case in sys.argv[1:]}))
