"""Parity probe for test/python/forward.test.ts: runs the PyTorch model on what the TypeScript wrote.

Usage: python3 python/tests/forward.py CASE_DIR...

Each CASE_DIR holds checkpoint/ (config.json + model.safetensors written by the TypeScript) and
probe.safetensors: the layout (tokens, text_targets, doc_ids, positions [B, T]; images [N, >=4]),
the model inputs xt [N, C, H, W] and t_model [N], and the loss inputs x0, eps [N, C, H, W],
t [N] (the layout's timesteps), diffuse [N] (0/1), with the flow times as JSON in the metadata
field "time". Writes CASE_DIR/out.safetensors: text_logits, text_targets, image_pred, noise_batch's
noised_xt and noised_t, and the loss gradient of every parameter as grad.NAME; the loss parts go
in its metadata.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from transfusion import (
    Layout,
    load,
    load_checkpoint,
    loss_sums,
    noise_batch,
    save,
    transfusion_loss,
)  # noqa: E402


def run_case(case: str) -> dict:
    model, _ = load_checkpoint(os.path.join(case, "checkpoint"))
    probe, meta = load(os.path.join(case, "probe.safetensors"))
    layout = Layout.from_tensors(probe)
    out: dict[str, torch.Tensor] = {}

    with torch.no_grad():
        logits, targets, pred = model(layout, probe.get("xt"), probe.get("t_model"))
    if logits is not None:
        out["text_logits"] = logits
    out["text_targets"] = targets.int()
    if pred is not None:
        out["image_pred"] = pred

    time = torch.tensor(json.loads(meta["time"]), dtype=torch.float64) if "time" in meta else None
    if "x0" in probe:
        xt, t_model, _ = noise_batch(
            model.config, probe["x0"], probe["eps"], probe["t"], probe["diffuse"], time
        )
        out["noised_xt"], out["noised_t"] = xt, t_model.int()
    args = (model, layout, probe.get("x0"), probe.get("eps"), probe.get("t"), probe.get("diffuse"))
    total, parts = transfusion_loss(*args, time=time)
    model.zero_grad()
    total.backward()
    for name, p in model.named_parameters():
        out[f"grad.{name}"] = p.grad if p.grad is not None else torch.zeros_like(p)

    with torch.no_grad():
        s = loss_sums(*args, time=time)
    lam = model.config["lambda"]
    sums_total = 0.0
    if s["lm_count"]:
        sums_total += float(s["lm_sum"]) / s["lm_count"]
    if s["image_count"]:
        sums_total += lam * float(s["image_sum"]) / s["image_count"]
    summary = {"total": float(total), "sums_total": sums_total, **parts}
    save(os.path.join(case, "out.safetensors"), out, {k: json.dumps(v) for k, v in summary.items()})
    return summary


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps({case: run_case(case) for case in sys.argv[1:]}))
