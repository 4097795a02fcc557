// host.js: the only SDK module that imports the wactor:actor interfaces of
// the WIT world `actor` (wit/actor.wit, wactor:actor@0.2.0).
//
// Inside a component, componentize-js binds these specifiers to the host's
// imports. Under Node (unit tests), testing/register.mjs maps them to the
// fake host in testing/fake/. Nothing else in the SDK names a `wactor:`
// specifier, so the binding layer is one file.
//
// Value mapping done by componentize-js (relied on across the SDK):
//   option<T>      -> T | undefined
//   list<u8>       -> Uint8Array
//   s64 / u64      -> BigInt;  s32 / u32 -> number
//   result<_, E>   -> returns undefined, or throws an Error whose `payload` is E
//   enum level     -> the case name as a string ('info')
//   variant        -> { tag: 'case', val: payload }

export { log as hostLog } from 'wactor:actor/logging@0.2.0';
export { send as hostEmit } from 'wactor:actor/emit@0.2.0';
export {
  get as hostStateGet,
  set as hostStateSet,
  delete as hostStateDelete,
} from 'wactor:actor/state@0.2.0';
export { get as hostConfigGet, getAll as hostConfigGetAll } from 'wactor:actor/config@0.2.0';
