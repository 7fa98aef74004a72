// How a driver's store is put together from its parts, the same way in every driver: a part is a module
// of functions taking the driver's core first (intake, dispatch, receipts, outbox, admin); bound to one
// core they are the Store's methods. One place for the wiring, instead of each driver spelling out the
// same delegation for every method.
import type { Store } from "./index.ts";

// `any`: what lets each function keep its own parameter types through Bound.
type Fn<C> = (core: C, ...args: any[]) => unknown;

/** A part's functions with the core already given. */
export type Bound<P> = { [K in keyof P]: P[K] extends (core: never, ...args: infer A) => infer R ? (...args: A) => R : never };

export function bind<C, P extends Record<string, Fn<C>>>(core: C, part: P): Bound<P> {
  return Object.fromEntries(Object.entries(part).map(([name, fn]) => [name, (...args: unknown[]) => fn(core, ...args)])) as Bound<P>;
}

/** The Store's media methods: each driver keeps them in a class of its own (media.ts). */
export const mediaMethods = ["adaptedMedia", "putAdaptedMedia", "ensureMediaLink", "mediaLink", "noMmsMemory", "listNoMms", "forgetNoMms", "purgeMedia"] as const;
export type MediaMethods = Pick<Store, (typeof mediaMethods)[number]>;

/** The media methods of a driver's media class, bound to it. */
export function mediaOf(media: MediaMethods): MediaMethods {
  return Object.fromEntries(mediaMethods.map((name) => [name, media[name].bind(media)])) as unknown as MediaMethods;
}
