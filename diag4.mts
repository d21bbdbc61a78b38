import { getDataset } from "/work/main/src/data/datasets/index.ts";
import { writeImageGrid } from "/work/main/src/data/grid.ts";
import { evaluateShapes } from "/work/main/src/eval/shapes.ts";
import { TransfusionPipeline } from "/work/main/src/generate/pipeline.ts";

const p = TransfusionPipeline.load(process.argv[2]);
const ds = await getDataset("shapes");
for (const [steps, g] of [
  [25, 3],
  [50, 5],
] as const) {
  const t0 = Date.now();
  const r = evaluateShapes(p, ds, {
    count: 48,
    batch: 24,
    image: { sampler: "ddim", steps, guidanceScale: g, seed: 7 },
  });
  console.log(
    `steps ${steps} g ${g}: gen ${r.generationAccuracy.toFixed(3)} all ${r.generationAllAttributes.toFixed(3)} cap ${r.captionAccuracy.toFixed(3)} (${((Date.now() - t0) / 1000).toFixed(0)}s)`,
  );
  await writeImageGrid(
    `${process.argv[3]}-${steps}-${g}.png`,
    r.generated.slice(0, 12).map((x) => x.image),
    { columns: 6, captions: r.generated.slice(0, 12).map((x) => (x.ok ? "" : "x ") + x.caption) },
  );
}
