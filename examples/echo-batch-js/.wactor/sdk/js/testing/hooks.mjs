// hooks.mjs: Node module resolve hooks (registered by register.mjs) that
// replace the component's imports with the fake host in ./fake/:
//
//   wactor:actor/<iface>@0.2.0    -> fake/<iface>.js (logging, emit, state, config, batch)
//   wasi:<anything>               -> fake/wasi.js (the HTTP client's WASI subset)
//   @wactor/sdk, @wactor/sdk/...  -> this copy of the SDK (../src/index.js,
//                                    ./index.js), so tests and actor share
//                                    one SDK and need no node_modules.

const FAKE = new Set(['logging', 'emit', 'state', 'config', 'batch']);

/**
 * @param {string} specifier
 * @param {object} context
 * @param {Function} nextResolve
 */
export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('wactor:actor/')) {
    const iface = specifier.slice('wactor:actor/'.length).replace(/@.*$/, '');
    if (!FAKE.has(iface)) throw new Error(`@wactor/sdk testing: no fake for ${specifier}`);
    return { url: new URL(`./fake/${iface}.js`, import.meta.url).href, shortCircuit: true };
  }
  if (specifier.startsWith('wasi:')) {
    return { url: new URL('./fake/wasi.js', import.meta.url).href, shortCircuit: true };
  }
  if (specifier === '@wactor/sdk') {
    return { url: new URL('../src/index.js', import.meta.url).href, shortCircuit: true };
  }
  if (specifier === '@wactor/sdk/batch') {
    return { url: new URL('../src/batch.js', import.meta.url).href, shortCircuit: true };
  }
  if (specifier === '@wactor/sdk/testing') {
    return { url: new URL('./index.js', import.meta.url).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
