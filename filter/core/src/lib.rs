//! weir: an LLM gateway that runs inside Envoy as a proxy-wasm HTTP filter.
//!
//! The crate is a pure core plus one thin host layer:
//! - [`ir`] is the canonical request/response model; [`wire`] holds one codec per vendor format;
//!   [`stream`] frames SSE, NDJSON and AWS event-stream bytes across arbitrary chunk boundaries.
//! - [`auth`], [`pii`], [`limits`] and [`routing`] are the per-request stages; [`store`] is the
//!   shared-data abstraction they keep cross-worker state in.
//! - [`gateway`] (downstream role) and [`upstream`] (provider role, once per attempt) are sans-IO
//!   state machines that sequence those stages; [`config`] compiles the plugin JSON they share.
//!   [`handoff`] carries the IR between them: by reference when both run in one VM, else as JSON.
//! - [`host`] is the only module that touches proxy-wasm: it pumps host events into the state
//!   machines and applies their effects.

pub mod auth;
pub mod cache;
pub mod config;
pub mod error;
pub mod ir;
pub mod limits;
pub mod metrics;
pub mod pii;
pub mod providers;
pub mod roles;
pub mod routing;
pub mod store;
pub mod stream;
pub mod time;
pub mod wire;
