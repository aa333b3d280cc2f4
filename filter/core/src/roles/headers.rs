//! The header names the two roles, and Envoy's route configuration, agree on, and which provider
//! headers may reach a client. The internal names all carry the internal prefix, so the gateway
//! strips any a client sends and the provider role strips every one before a provider sees the
//! request; of a provider's response headers the provider role passes only an allowlist.

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

/// The provider response headers a client may see: the answer's type, when to retry, and the
/// provider's id for this one request (what its support desk asks for). Everything else a
/// provider sends is removed by the provider role before any of Envoy's filters see the answer:
/// account-wide rate-limit state (`x-ratelimit-*`, `anthropic-ratelimit-*`: one tenant would see
/// the company's quota use), account and project ids, cookies, CORS, HSTS, redirects, server
/// details. Rate-limit headers a client gets describe its own key's limits, and are weir's or
/// Envoy's ratelimit filter's, added after this (see docs/limits-and-routing.md).
pub const PROVIDER_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "retry-after",
    // OpenAI, Azure OpenAI, Mistral and most OpenAI-compatible servers.
    "x-request-id",
    // OpenAI: how long the provider worked on this request.
    "openai-processing-ms",
    // Anthropic.
    "request-id",
    // Azure API Management in front of Azure OpenAI.
    "apim-request-id",
    // Bedrock.
    "x-amzn-requestid",
];

/// The response headers to remove so that only pseudo-headers and [`PROVIDER_RESPONSE_HEADERS`]
/// remain. Sorted, without repeats (one removal per name removes every value).
pub fn response_strip_list(headers: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut remove: Vec<String> = headers
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !n.starts_with(':') && !PROVIDER_RESPONSE_HEADERS.contains(&n.as_str()))
        .cloned()
        .collect();
    remove.sort_unstable();
    remove.dedup();
    remove
}

/// The request headers the provider role removes before anything else: every one but the
/// pseudo-headers and
/// [`TRACING_REQUEST_HEADERS`](crate::providers::TRACING_REQUEST_HEADERS). What a provider needs, the provider role
/// then sets itself (content type, credentials, API version, and the client headers the
/// provider's allowlist passes: [`passed_client_headers`]). Sorted, without repeats.
pub fn request_strip_list(headers: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut remove: Vec<String> = headers
        .iter()
        .map(|(n, _)| n)
        .filter(|n| {
            !n.starts_with(':') && !crate::providers::TRACING_REQUEST_HEADERS.contains(&n.as_str())
        })
        .cloned()
        .collect();
    remove.sort_unstable();
    remove.dedup();
    remove
}

/// The most bytes one passed client header may carry (its values joined).
pub const MAX_PASSED_HEADER_BYTES: usize = 1024;

/// The client's values of the headers named in `names`, for the provider role to set on the
/// providers whose allowlist names them. Repeated headers are joined with `, ` (HTTP's list
/// form); a header whose value is not visible ASCII or is longer than
/// [`MAX_PASSED_HEADER_BYTES`] is not passed at all, so nothing malformed rides along.
pub fn passed_client_headers(
    headers: &[(String, Vec<u8>)],
    names: &[String],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in names {
        let mut joined = String::new();
        let mut ok = true;
        for (_, v) in headers.iter().filter(|(n, _)| n == name) {
            let visible = v.iter().all(|b| (0x20..0x7f).contains(b) || *b == b'\t');
            let len = joined.len() + v.len() + 2;
            if !visible || len > MAX_PASSED_HEADER_BYTES {
                ok = false;
                break;
            }
            if !joined.is_empty() {
                joined.push_str(", ");
            }
            joined.push_str(&String::from_utf8_lossy(v));
        }
        if ok && !joined.trim().is_empty() {
            out.push((name.clone(), joined.trim().to_string()));
        }
    }
    out
}
