//! The header names the two roles, and Envoy's route configuration, agree on. All of them carry
//! the internal prefix, so the gateway strips any a client sends and the provider role strips
//! every one before a provider sees the request.

/// The internal-name prefix no client may send and no provider may see.
pub const INTERNAL_PREFIX: &str = "x-weir-";

/// Request header set by the gateway role: the Envoy cluster the router must use (the route's
/// `cluster_header`).
pub const CLUSTER_HEADER: &str = "x-weir-cluster";

/// Request header set by the gateway role on a stored-response call (`GET /v1/responses/{id}`,
/// ...): the provider that serves it. Such a call carries no IR: its own method and path are the
/// request, and its answer passes back unchanged.
pub const STORED_HEADER: &str = "x-weir-stored";

/// Response header set by the provider role: `response` (an IR answer), `stream` (IR events) or
/// `raw` (a stored-response call's answer, unchanged).
pub const IR_HEADER: &str = "x-weir-ir";

/// Response header set by the provider role: the provider that answered.
pub const PROVIDER_HEADER: &str = "x-weir-provider";

/// Response header: the request fields dropped because the target could not express them
/// (comma-separated, in IR spelling; see `wire::drop`). The provider role sets it for the
/// attempt that answered; the gateway records it and passes it to the client, always.
pub const DROPPED_HEADER: &str = "x-weir-dropped";

/// Response header for clients: `estimate` on a `count_tokens` answer weir counted itself,
/// because the provider that served it cannot count tokens.
pub const TOKEN_COUNT_HEADER: &str = "x-weir-token-count";
