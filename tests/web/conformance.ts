// The .d.ts files against the JS modules they describe: every declared export must exist
// in the JS with a type the declaration accepts, and the JS may export nothing more.
import * as declared from "../../tocsin/web/static/tocsin/tocsin.js";
import * as declaredDefine from "../../tocsin/web/static/tocsin/define.js";
import * as impl from "tocsin-impl/tocsin.js";
import * as implDefine from "tocsin-impl/define.js";

type Extra<Impl, Decl> = Exclude<keyof Impl, keyof Decl>;
type Missing<Impl, Decl> = Exclude<keyof Decl, keyof Impl>;
/** Compiles only when both name sets are empty (the error names what is not). */
function same<E extends never, M extends never>(): void {}

// Exports the JS has that the .d.ts does not declare, and the reverse.
same<Extra<typeof impl, typeof declared>, Missing<typeof impl, typeof declared>>();
same<Extra<typeof implDefine, typeof declaredDefine>, Missing<typeof implDefine, typeof declaredDefine>>();

// Each value export of the JS is usable as declared (classes: constructor and members).
export const tocsin: typeof declared = impl;
export const define: typeof declaredDefine = implDefine;

// The state objects the JS builds are the declared ones.
export function states(c: InstanceType<typeof impl.TocsinClient>, f: InstanceType<typeof impl.TopicFeed>) {
  const s: declared.ClientState = c.state;
  const t: declared.TopicState = f.state;
  return [s, t];
}

// Web Push: the JS functions (lib/push.js behind tocsin.js) accept what the .d.ts
// promises and resolve to the declared shapes.
export async function push(opts: declared.PushOptions) {
  const sub: declared.PushSubscriptionInfo = await impl.subscribePush(opts);
  const st: declared.PushState = await impl.pushState(opts);
  const had: boolean = await impl.unsubscribePush(opts);
  const ok: boolean = impl.pushSupported();
  return [sub, st, had, ok];
}
