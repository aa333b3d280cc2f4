"""A small rate limit service (Envoy's `envoy.service.ratelimit.v3.RateLimitService`) over Redis,
for weir's tests and demo of global limits; production runs envoyproxy/ratelimit on the same file.

It reads envoyproxy/ratelimit's configuration format (`domain`, nested `descriptors` of
`key`/`value`, `rate_limit: {unit, requests_per_unit}` or `{unlimited: true}`, `shadow_mode`) and
applies it the same way: a request descriptor gets the limit of the most specific configured path
that matches all of its entries (an entry without `value` in the file matches any value, and each
value counts separately); counters are fixed windows in Redis (`INCRBY` + `EXPIRE`), keyed by
domain, entries and window start. Hits: the descriptor's own `hits_addend` when Envoy set one (0
included: a check that adds nothing), else the request's `hits_addend`, else 1.

A request is OVER_LIMIT when any descriptor would pass its limit (`count + hits > limit`). All of
a request's descriptors are checked and counted in one Lua script, so concurrent requests from
every Envoy replica serialise in Redis and none is admitted on a stale count. A refused request is
counted only against the limits that refused it (envoyproxy/ratelimit likewise counts a refused
hit on the refusing limit), so it cannot use up a budget it was not admitted to.
"""
