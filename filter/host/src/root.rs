//! The root context: which role this plugin is (from its `root_id`), and the configuration,
//! parsed and compiled once in `on_configure` and shared by every HTTP context it creates.

use crate::abi::{self, Buffer};
use crate::env::HostStore;
use crate::shell::Shell;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;
use weir_core::config::Config;
use weir_core::roles::gateway::GatewayRole;
use weir_core::roles::provider::ProviderRole;

pub const GATEWAY_ROOT_ID: &str = "weir-gateway";
pub const PROVIDER_ROOT_ID: &str = "weir-provider";

/// Which filter this root context is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Gateway,
    Provider,
}

#[derive(Default)]
pub struct Root {
    config: Option<Rc<Config>>,
    role: Option<Which>,
    /// Announces the provider role in this VM to the gateway role (in-VM hand-off).
    provider_root: Option<weir_core::roles::handoff::ProviderRoot>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let root_id = abi::property_str(&["plugin_root_id"]).unwrap_or_default();
        let role = match root_id.as_str() {
            GATEWAY_ROOT_ID => Which::Gateway,
            PROVIDER_ROOT_ID => Which::Provider,
            other => {
                log::error!(
                    "weir: unknown root_id {other:?}; use {GATEWAY_ROOT_ID:?} (downstream filter) \
                     or {PROVIDER_ROOT_ID:?} (upstream filter)"
                );
                return false;
            }
        };
        let bytes = match abi::buffer(Buffer::PluginConfiguration, size) {
            Ok(b) => b,
            Err(e) => {
                log::error!(
                    "weir: cannot read the plugin configuration (status {})",
                    e.0
                );
                return false;
            }
        };
        let read_env = |name: &str| std::env::var(name).ok();
        match Config::parse(&bytes, &read_env) {
            Ok((config, warnings)) => {
                for w in warnings {
                    log::warn!("weir: {w}");
                }
                if role == Which::Gateway {
                    let keys = config
                        .keys
                        .keys()
                        .filter_map(|k| Some((k.id.as_str(), k.limits.as_ref()?)));
                    if let Err(e) = config.limiter.seed(&HostStore, keys) {
                        log::warn!("weir: could not seed limit counters: {e:?}");
                    }
                    if let Err(e) = config.router.seed(&HostStore) {
                        log::warn!("weir: could not seed routing health records: {e:?}");
                    }
                }
                if role == Which::Provider && self.provider_root.is_none() {
                    self.provider_root = Some(weir_core::roles::handoff::ProviderRoot::new());
                }
                log::info!("weir: {root_id} configured");
                self.config = Some(Rc::new(config));
                self.role = Some(role);
                true
            }
            Err(e) => {
                log::error!("weir: invalid configuration: {e}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = Rc::clone(self.config.as_ref()?);
        Some(match self.role? {
            Which::Gateway => Box::new(Shell::new(GatewayRole::new(config))),
            Which::Provider => Box::new(Shell::new(ProviderRole::new(config))),
        })
    }
}
