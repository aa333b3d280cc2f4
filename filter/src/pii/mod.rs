//! PII scrubbing: finds personal data and secrets in every text a provider would see, applies the
//! configured action, and restores placeholders in answers (streams included).
//! STUB: to be implemented.

use crate::config::ConfigError;
use crate::ir::{Request, Response, StreamEvent};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {}

/// What was found in one request: counts by detector name, never values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detections {
    pub counts: Vec<(String, u32)>,
}

/// A request was refused by a `block` action; names the data type only.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocked {
    pub detector: String,
}

pub struct Vault;

impl Vault {
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn restore_response(&self, _resp: &mut Response) {}
}

pub struct EventRestorer;

impl EventRestorer {
    pub fn new() -> Self {
        EventRestorer
    }
    pub fn event(&mut self, _vault: &Vault, ev: StreamEvent, out: &mut Vec<StreamEvent>) {
        out.push(ev)
    }
    pub fn flush(&mut self, _vault: &Vault, _out: &mut Vec<StreamEvent>) {}
}

impl Default for EventRestorer {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Scrubber;

impl Scrubber {
    pub fn compile(_cfg: &PiiConfig) -> Result<Scrubber, ConfigError> {
        Ok(Scrubber)
    }
    pub fn enabled(&self) -> bool {
        false
    }
    pub fn restores(&self) -> bool {
        false
    }
    pub fn new_vault(&self) -> Vault {
        Vault
    }
    pub fn scrub_request(
        &self,
        _req: &mut Request,
        _vault: &mut Vault,
    ) -> Result<Detections, Blocked> {
        Ok(Detections::default())
    }
}
