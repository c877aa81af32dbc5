// Runs the wasm32-wasip1 build of portcullis-bench-gate in Node's V8 with Liftoff off, as
// proxy-wasm-cpp-host configures V8 inside Envoy: `node --no-liftoff run.mjs <wasm> [stage]`.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv } from 'node:process';

const wasi = new WASI({ version: 'preview1', args: ['portcullis-bench-gate', ...argv.slice(3)], env: {} });
const module = await WebAssembly.compile(await readFile(argv[2]));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
wasi.start(instance);
