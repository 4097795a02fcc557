// Written by `wactor build` (batch = true in actor.toml): the actor's
// module, and the handle-batch export the SDK makes from its handle.
export * from "/work/main/tests/../examples/echo-batch-js/src/actor.js";
import { handle } from "/work/main/tests/../examples/echo-batch-js/src/actor.js";
import { batch } from '@wactor/sdk/src/batch.js';
export const handleBatch = batch(handle);
