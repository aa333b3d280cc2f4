//! weir-core: everything weir decides, with no I/O. It has no proxy-wasm dependency (Cargo keeps
//! it that way); the `weir` crate (`filter/host/`) is the only code that talks to Envoy, and it
//! only pumps host events into [`roles`] and applies what they return. Time, randomness and
//! shared data come in as arguments ([`roles::Env`]), so every test drives the real logic with
//! virtual time and an in-memory store.
//!
//! Modules, from the leaves up; each uses only those on its own line or above:
//! 1. [`ir`] (the canonical request/response/stream model), [`error`] (configuration errors),
//!    [`time`] (calendar arithmetic), [`store`] (the shared key-value store every worker sees).
//! 2. [`stream`]: SSE, NDJSON and AWS event-stream framers, across arbitrary chunk boundaries.
//! 3. [`wire`]: one codec per vendor format (client protocols and provider formats), IR both ways.
//! 4. The stages: [`metrics`] (what a finished request reports), [`limits`], [`auth`] (client
//!    keys; their limits are [`limits`] types), [`pii`], [`providers`] (accounts, credentials,
//!    key rotation, SigV4), [`routing`] (routes, targets, strategies, health; uses [`providers`]
//!    and [`limits`] prices), [`cache`] (uses [`routing`], [`limits`], [`pii`]).
//! 5. [`config`]: the plugin JSON, parsed strictly and compiled once into the stages' runtime forms.
//! 6. [`roles`]: the gateway role and the provider role, which sequence the stages per request.

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
