import { getDataset } from "/work/main/src/data/datasets/index.ts";
import { evaluateShapes } from "/work/main/src/eval/shapes.ts";
import { TransfusionPipeline } from "/work/main/src/generate/pipeline.ts";

const p = TransfusionPipeline.load(process.argv[2]);
const ds = await getDataset("shapes", { difficulty: "easy" });
const settings = JSON.parse(process.argv[3]);
for (const s of settings) {
  const t0 = Date.now();
  const r = evaluateShapes(p, ds, { count: 64, batch: 32, image: { seed: 7, ...s } });
  console.log(
    JSON.stringify(s),
    `gen ${r.generationAccuracy.toFixed(3)} all ${r.generationAllAttributes.toFixed(3)} (${((Date.now() - t0) / 1000).toFixed(0)}s)`,
  );
}
