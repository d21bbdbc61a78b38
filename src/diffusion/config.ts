/**
 * Diffusion choices as plain config: which schedule the model trains on and which sampler
 * generates, with the recipe's defaults (docs/RECIPE.md) (cosine, T = 1000; respaced DDPM with 250 steps).
 */
import { FlowEulerSampler } from "./flow.js";
import { DdimSampler, DdpmSampler, type Sampler } from "./samplers.js";
import { cosineSchedule, linearSchedule, type NoiseSchedule } from "./schedule.js";

export type ScheduleKind = "cosine" | "linear";
export type SamplerKind = "ddpm" | "ddim" | "flow-euler";

/** Sampler settings; every field has a default in DEFAULT_SAMPLER_CONFIG. */
export interface SamplerConfig {
  kind: SamplerKind;
  /** Model evaluations per image (paper: 250 of 1000). */
  steps: number;
  /** DDPM reverse variance: posterior β̃ (default) or β. */
  variance: "posterior" | "beta";
  /** DDIM stochasticity η (0 = deterministic). */
  eta: number;
  /** Clip of the predicted x0, or null (default: off, latents are unbounded). */
  x0Clip: number | null;
}

export const DEFAULT_SAMPLER_CONFIG: Readonly<SamplerConfig> = {
  kind: "ddpm",
  steps: 250,
  variance: "posterior",
  eta: 0,
  x0Clip: null,
};

/** Returns the named schedule over T training steps with its paper defaults. */
export function createSchedule(kind: ScheduleKind, T = 1000): NoiseSchedule {
  if (kind === "cosine") return cosineSchedule({ T });
  if (kind === "linear") return linearSchedule({ T });
  throw new Error(`unknown noise schedule "${kind}"; choose cosine or linear`);
}

/**
 * Returns the sampler described by `config` (missing fields take their defaults) for a model
 * trained on `schedule` with `objective`. Throws when the sampler does not match what the
 * model predicts: ε for "ddpm", velocity for "flow".
 */
export function createSampler(
  config: Partial<SamplerConfig>,
  schedule: NoiseSchedule,
  objective: "ddpm" | "flow" = "ddpm",
): Sampler {
  const c = { ...DEFAULT_SAMPLER_CONFIG, ...config };
  const isFlow = c.kind === "flow-euler";
  if (isFlow !== (objective === "flow")) {
    throw new Error(
      `sampler "${c.kind}" does not fit a model trained with objective "${objective}"`,
    );
  }
  switch (c.kind) {
    case "ddpm":
      return new DdpmSampler(schedule, { steps: c.steps, variance: c.variance, x0Clip: c.x0Clip });
    case "ddim":
      return new DdimSampler(schedule, { steps: c.steps, eta: c.eta, x0Clip: c.x0Clip });
    case "flow-euler":
      return new FlowEulerSampler({ steps: c.steps, T: schedule.T, x0Clip: c.x0Clip });
    default:
      throw new Error(`unknown sampler "${String(c.kind)}"; choose ddpm, ddim or flow-euler`);
  }
}
