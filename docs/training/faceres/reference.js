// Reference forward pass of a TF.js graph model with TensorFlow.js itself (CPU backend), to check
// emodetect.vision.tfjs against: node reference.js MODEL.json INPUT.bin N H W C OUTPUT_NODE OUT.bin
// (`npm install @tensorflow/tfjs@4` in the folder it runs from; INPUT.bin float32 NHWC little-endian).
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");

async function main() {
  const [modelJson, inputBin, n, h, w, c, outputNode, outBin] = process.argv.slice(2);
  const model = JSON.parse(fs.readFileSync(modelJson));
  const folder = path.dirname(modelJson);
  const specs = model.weightsManifest.flatMap((g) => g.weights);
  const shards = model.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(folder, p))));
  const blob = Buffer.concat(shards);
  const weightData = blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength);
  const graph = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: model.modelTopology, weightSpecs: specs, weightData, format: model.format,
  }));
  const raw = fs.readFileSync(inputBin);
  const values = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const x = tf.tensor(values, [Number(n), Number(h), Number(w), Number(c)]);
  const y = graph.execute(x, outputNode);
  fs.writeFileSync(outBin, Buffer.from((await y.data()).buffer));
  console.log(outputNode, y.shape.join("x"));
}
main();
