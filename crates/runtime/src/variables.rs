//! Application variables: resolve `[variables]` once at load, render `{{ name }}` templates
//! (component variables, allowed hosts), and answer the guest's `fermyon:spin/variables.get`.
//!
//! Values come from `SPIN_VARIABLE_<NAME>` like Spin, then from the embedder's fallbacks, then
//! from the manifest default. A missing required variable stops the load (Spin only fails at `get`).

use crate::manifest::{check_variable_name, VariableDecl};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};

/// Where a variable's value may come from, in priority order after the environment.
#[derive(Debug, Default, Clone)]
pub struct VariableSources {
    /// Values the embedder supplies when the environment has none (e.g. development defaults).
    pub fallbacks: HashMap<String, String>,
    /// Read `SPIN_VARIABLE_<NAME>` from the process environment.
    pub from_env: bool,
}

impl VariableSources {
    pub fn env() -> Self {
        Self {
            fallbacks: HashMap::new(),
            from_env: true,
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        if self.from_env {
            if let Ok(value) = std::env::var(env_name(name)) {
                return Some(value);
            }
        }
        self.fallbacks.get(name).cloned()
    }
}

/// `postgres_url` -> `SPIN_VARIABLE_POSTGRES_URL`.
pub fn env_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

/// The application's variables with their values fixed for the life of the loaded app.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    values: HashMap<String, String>,
}

impl AppVariables {
    pub fn resolve(
        decls: &BTreeMap<String, VariableDecl>,
        sources: &VariableSources,
    ) -> Result<Self> {
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for (name, decl) in decls {
            match sources.lookup(name).or_else(|| decl.default.clone()) {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None if decl.required => missing.push(name.as_str()),
                None => bail!("variable `{name}` needs either `required = true` or a default"),
            }
        }
        if !missing.is_empty() {
            let hint: Vec<String> = missing.iter().map(|n| env_name(n)).collect();
            bail!(
                "required variable(s) {} not set: set {}",
                missing.join(", "),
                hint.join(", ")
            );
        }
        Ok(Self { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Render a template such as `http://{{ host }}:80`; an undeclared name is an error.
    pub fn render(&self, template: &str) -> Result<String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("invalid variable template `{template}`: unclosed `{{{{`");
            };
            let name = after[..end].trim();
            match self.values.get(name) {
                Some(value) => out.push_str(value),
                None => bail!("invalid variable template: unknown variable \"{name}\""),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A component's `[component.x.variables]`, rendered.
    pub fn render_component(
        &self,
        templates: &BTreeMap<String, String>,
    ) -> Result<ComponentVariables> {
        let mut values = HashMap::new();
        for (name, template) in templates {
            values.insert(name.clone(), self.render(template)?);
        }
        Ok(ComponentVariables { values })
    }
}

/// What one component's guest can read with `variables::get`.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    values: HashMap<String, String>,
}

/// Mirrors the guest-visible error cases of `fermyon:spin/variables@2.0.0`.
#[derive(Debug, PartialEq, Eq)]
pub enum GetError {
    InvalidName(String),
    Undefined(String),
}

impl ComponentVariables {
    pub fn get(&self, name: &str) -> Result<String, GetError> {
        if check_variable_name(name).is_err() {
            return Err(GetError::InvalidName(format!(
                "invalid variable name `{name}`"
            )));
        }
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| GetError::Undefined(format!("no variable `{name}` for this component")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls() -> BTreeMap<String, VariableDecl> {
        let mut d = BTreeMap::new();
        d.insert(
            "host".into(),
            VariableDecl {
                default: Some("db:5432".into()),
                ..Default::default()
            },
        );
        d.insert(
            "secret_key".into(),
            VariableDecl {
                required: true,
                secret: true,
                ..Default::default()
            },
        );
        d
    }

    fn sources(pairs: &[(&str, &str)]) -> VariableSources {
        VariableSources {
            fallbacks: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            from_env: false,
        }
    }

    #[test]
    fn missing_required_variable_names_it_and_its_env_var() {
        let err = AppVariables::resolve(&decls(), &sources(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret_key"), "{err}");
        assert!(err.contains("SPIN_VARIABLE_SECRET_KEY"), "{err}");
    }

    #[test]
    fn sources_override_defaults_and_templates_render() {
        let vars =
            AppVariables::resolve(&decls(), &sources(&[("secret_key", "s3"), ("host", "h:1")]))
                .unwrap();
        assert_eq!(
            vars.render("postgres://{{ host }}").unwrap(),
            "postgres://h:1"
        );
        assert_eq!(
            vars.render("{{secret_key}}-{{ host }}!").unwrap(),
            "s3-h:1!"
        );
        assert_eq!(vars.render("plain").unwrap(), "plain");
        let err = vars.render("{{ nope }}").unwrap_err().to_string();
        assert_eq!(err, "invalid variable template: unknown variable \"nope\"");
        assert!(vars.render("{{ host").is_err());
    }

    #[test]
    fn component_get_distinguishes_invalid_and_undefined() {
        let vars = AppVariables::resolve(&decls(), &sources(&[("secret_key", "s")])).unwrap();
        let mut t = BTreeMap::new();
        t.insert("db_host".to_string(), "{{ host }}".to_string());
        let c = vars.render_component(&t).unwrap();
        assert_eq!(c.get("db_host").unwrap(), "db:5432");
        assert!(matches!(c.get("other"), Err(GetError::Undefined(_))));
        assert!(matches!(c.get("Bad-Name"), Err(GetError::InvalidName(_))));
    }
}
