import type { RouteOptions } from 'fastify';

type RouteHookName = 'onRequest' | 'preHandler' | 'onResponse';
/** One hook of a route's `name` list (a route declares one, or an array of them). */
type OneHook<Name extends RouteHookName> = Exclude<NonNullable<RouteOptions[Name]>, readonly unknown[]>;

/**
 * Adds a hook to one route's own, after those the route declares: a hook that only some routes need, or that
 * needs to know its route, costs nothing on the others and never looks the route up per request.
 */
export function appendRouteHook<Name extends RouteHookName>(route: RouteOptions, name: Name, hook: OneHook<Name>): void {
  const own = route[name] as unknown;
  const hooks = own === undefined ? [] : Array.isArray(own) ? (own as unknown[]) : [own];
  (route as unknown as Record<Name, unknown>)[name] = [...hooks, hook];
}
