"""Train a Transfusion model on PyTorch's distributed data parallel, from `transfusion pack` shards.

    transfusion pack --data shapes --steps 2500 --out runs/pack           # here, in Node
    torchrun --nproc_per_node 2 python/train.py --pack runs/pack --out runs/torch
    transfusion generate --checkpoint runs/torch/checkpoint "a red circle"  # back in Node

The pack holds, for every step, the batch the TypeScript trainer would draw (token ids,
targets, document ids, RoPE positions, image spans and clean latents), plus the run's step-0
checkpoint. This script adds only what a trainer decides: each image's timestep
t ~ U{0, …, tMax−1} and its noise ε, drawn from a generator seeded by (seed, step) over the
whole global batch, so the numbers do not depend on how many processes share it.

Data parallelism: the B rows of a step's batch are split into `world` contiguous slices, one
per process. Every process sums its losses and divides by the global counts of text targets
and diffusing images (all-reduced first); DDP averages gradients over processes, so each
process scales its loss by `world` and the averaged gradient is exactly the gradient of the
global loss  L = Σ CE / n_text + λ · Σ_img MSE / n_img.

The optimiser, schedule, clipping and EMA are the TypeScript trainer's (src/train/trainer.ts,
src/tensor/optim.ts), with its settings read from the checkpoint's config.json "train" field:
AdamW (decoupled weight decay on matrices other than the embedding), linear warm-up then cosine
decay, global-norm clipping, EMA with warm-up d = min(d0, (1+n)/(10+n)). Non-finite steps are
skipped. Checkpoints use the project's folder layout and tensor names, written atomically on
rank 0; the tokenizer, autoencoder and config come from the pack unchanged (config.json's
"step" updated), so `transfusion generate | caption | eval` read them as their own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transfusion import safetensors_io  # noqa: E402
from transfusion.model import Layout, Transfusion, loss_sums  # noqa: E402

STATIC_FILES = ("tokenizer.json", "vae.safetensors", "vae.json", "vqvae.safetensors", "vqvae.json")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pack", required=True, help="folder written by `transfusion pack`")
    p.add_argument("--out", required=True, help="run folder: checkpoint/, metrics.jsonl")
    p.add_argument("--steps", type=int, default=None, help="stop after this step (default: all packed)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="steps between checkpoints (default: the run's checkpointEvery; 0 = only at the end)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: torch's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p.parse_args()


def fail(msg: str) -> None:
    print(f"train.py: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# The optimiser, exactly as the TypeScript trainer applies it


def cosine_lr(step: int, s: dict) -> float:
    """Linear warm-up to maxLr over warmupSteps, then cosine decay to minLr at `steps`."""
    warm, total = s["warmupSteps"], s["steps"]
    if warm > 0 and step < warm:
        return s["maxLr"] * (step + 1) / warm
    span = max(1, total - warm)
    progress = min(1.0, max(0.0, (step - warm) / span))
    return s["minLr"] + 0.5 * (s["maxLr"] - s["minLr"]) * (1 + math.cos(math.pi * progress))


class AdamW:
    """AdamW as src/tensor/optim.ts: p ← p − lr·(m̂/(√v̂ + eps) + wd·p), gradients pre-scaled."""

    def __init__(self, named: list[tuple[str, torch.nn.Parameter]], s: dict):
        self.named = named
        self.s = s
        self.m = {n: torch.zeros_like(p) for n, p in named}
        self.v = {n: torch.zeros_like(p) for n, p in named}
        # Norm gains, biases and embeddings are not decayed.
        self.decay = {n: p.dim() >= 2 and not n.startswith("embed.") for n, p in named}
        self.step = 0

    @torch.no_grad()
    def update(self, lr: float, grad_scale: float) -> None:
        self.step += 1
        b1, b2, eps = self.s["beta1"], self.s["beta2"], self.s["eps"]
        bc1, bc2 = 1 - b1 ** self.step, 1 - b2 ** self.step
        for n, p in self.named:
            if p.grad is None:
                continue
            g = p.grad * grad_scale
            m, v = self.m[n], self.v[n]
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            wd = self.s["weightDecay"] if self.decay[n] else 0.0
            p.sub_(lr * (m / bc1 / ((v / bc2).sqrt() + eps) + wd * p))


def clip_factor(params: list[torch.nn.Parameter], max_norm: float) -> tuple[float, float]:
    """The global gradient norm and the factor that scales it to ≤ max_norm (1 when within)."""
    sq = sum(float(p.grad.double().pow(2).sum()) for p in params if p.grad is not None)
    norm = math.sqrt(sq)
    factor = max_norm / (norm + 1e-6) if max_norm > 0 and norm > max_norm else 1.0
    return norm, factor


@torch.no_grad()
def update_ema(ema: dict[str, torch.Tensor], named: list[tuple[str, torch.nn.Parameter]], d0: float,
               n: int) -> None:
    """e ← d·e + (1−d)·p with d = min(d0, (1+n)/(10+n)) after update n (warm-up); a copy at d0 = 0."""
    d = min(d0, (1 + n) / (10 + n)) if d0 > 0 else 0.0
    for name, p in named:
        ema[name].mul_(d).add_(p, alpha=1 - d)


# ---------------------------------------------------------------------------------------------
# Data: one step's batch from the shards, split by rows


class Shards:
    """Reads the pack's shard files lazily, one file in memory at a time."""

    def __init__(self, pack: Path, manifest: dict):
        self.pack = pack
        self.entries = manifest["shards"]
        self.loaded: tuple[int, dict] | None = None

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        for i, e in enumerate(self.entries):
            if e["first"] <= step < e["first"] + e["count"]:
                if self.loaded is None or self.loaded[0] != i:
                    path = self.pack / e["file"]
                    tensors, _ = safetensors_io.load(path)
                    self.loaded = (i, tensors)
                t = self.loaded[1]
                keys = ("tokens", "text_targets", "doc_ids", "positions", "images", "latents")
                missing = [k for k in keys if f"{step}.{k}" not in t]
                if missing:
                    fail(f"{self.pack / e['file']}: step {step} lacks tensor(s) {', '.join(missing)}")
                return {k: t[f"{step}.{k}"] for k in keys}
        fail(f"{self.pack}: no shard holds step {step}")
        raise AssertionError


def rows_slice(b: dict[str, torch.Tensor], rank: int, world: int, pack: Path) -> tuple[dict, torch.Tensor]:
    """This process's rows of a global batch, with its images re-indexed, and the images' mask."""
    B = b["tokens"].shape[0]
    if B % world != 0:
        fail(f"{pack}: {B} rows per batch cannot be split over {world} processes; pack with --batch a multiple of {world}")
    per = B // world
    r0, r1 = rank * per, (rank + 1) * per
    images = b["images"].long()
    mine = (images[:, 0] >= r0) & (images[:, 0] < r1) if images.numel() else torch.zeros(0, dtype=torch.bool)
    local = {k: b[k][r0:r1] for k in ("tokens", "text_targets", "doc_ids", "positions")}
    imgs = images[mine].clone()
    if imgs.numel():
        imgs[:, 0] -= r0
    local["images"] = imgs
    return local, mine


# ---------------------------------------------------------------------------------------------
# Checkpoints in the project's folder layout


def write_checkpoint(out: Path, init: Path, cfg: dict, model: Transfusion, opt: AdamW,
                     ema: dict[str, torch.Tensor], step: int, seed: int, skipped: int) -> None:
    """Writes out/checkpoint atomically: to checkpoint.tmp, then swapped in (as the TS does)."""
    final = out / "checkpoint"
    tmp, old = out / "checkpoint.tmp", out / "checkpoint.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in STATIC_FILES:
        if (init / name).exists():
            shutil.copyfile(init / name, tmp / name)
    (tmp / "config.json").write_text(json.dumps({**cfg, "step": step}, indent=2) + "\n")
    names = [n for n, _ in model.named_parameters()]
    safetensors_io.save(tmp / "model.safetensors", {n: ema[n].detach().cpu() for n in names},
                        {"format": "transfusion-model/1", "step": str(step)})
    state: dict[str, torch.Tensor] = {}
    for n, p in model.named_parameters():
        state[f"param.{n}"] = p.detach().cpu()
        state[f"adam_m.{n}"] = opt.m[n].cpu()
        state[f"adam_v.{n}"] = opt.v[n].cpu()
    safetensors_io.save(tmp / "train_state.safetensors", state, {
        "step": str(step), "adam_step": str(opt.step), "seed": str(seed), "skipped_steps": str(skipped),
    })
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_start(pack: Path, out: Path) -> tuple[Path, dict, dict, dict, dict]:
    """The checkpoint to start from (out/checkpoint when resuming, else the pack's step 0)."""
    for d in (out / "checkpoint", out / "checkpoint.old", pack / "checkpoint"):
        if (d / "model.safetensors").exists() and (d / "train_state.safetensors").exists():
            cfg_path = d / "config.json"
            try:
                cfg = json.loads(cfg_path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                fail(f"{cfg_path}: {e}")
            ema, _ = safetensors_io.load(d / "model.safetensors")
            state, meta = safetensors_io.load(d / "train_state.safetensors")
            return d, cfg, ema, state, meta
    fail(f"{pack}: no checkpoint/ with model.safetensors and train_state.safetensors; run `transfusion pack` first")
    raise AssertionError


def keep_metrics_until(path: Path, step: int) -> None:
    """Drops log lines past `step` (a resume repeats them), so the log matches the checkpoint."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(f"{line}\n" for line in kept))


# ---------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    pack, out = Path(args.pack), Path(args.out)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if args.threads:
        torch.set_num_threads(args.threads)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    manifest_path = pack / "pack.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail(f"{manifest_path}: {e}")
    if manifest.get("format") != "transfusion-pack" or manifest.get("version") != 1:
        fail(f'{manifest_path}: fields "format"/"version" must be "transfusion-pack"/1')

    start_dir, cfg, ema_t, state, meta = load_start(pack, out)
    init = pack / "checkpoint"
    mc, s = cfg["model"], cfg["train"]
    model = Transfusion(mc).to(device)
    named = list(model.named_parameters())
    with torch.no_grad():
        for n, p in named:
            key = f"param.{n}"
            if key not in state:
                fail(f"{start_dir / 'train_state.safetensors'}: missing tensor \"{key}\"")
            p.copy_(state[key].float())
    opt = AdamW(named, s)
    for n, _ in named:
        opt.m[n].copy_(state[f"adam_m.{n}"].float())
        opt.v[n].copy_(state[f"adam_v.{n}"].float())
    step, opt.step = int(meta["step"]), int(meta["adam_step"])
    skipped = int(meta.get("skipped_steps", "0"))
    ema = {n: ema_t[n].float().to(device).clone() for n, _ in named}
    params = [p for _, p in named]

    ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if world > 1 else model
    seed = int(s["seed"])
    last = min(args.steps or manifest["steps"], manifest["steps"])
    every = s.get("checkpointEvery", 250) if args.checkpoint_every is None else args.checkpoint_every
    shards = Shards(pack, manifest)
    lam = float(mc["lambda"])
    latent_shape = manifest["latentShape"]
    out.mkdir(parents=True, exist_ok=True)
    metrics = out / "metrics.jsonl"
    if rank == 0:
        keep_metrics_until(metrics, step)
    if rank == 0 and not args.quiet:
        n_params = sum(p.numel() for p in params)
        print(f"training {n_params:,} parameters on {world} process(es), steps {step}→{last} ({start_dir})",
              file=sys.stderr)
    bad = 0
    t_start = time.time()
    while step < last:
        t0 = time.time()
        b = shards.batch(step)
        local, mine = rows_slice(b, rank, world, pack)
        layout = Layout.from_tensors(local).to(device)
        n_img = b["images"].shape[0]
        # Timesteps and noise for the whole global batch, from (seed, step) alone.
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        t_max = b["images"][:, 5].double() if n_img else torch.zeros(0, dtype=torch.float64)
        t_all = torch.floor(torch.rand(n_img, generator=g, dtype=torch.float64) * t_max).long()
        eps_all = torch.randn([n_img, *latent_shape], generator=g) if latent_shape else None
        diffuse = b["images"][:, 4].bool()[mine] if n_img else torch.zeros(0, dtype=torch.bool)
        x0 = b["latents"][mine].to(device) if latent_shape else None
        eps = eps_all[mine].to(device) if eps_all is not None else None
        parts = loss_sums(ddp, layout, x0, eps, t_all[mine].to(device), diffuse.to(device))
        counts = torch.tensor([float(parts["lm_count"]), float(parts["image_count"])], dtype=torch.float64)
        sums = torch.tensor([float(parts["lm_sum"]), float(parts["image_sum"])], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        n_lm, n_im = max(1.0, counts[0].item()), max(1.0, counts[1].item())
        total = parts["lm_sum"] / n_lm + lam * parts["image_sum"] / n_im
        (total * world).backward()
        loss = sums[0].item() / n_lm + lam * sums[1].item() / n_im
        norm, factor = clip_factor(params, float(s["clip"]))
        lr = cosine_lr(step, s)
        ok = math.isfinite(loss) and math.isfinite(norm)
        if ok:
            opt.update(lr, factor)
            update_ema(ema, named, float(s["emaDecay"]), opt.step)
            bad = 0
        else:
            skipped += 1
            bad += 1
        for p in params:
            p.grad = None
        step += 1
        if bad > int(s.get("nanPatience", 20)):
            fail(f"training stopped: {bad} consecutive non-finite steps (loss {loss}, grad norm {norm}); "
                 "the last good checkpoint was kept")
        if rank == 0:
            m = {"step": step, "lm": sums[0].item() / n_lm, "image": sums[1].item() / n_im, "total": loss,
                 "lr": lr, "gradNorm": norm, "skipped": not ok, "stepSeconds": time.time() - t0, "world": world}
            with open(metrics, "a") as f:
                f.write(json.dumps(m) + "\n")
            if not args.quiet and (step % 50 == 0 or step == last):
                eta = (time.time() - t_start) / max(1, step) * (last - step)
                print(f"step {step}/{last} text {m['lm']:.3f} image {m['image']:.4f} lr {lr:.1e} ETA {eta:.0f}s",
                      file=sys.stderr)
            if step == last or (every > 0 and step % every == 0):
                write_checkpoint(out, init, cfg, model, opt, ema, step, seed, skipped)
        if world > 1 and (step == last or (every > 0 and step % every == 0)):
            dist.barrier()
    if rank == 0 and not args.quiet:
        print(f"done: {step} steps; checkpoint {out / 'checkpoint'}", file=sys.stderr)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
