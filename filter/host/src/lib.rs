//! weir, the proxy-wasm filter: the shell around `weir-core`. Everything here is I/O; every
//! decision is made by the core's sans-IO roles, which this crate only pumps.
//!
//! - [`abi`]: the only place that calls the proxy-wasm host; every status becomes a `Result`.
//! - `root`: the root context. The plugin's `root_id` (`weir-gateway` or `weir-provider`) picks
//!   the role, so one binary and one configuration serve both filters; the configuration is
//!   compiled once in `on_configure` and shared by every request.
//! - `shell`: one HTTP context per request (gateway role) or per upstream attempt (provider
//!   role): Envoy's callbacks in, the role's effects applied.
//! - `env`: shared data, the clock, randomness and the upstream endpoint, as the roles' `Env`.
//! - `metrics`: a finished request's metrics and access-log record.
//!
//! Both filters must set Envoy's `allow_on_headers_stop_iteration: true`: weir pauses headers
//! until it has read the body (routing depends on the model inside it), and without that option
//! Envoy would stop delivering the body too.

pub mod abi;
mod env;
mod metrics;
mod root;
mod shell;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;
pub use root::{GATEWAY_ROOT_ID, PROVIDER_ROOT_ID};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::Root::default()) });
}}
