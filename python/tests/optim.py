"""Parity probe for test/python/train.test.ts: python/train.py's optimiser on what the TS wrote.

Usage: python3 python/tests/optim.py DIR

DIR/probe.safetensors holds parameters `p.NAME` and, for each of K steps, gradients
`g.STEP.NAME`; DIR/settings.json holds the run's "train" settings. Applies K steps as
train.py does (cosine learning rate, global-norm clipping, AdamW, EMA) and writes the
parameters, moments and EMA to DIR/out.safetensors; prints the learning rates and norms.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from train import AdamW, clip_factor, cosine_lr, update_ema  # noqa: E402
from transfusion import load, save  # noqa: E402


def main(folder: str) -> None:
    probe, meta = load(os.path.join(folder, "probe.safetensors"))
    with open(os.path.join(folder, "settings.json")) as f:
        s = json.load(f)
    names = sorted(k[2:] for k in probe if k.startswith("p."))
    params = [(n, torch.nn.Parameter(probe[f"p.{n}"].clone())) for n in names]
    opt = AdamW(params, s)
    ema = {n: p.detach().clone() for n, p in params}
    lrs, norms = [], []
    for step in range(int(meta["steps"])):
        for n, p in params:
            p.grad = probe[f"g.{step}.{n}"].clone()
        norm, factor = clip_factor([p for _, p in params], float(s["clip"]))
        lr = cosine_lr(step, s)
        opt.update(lr, factor)
        update_ema(ema, params, float(s["emaDecay"]), opt.step)
        lrs.append(lr)
        norms.append(norm)
    out = {}
    for n, p in params:
        out[f"param.{n}"] = p.detach()
        out[f"adam_m.{n}"] = opt.m[n]
        out[f"adam_v.{n}"] = opt.v[n]
        out[f"ema.{n}"] = ema[n]
    save(os.path.join(folder, "out.safetensors"), out)
    print(json.dumps({"lr": lrs, "norm": norms}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
