//! The header names the two roles, and Envoy's route configuration, agree on. All of them carry
//! the internal prefix, so the gateway strips any a client sends and the provider role strips
//! every one before a provider sees the request.

/// The internal-name prefix no client may send and no provider may see.
pub const INTERNAL_PREFIX: &str = "x-weir-";

/// Request header set by the gateway role: the Envoy cluster the router must use (the route's
/// `cluster_header`).
pub const CLUSTER_HEADER: &str = "x-weir-cluster";

/// Response header set by the provider role: `response` (an IR answer) or `stream` (IR events).
pub const IR_HEADER: &str = "x-weir-ir";

/// Response header set by the provider role: the provider that answered.
pub const PROVIDER_HEADER: &str = "x-weir-provider";
