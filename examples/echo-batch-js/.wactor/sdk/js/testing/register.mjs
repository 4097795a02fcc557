// register.mjs: registers the module hooks that let an actor module run
// under plain Node (unit tests) without the component:
//
//     node --import @wactor/sdk/testing/register.mjs --test test/
//     node --import ./.wactor/sdk/js/testing/register.mjs --test test/   (wactor test)
//
// See hooks.mjs for what is mapped where.

import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
