// The pipeline worker: loads the app's WebAssembly in a dedicated worker and hands over to Rust
// (`pipeline_worker` in app/src/browser/pipeline.rs), which posts "ready" once it listens.
import init, { pipeline_worker } from '/pkg/disktro.js';

await init({ module_or_path: '/pkg/disktro.wasm' });
pipeline_worker();
