//! A component's configuration as the host's capabilities see it: its id, where it may
//! connect, its variables, its instance reuse, and the counters and caps kept across hot swaps.

use std::sync::Arc;

use crate::admission::Admission;
use crate::allowed_hosts::AllowedHosts;
use crate::metrics::ComponentMetrics;
use crate::reuse::ReusePolicy;
use crate::variables::ComponentVariables;

/// What a component's instances are allowed to do and see.
#[derive(Debug)]
pub struct ComponentConfig {
    pub id: String,
    pub allowed_hosts: AllowedHosts,
    pub variables: ComponentVariables,
    /// Kept across hot swaps with the rest of the configuration: a swap does not reset them.
    pub metrics: Arc<ComponentMetrics>,
    /// The component's concurrency cap, when it has one; kept across hot swaps too.
    pub admission: Option<Arc<Admission>>,
    /// How many requests one of its instances serves, and how long it waits idle.
    pub reuse: ReusePolicy,
}
