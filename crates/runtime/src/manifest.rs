//! The Spin application manifest (`spin.toml`, manifest version 2): parsing and checks.
//!
//! Only the parts of the format this host serves are modelled; unknown keys are ignored
//! like Spin ignores them, so a manifest written for the real Spin CLI loads unchanged.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Trigger settings shared by the application, e.g. `[application.trigger.redis]`.
    #[serde(default)]
    pub trigger: ApplicationTriggers,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApplicationTriggers {
    pub redis: Option<RedisApplicationTrigger>,
}

/// `[application.trigger.redis] address = "redis://..."` (may use `{{ variables }}`).
#[derive(Debug, Clone, Deserialize)]
pub struct RedisApplicationTrigger {
    pub address: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct VariableDecl {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    #[serde(default)]
    pub redis: Vec<RedisTriggerDecl>,
}

/// `[[trigger.redis]]`: a channel, the component that handles its messages, and optionally
/// its own `address` instead of the application's.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisTriggerDecl {
    pub channel: String,
    pub component: String,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpTrigger {
    pub route: RouteDecl,
    pub component: String,
}

/// `route = "/api/..."` or `route = { private = true }` (reachable only by chaining).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RouteDecl {
    Path(String),
    Private { private: bool },
}

#[derive(Debug, Clone, Deserialize)]
pub struct ComponentDecl {
    pub source: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub build: Option<BuildDecl>,
    /// Settings for tools other than Spin, by tool name; Spin ignores them. This host reads
    /// `[component.<id>.tool.detailing]` (instance reuse, crate::reuse).
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuildDecl {
    pub command: String,
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A manifest and the folder its relative paths start from.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    pub manifest: Manifest,
    pub dir: PathBuf,
}

impl LoadedManifest {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let manifest = Manifest::parse(&text)
            .with_context(|| format!("invalid manifest {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Ok(Self { manifest, dir })
    }

    pub fn source_path(&self, component: &ComponentDecl) -> PathBuf {
        self.dir.join(&component.source)
    }
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text)?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<()> {
        if self.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version {} is not supported (only 2)",
                self.spin_manifest_version
            );
        }
        for name in self.variables.keys() {
            check_variable_name(name)?;
        }
        for (id, component) in &self.component {
            check_component_id(id)?;
            for name in component.variables.keys() {
                check_variable_name(name).with_context(|| format!("component `{id}` variables"))?;
            }
        }
        for trigger in &self.trigger.http {
            if !self.component.contains_key(&trigger.component) {
                bail!(
                    "HTTP trigger for route {:?} names unknown component `{}`",
                    trigger.route,
                    trigger.component
                );
            }
            if let RouteDecl::Path(route) = &trigger.route {
                if !route.starts_with('/') {
                    bail!("route `{route}` must start with `/`");
                }
            }
        }
        for trigger in &self.trigger.redis {
            if !self.component.contains_key(&trigger.component) {
                bail!(
                    "Redis trigger for channel `{}` names unknown component `{}`",
                    trigger.channel,
                    trigger.component
                );
            }
            if trigger.address.is_none() && self.application.trigger.redis.is_none() {
                bail!(
                    "Redis trigger for channel `{}` has no address: set `address` on it or \
                     `[application.trigger.redis] address`",
                    trigger.channel
                );
            }
        }
        Ok(())
    }
}

/// Spin's rule: lower-case ASCII letters, digits and underscores, starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("invalid variable name `{name}`: use lower-case letters, digits and underscores");
    }
    Ok(())
}

/// Component ids are kebab-case words, as Spin requires; they become `<id>.spin.internal`.
fn check_component_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.split('-').all(|w| {
            !w.is_empty()
                && w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        bail!("invalid component id `{id}`: use lower-case kebab-case words");
    }
    Ok(())
}

/// A resolved `[[trigger.redis]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTrigger {
    pub address: String,
    pub channel: String,
    pub component: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
version = "1.0.0"
[variables]
db = { required = true, secret = true }
greeting = { default = "hi" }
[[trigger.http]]
route = "/hello/..."
component = "hello"
[[trigger.http]]
route = { private = true }
component = "hello"
[component.hello]
source = "hello.wasm"
allowed_outbound_hosts = ["http://*.spin.internal"]
[component.hello.variables]
message = "{{ greeting }} there"
[component.hello.build]
command = "cargo build"
watch = ["src/**/*.rs"]
"#;

    #[test]
    fn parses_routes_variables_components_and_build() {
        let m = Manifest::parse(SAMPLE).unwrap();
        assert_eq!(m.application.name, "demo");
        assert!(m.variables["db"].required && m.variables["db"].secret);
        assert_eq!(m.variables["greeting"].default.as_deref(), Some("hi"));
        assert!(matches!(&m.trigger.http[0].route, RouteDecl::Path(p) if p == "/hello/..."));
        assert!(matches!(
            m.trigger.http[1].route,
            RouteDecl::Private { private: true }
        ));
        let c = &m.component["hello"];
        assert_eq!(c.variables["message"], "{{ greeting }} there");
        assert_eq!(c.build.as_ref().unwrap().watch, ["src/**/*.rs"]);
    }

    #[test]
    fn rejects_unknown_component_in_trigger() {
        let text = SAMPLE.replace(
            "component = \"hello\"\n[[trigger.http]]",
            "component = \"nope\"\n[[trigger.http]]",
        );
        let err = Manifest::parse(&text).unwrap_err();
        assert!(
            err.to_string().contains("unknown component `nope`"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_variable_names_and_versions() {
        assert!(check_variable_name("Upper").is_err());
        assert!(check_variable_name("9lives").is_err());
        assert!(check_variable_name("ok_name_2").is_ok());
        let text = SAMPLE.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(Manifest::parse(&text).is_err());
    }
}
