//! The deployment files, checked without running them (no Docker engine or Kubernetes runs on
//! our machines): docker-compose.yml against the Compose Specification's JSON schema, the
//! objects in deploy/spinkube/ against Kubernetes' own schemas, and all of them, with the
//! Dockerfile, against spin.toml. The schema tools come from tests/requirements.txt, installed
//! once into a virtualenv under target/ (python3 with venv and pip is all this needs).

mod common;

use common::repo_root;
use common::tools::{run, venv};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

const SPINAPP_API_VERSION: &str = "core.spinkube.dev/v1alpha1";

/// The fields of a SpinApp's `spec` (spin-operator's `SpinAppSpec`, core.spinkube.dev/v1alpha1).
const SPINAPP_SPEC_FIELDS: [&str; 18] = [
    "executor",
    "image",
    "imagePullSecrets",
    "checks",
    "replicas",
    "enableAutoscaling",
    "runtimeConfig",
    "volumes",
    "volumeMounts",
    "variables",
    "serviceAnnotations",
    "deploymentAnnotations",
    "podAnnotations",
    "podLabels",
    "resources",
    "components",
    "serviceAccountName",
    "invocationLimits",
];

/// The port of the Service spin-operator makes for each SpinApp.
const SPINAPP_SERVICE_PORT: u64 = 80;

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// Runs tests/deploy_check.py (from the repository root) and parses what it prints.
fn helper(args: &[&str]) -> Value {
    let out = run(
        Command::new(venv().join("bin/python"))
            .arg("tests/deploy_check.py")
            .args(args)
            .current_dir(repo_root()),
        &format!("deploy_check.py {}", args.join(" ")),
    );
    serde_json::from_slice(&out.stdout).expect("deploy_check.py prints JSON")
}

/// `check-jsonschema` with the Compose Specification schema it ships, on `path`.
fn compose_schema_check(path: &Path) -> Output {
    Command::new(venv().join("bin/check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(path)
        .output()
        .expect("cannot run check-jsonschema")
}

fn compose() -> Value {
    let mut docs = helper(&["yaml", "docker-compose.yml"]);
    assert_eq!(docs.as_array().map(Vec::len), Some(1), "one YAML document");
    docs[0].take()
}

// ---- spin.toml ----

struct SpinApp {
    /// `[variables]`: name -> declaration.
    variables: BTreeMap<String, toml::Table>,
    components: BTreeMap<String, SpinComponent>,
}

#[derive(Default)]
struct SpinComponent {
    source: String,
    /// Application variables its configuration refers to: component variables, allowed hosts
    /// and, for a Redis-triggered component, the trigger's channel and address.
    uses: BTreeSet<String>,
    /// Its HTTP routes, as written in spin.toml.
    routes: Vec<String>,
}

impl SpinApp {
    fn load() -> Self {
        let manifest: toml::Table = toml::from_str(&read("spin.toml")).unwrap();
        let variables = manifest["variables"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_table().cloned().unwrap_or_default()))
            .collect();
        let mut components: BTreeMap<String, SpinComponent> = BTreeMap::new();
        for (id, decl) in manifest["component"].as_table().unwrap() {
            let c = components.entry(id.clone()).or_default();
            c.source = decl["source"].as_str().unwrap().to_owned();
            let templates = decl
                .get("variables")
                .and_then(|v| v.as_table())
                .into_iter()
                .flat_map(|t| t.values())
                .chain(
                    decl.get("allowed_outbound_hosts")
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten(),
                );
            for template in templates.filter_map(|v| v.as_str()) {
                c.uses.extend(template_variables(template));
            }
        }
        let triggers = manifest.get("trigger").and_then(|t| t.as_table());
        for http in triggers
            .and_then(|t| t.get("http"))
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
        {
            if let (Some(route), Some(component)) = (
                http.get("route").and_then(|r| r.as_str()),
                http.get("component").and_then(|c| c.as_str()),
            ) {
                let c = components
                    .get_mut(component)
                    .expect("routed component exists");
                c.routes.push(route.to_owned());
            }
        }
        let redis_address = manifest
            .get("application")
            .and_then(|a| a.get("trigger"))
            .and_then(|t| t.get("redis"))
            .and_then(|r| r.get("address"))
            .and_then(|a| a.as_str())
            .unwrap_or_default();
        for redis in triggers
            .and_then(|t| t.get("redis"))
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
        {
            let component = redis["component"].as_str().unwrap();
            let c = components
                .get_mut(component)
                .expect("triggered component exists");
            c.uses.extend(template_variables(redis_address));
            c.uses
                .extend(template_variables(redis["channel"].as_str().unwrap_or("")));
        }
        Self {
            variables,
            components,
        }
    }

    fn required(&self, variable: &str) -> bool {
        self.variables[variable]
            .get("required")
            .and_then(|r| r.as_bool())
            .unwrap_or(false)
    }

    fn default(&self, variable: &str) -> Option<&str> {
        self.variables[variable]
            .get("default")
            .and_then(|d| d.as_str())
    }

    fn required_variables(&self) -> Vec<&str> {
        self.variables
            .keys()
            .map(String::as_str)
            .filter(|v| self.required(v))
            .collect()
    }
}

/// The names inside `{{ ... }}` of a Spin template.
fn template_variables(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("closed template");
        names.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    names
}

/// The path prefix a spin.toml route serves (`/api/cars/...` -> `/api/cars`).
fn route_prefix(route: &str) -> &str {
    let route = route.strip_suffix("/...").unwrap_or(route);
    match route.find("/:") {
        Some(i) => &route[..i],
        None => route,
    }
}

/// The `SPIN_VARIABLE_*` environment variable of a Spin variable, and back.
fn env_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

fn variable_of_env(name: &str) -> Option<String> {
    name.strip_prefix("SPIN_VARIABLE_")
        .map(|v| v.to_ascii_lowercase())
}

/// host of a URL like `scheme://user:password@host:port/path`.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.split(':').next().unwrap()
}

fn url_host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap();
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

// ---- docker-compose.yml and .env.example ----

#[test]
fn docker_compose_file_is_valid_under_the_compose_specification() {
    let out = compose_schema_check(&repo_root().join("docker-compose.yml"));
    assert!(
        out.status.success(),
        "docker-compose.yml breaks the Compose Specification:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The schema check above would pass vacuously if the tool accepted anything.
#[test]
fn the_compose_schema_check_rejects_a_broken_file() {
    let good = read("docker-compose.yml");
    let breakages = [
        ("condition: service_healthy", "condition: healthy"),
        ("    healthcheck:", "    healthchek:"),
        ("    depends_on:", "    depends_on: postgres\n    needs:"),
    ];
    for (from, to) in breakages {
        assert!(good.contains(from), "docker-compose.yml has no `{from}`");
        let broken = good.replacen(from, to, 1);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("broken-docker-compose.yml");
        std::fs::write(&path, broken).unwrap();
        let out = compose_schema_check(&path);
        assert!(
            !out.status.success(),
            "the schema check accepted docker-compose.yml with `{from}` made `{to}`"
        );
    }
}

#[test]
fn compose_file_makes_the_app_wait_for_healthy_engines_and_names_their_hosts() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    for name in ["app", "postgres", "rabbitmq", "redis"] {
        assert!(services.contains_key(name), "no `{name}` service");
    }
    let app = &services["app"];
    let context = app["build"]
        .as_str()
        .or_else(|| app["build"]["context"].as_str());
    assert_eq!(
        context,
        Some("."),
        "the app is built from the Dockerfile here"
    );
    let env_files: Vec<&str> = match &app["env_file"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a
            .iter()
            .filter_map(|f| f.as_str().or_else(|| f["path"].as_str()))
            .collect(),
        _ => vec![],
    };
    assert!(env_files.contains(&".env"), "the app reads .env");
    assert!(
        app["healthcheck"]["test"].is_array(),
        "the app has a healthcheck"
    );

    for (engine, probe) in [
        ("postgres", "pg_isready"),
        ("rabbitmq", "rabbitmq-diagnostics"),
        ("redis", "redis-cli"),
    ] {
        assert_eq!(
            app["depends_on"][engine]["condition"], "service_healthy",
            "the app waits for a healthy {engine}"
        );
        let test = services[engine]["healthcheck"]["test"].to_string();
        assert!(
            test.contains(probe),
            "{engine}'s healthcheck uses {probe}: {test}"
        );
        assert!(
            services[engine]["image"].is_string(),
            "{engine} runs an image"
        );
    }
    let rabbitmq = &services["rabbitmq"];
    assert!(
        rabbitmq["image"].as_str().unwrap().contains("management"),
        "the RabbitMQ image with the management UI"
    );
    let ports = rabbitmq["ports"].to_string();
    assert!(ports.contains(":15672\""), "15672 published: {ports}");

    let env = |name: &str| without_interpolations(app["environment"][name].as_str().unwrap());
    let postgres_url = env("SPIN_VARIABLE_POSTGRES_URL");
    assert_eq!(url_host(&postgres_url), "postgres");
    assert_eq!(
        env("SPIN_VARIABLE_POSTGRES_HOST"),
        url_host_port(&postgres_url),
        "postgres_host is host:port of postgres_url"
    );
    assert_eq!(url_host(&env("SPIN_VARIABLE_REDIS_URL")), "redis");
    assert_eq!(url_host(&env("AMQP_URL")), "rabbitmq");
}

/// `text` with each `${...}` interpolation replaced by a plain word.
fn without_interpolations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        out.push_str("value");
        let end = rest[start..].find('}').expect("closed interpolation");
        rest = &rest[start + end + 1..];
    }
    out + rest
}

struct EnvExample {
    /// `KEY=value` lines.
    set: BTreeMap<String, String>,
    /// `# KEY=value` lines: optional settings, named but left at their default.
    optional: BTreeSet<String>,
}

impl EnvExample {
    fn load() -> Self {
        let mut set = BTreeMap::new();
        let mut optional = BTreeSet::new();
        for line in read(".env.example").lines() {
            let line = line.trim();
            let (commented, line) = match line.strip_prefix('#') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let Some((key, value)) = line.split_once('=') else {
                assert!(commented || line.is_empty(), ".env.example: `{line}`");
                continue;
            };
            let is_key = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !is_key {
                assert!(commented, ".env.example: `{line}`");
            } else if commented {
                optional.insert(key.to_owned());
            } else {
                set.insert(key.to_owned(), value.to_owned());
            }
        }
        Self { set, optional }
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.set.keys().chain(&self.optional)
    }
}

/// `${NAME...}` interpolations of a compose file: (name, has a default, must be set).
fn interpolations(text: &str) -> Vec<(String, bool, bool)> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("${") {
        let start = i + at;
        i = start + 2;
        if start > 0 && bytes[start - 1] == b'$' {
            continue; // `$${...}`: a literal `$` for the container's shell
        }
        let inner = &text[start + 2..start + 2 + text[start + 2..].find('}').unwrap()];
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let rest = &inner[name_len..];
        found.push((
            inner[..name_len].to_owned(),
            rest.starts_with(":-") || rest.starts_with('-'),
            rest.starts_with(":?") || rest.starts_with('?'),
        ));
    }
    found
}

fn is_secret_name(name: &str) -> bool {
    ["PASSWORD", "PASS", "SECRET", "TOKEN", "KEY"]
        .iter()
        .any(|word| name.split('_').any(|part| part == *word))
}

#[test]
fn env_example_names_every_setting_and_commits_no_secret() {
    let spin = SpinApp::load();
    let example = EnvExample::load();
    let compose_text = read("docker-compose.yml");
    let compose = compose();
    let app_env = compose["services"]["app"]["environment"]
        .as_object()
        .expect("the app's environment as a mapping");

    for (name, _, _) in interpolations(&compose_text) {
        assert!(
            example.names().any(|n| *n == name),
            "docker-compose.yml uses ${{{name}}}, which .env.example does not name"
        );
    }
    for (name, value) in &example.set {
        if is_secret_name(name) {
            assert!(
                value.is_empty(),
                ".env.example gives {name} a value: leave secrets empty"
            );
            assert!(
                compose_text.contains(&format!("${{{name}:?")),
                "compose must refuse to start while {name} is empty (`${{{name}:?...}}`)"
            );
        }
    }
    // Every Spin variable named is one spin.toml declares...
    for name in example.names().chain(app_env.keys()) {
        if let Some(variable) = variable_of_env(name) {
            assert!(
                spin.variables.contains_key(&variable),
                "{name} sets `{variable}`, which spin.toml does not declare"
            );
        }
    }
    // ...and every required one reaches the app.
    for variable in spin.required_variables() {
        let env = env_name(variable);
        assert!(
            app_env.contains_key(&env) || example.set.contains_key(&env),
            "the app needs {env} (required in spin.toml)"
        );
    }
    let ignored = |file: &str| {
        read(file)
            .lines()
            .map(str::trim)
            .any(|l| l == ".env" || l == "/.env")
    };
    assert!(ignored(".gitignore"), ".env must be git-ignored");
    assert!(ignored(".dockerignore"), ".env must stay out of the image");
}

// ---- Dockerfile ----

struct Instruction {
    op: String,
    args: String,
}

/// The Dockerfile's instructions by stage (the first holds those before the first FROM),
/// with continuation lines joined and comments dropped.
fn dockerfile_stages() -> Vec<Vec<Instruction>> {
    let mut stages = vec![Vec::new()];
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let line = line.trim();
        if line.starts_with('#') || (current.is_empty() && line.is_empty()) {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let text = std::mem::take(&mut current);
        let (op, args) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
        let op = op.to_ascii_uppercase();
        if op == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().unwrap().push(Instruction {
            op,
            args: args.trim().to_owned(),
        });
    }
    stages
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn dockerfile_text_has_the_build_steps_a_non_root_user_and_the_files_the_app_reads() {
    let spin = SpinApp::load();
    let stages = dockerfile_stages();
    assert!(stages.len() >= 3, "a builder stage and a runtime stage");
    let global = &stages[0];
    let builder = &stages[1];
    let runtime = stages.last().unwrap();

    let toolchain: toml::Table = toml::from_str(&read("rust-toolchain.toml")).unwrap();
    let channel = toolchain["toolchain"]["channel"].as_str().unwrap();
    assert!(
        global
            .iter()
            .any(|i| i.op == "ARG" && i.args == format!("RUST_VERSION={channel}")),
        "the builder's Rust is rust-toolchain.toml's {channel}"
    );
    assert!(
        builder[0].args.starts_with("rust:"),
        "builds in a Rust image"
    );
    let build: String = builder
        .iter()
        .filter(|i| i.op == "RUN")
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join(" ; ");
    for step in [
        "rustup target add wasm32-wasip1",
        "cargo build --release --locked -p detailing",
        "target/release/detailing build",
    ] {
        assert!(build.contains(step), "the builder runs `{step}`");
    }

    assert!(
        !runtime[0].args.starts_with("rust:"),
        "the runtime stage is slim, not the toolchain"
    );
    let last = |op: &str| {
        runtime
            .iter()
            .rev()
            .find(|i| i.op == op)
            .map(|i| i.args.clone())
    };
    let user = last("USER").expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "root" && uid != "0",
        "runs as a non-root user, not {user}"
    );
    assert_eq!(last("WORKDIR").as_deref(), Some("/app"));

    let json = |op: &str| -> Vec<String> {
        serde_json::from_str(&last(op).unwrap_or_else(|| panic!("no {op}")))
            .unwrap_or_else(|_| panic!("{op} in exec (JSON) form"))
    };
    let command = [json("ENTRYPOINT"), json("CMD")].concat();
    assert_eq!(
        command,
        [
            "detailing",
            "up",
            "--listen",
            "0.0.0.0:3000",
            "--metrics-listen",
            "0.0.0.0:9464"
        ]
    );

    let env: String = runtime
        .iter()
        .filter(|i| i.op == "ENV")
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let cache_dir = words(&env)
        .into_iter()
        .find_map(|w| w.strip_prefix("DETAILING_CACHE_DIR="))
        .expect("DETAILING_CACHE_DIR set in the runtime stage");
    assert!(
        runtime
            .iter()
            .any(|i| i.op == "RUN" && i.args.contains("chown") && i.args.contains(cache_dir)),
        "the user owns {cache_dir}"
    );

    // What `detailing up` reads, at the paths spin.toml names relative to /app.
    let copied: Vec<String> = runtime
        .iter()
        .filter(|i| i.op == "COPY")
        .map(|i| {
            words(&i.args)
                .last()
                .unwrap()
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    let mut wanted: BTreeSet<String> = ["/app/spin.toml".into(), "/app/migrations".into()].into();
    for component in spin.components.values() {
        let dir = Path::new(&component.source).parent().unwrap();
        wanted.insert(format!("/app/{}", dir.display()));
    }
    for path in wanted {
        assert!(copied.contains(&path), "the runtime stage copies {path}");
    }

    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(|l| l.trim_matches('/').to_owned())
        .collect();
    assert!(
        ignored.contains(&"target".to_owned()),
        ".dockerignore target/"
    );
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "spin.toml",
        "crates",
        "components",
        "tests",
        "wit",
        "migrations",
    ] {
        assert!(
            !ignored.iter().any(|i| i == needed),
            ".dockerignore leaves out {needed}, which the build needs"
        );
    }
}

// ---- deploy/spinkube/ ----

struct KubeObject {
    file: String,
    doc: Value,
    schema: String,
}

impl KubeObject {
    fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.doc["metadata"]["name"].as_str().unwrap_or("")
    }

    fn at(&self) -> String {
        format!("{} ({}/{})", self.file, self.kind(), self.name())
    }
}

struct Kube {
    objects: Vec<KubeObject>,
    errors: Vec<String>,
}

impl Kube {
    fn of_kind(&self, kind: &str) -> impl Iterator<Item = &KubeObject> + '_ {
        let kind = kind.to_owned();
        self.objects.iter().filter(move |o| o.kind() == kind)
    }

    fn spinapps(&self) -> impl Iterator<Item = &KubeObject> + '_ {
        self.of_kind("SpinApp")
    }

    /// The SpinApp whose `components` lists `component`.
    fn spinapp_running(&self, component: &str) -> &KubeObject {
        self.spinapps()
            .find(|app| {
                app.doc["spec"]["components"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c == component))
            })
            .unwrap_or_else(|| panic!("no SpinApp runs {component}"))
    }

    /// Whether a Secret or ConfigMap of these files has `key`.
    fn has_key(&self, kind: &str, name: &str, key: &str) -> bool {
        self.of_kind(kind).filter(|o| o.name() == name).any(|o| {
            ["data", "stringData"]
                .iter()
                .any(|field| o.doc[field].get(key).is_some())
        })
    }

    /// Checks a `valueFrom` (of an env var or a SpinApp variable) names a key that exists here.
    fn check_value_from(&self, value_from: &Value, at: &str) {
        let refs = [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")];
        let found: Vec<_> = refs
            .iter()
            .filter(|(field, _)| value_from.get(field).is_some())
            .collect();
        assert_eq!(found.len(), 1, "{at}: one secretKeyRef or configMapKeyRef");
        let (field, kind) = found[0];
        let r = &value_from[field];
        let (name, key) = (r["name"].as_str().unwrap(), r["key"].as_str().unwrap());
        assert!(
            self.has_key(kind, name, key),
            "{at}: no {kind} `{name}` with key `{key}` in deploy/spinkube/"
        );
    }

    /// A workload's only container (Deployment or Job).
    fn container<'a>(&self, object: &'a KubeObject) -> &'a Value {
        let containers = object.doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1, "{}: one container", object.at());
        &containers[0]
    }
}

fn kube() -> &'static Kube {
    static KUBE: OnceLock<Kube> = OnceLock::new();
    KUBE.get_or_init(|| {
        let mut files: Vec<String> = std::fs::read_dir(repo_root().join("deploy/spinkube"))
            .expect("deploy/spinkube/")
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
            .map(|f| format!("deploy/spinkube/{f}"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no manifests in deploy/spinkube/");
        let mut args = vec!["k8s"];
        args.extend(files.iter().map(String::as_str));
        let out = helper(&args);
        let objects = out["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| KubeObject {
                file: d["file"].as_str().unwrap().to_owned(),
                doc: d["document"].clone(),
                schema: d["schema"].as_str().unwrap().to_owned(),
            })
            .collect();
        let errors = out["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect();
        Kube { objects, errors }
    })
}

#[test]
fn spinkube_manifests_match_kubernetes_schemas() {
    let kube = kube();
    assert!(
        kube.errors.is_empty(),
        "deploy/spinkube/ against Kubernetes' schemas:\n{}",
        kube.errors.join("\n")
    );
    let mut seen = BTreeSet::new();
    for object in &kube.objects {
        let name = object.name();
        let dns_name = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        assert!(
            dns_name,
            "{}: metadata.name must be a DNS label",
            object.at()
        );
        assert!(
            object.doc["spec"].is_object() || matches!(object.kind(), "Secret" | "ConfigMap"),
            "{}: has a spec",
            object.at()
        );
        assert!(
            seen.insert((object.kind().to_owned(), name.to_owned())),
            "{}: twice",
            object.at()
        );
        match object.kind() {
            "SpinApp" => {}
            "Secret" | "ConfigMap" | "Deployment" | "Job" | "Ingress" => assert_eq!(
                object.schema,
                "checked",
                "{}: Kubernetes' schema was not applied",
                object.at()
            ),
            other => panic!("{}: unexpected kind {other}", object.at()),
        }
    }
    for kind in ["SpinApp", "Secret", "Deployment", "Job"] {
        assert!(kube.of_kind(kind).next().is_some(), "no {kind}");
    }
}

#[test]
fn spinapps_list_every_component_of_spin_toml_exactly_once() {
    let spin = SpinApp::load();
    let kube = kube();
    let mut runs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut images = BTreeSet::new();
    for app in kube.spinapps() {
        let at = app.at();
        assert_eq!(app.doc["apiVersion"], SPINAPP_API_VERSION, "{at}");
        let spec = app.doc["spec"].as_object().unwrap();
        for field in spec.keys() {
            assert!(
                SPINAPP_SPEC_FIELDS.contains(&field.as_str()),
                "{at}: a SpinApp has no spec.{field}"
            );
        }
        images.insert(spec["image"].as_str().expect("spec.image").to_owned());
        assert_eq!(spec["executor"], "containerd-shim-spin", "{at}");
        assert!(
            !(spec.contains_key("replicas")
                && spec.get("enableAutoscaling") == Some(&Value::Bool(true))),
            "{at}: replicas and enableAutoscaling exclude each other"
        );
        let components = spec["components"]
            .as_array()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| panic!("{at}: selective deployment needs `components`"));
        let mut prefixes = Vec::new();
        for component in components {
            let component = component.as_str().unwrap();
            let decl = spin
                .components
                .get(component)
                .unwrap_or_else(|| panic!("{at}: spin.toml has no component {component}"));
            runs.entry(component).or_default().push(app.name());
            prefixes.extend(decl.routes.iter().map(|r| route_prefix(r)));
        }
        for (check, probe) in spec
            .get("checks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let path = probe["httpGet"]["path"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: checks.{check}.httpGet.path"));
            let served = path.starts_with("/.well-known/spin/")
                || prefixes
                    .iter()
                    .any(|p| path == *p || path.starts_with(&format!("{p}/")));
            assert!(
                served,
                "{at}: checks.{check} asks {path}, which it does not serve"
            );
        }
    }
    assert_eq!(images.len(), 1, "all SpinApps run one artifact: {images:?}");
    for component in spin.components.keys() {
        assert_eq!(
            runs.get(component.as_str()).map(Vec::len),
            Some(1),
            "{component} must run in exactly one SpinApp: {:?}",
            runs.get(component.as_str())
        );
    }
}

#[test]
fn spinapp_variables_are_declared_in_spin_toml_and_cover_what_their_components_use() {
    let spin = SpinApp::load();
    let kube = kube();
    for app in kube.spinapps() {
        let at = app.at();
        let spec = &app.doc["spec"];
        let uses: BTreeSet<&str> = spec["components"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| &spin.components[c.as_str().unwrap()].uses)
            .map(String::as_str)
            .collect();
        let mut set = BTreeMap::new();
        for variable in spec["variables"].as_array().into_iter().flatten() {
            let name = variable["name"].as_str().expect("variables[].name");
            assert!(
                spin.variables.contains_key(name),
                "{at}: sets `{name}`, which spin.toml does not declare"
            );
            assert!(
                uses.contains(name),
                "{at}: sets `{name}`, which none of its components uses"
            );
            let keys: BTreeSet<&str> = variable
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert!(
                keys == ["name", "value"].into() || keys == ["name", "valueFrom"].into(),
                "{at}: variable `{name}` needs one of value and valueFrom: {keys:?}"
            );
            if let Some(from) = variable.get("valueFrom") {
                kube.check_value_from(from, &format!("{at}: variable `{name}`"));
            }
            assert!(set.insert(name, variable).is_none(), "{at}: `{name}` twice");
        }
        for &name in &uses {
            let local_default = spin.default(name).is_some_and(|d| {
                d.contains("127.0.0.1") || d.contains("localhost") || d.contains(".spin.internal")
            });
            if spin.required(name) || local_default {
                assert!(
                    set.contains_key(name),
                    "{at}: its components use `{name}`, which needs a value on Kubernetes"
                );
            }
            // Chained calls cross pods: each goes to the Service of the callee's SpinApp.
            if let Some(callee) = name
                .strip_suffix("_url")
                .filter(|n| n.ends_with("_service"))
            {
                let callee = callee.replace('_', "-");
                let value = set[name]["value"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{at}: `{name}` as a plain value"));
                let target = kube.spinapp_running(&callee).name();
                assert_eq!(
                    url_host(value).split('.').next(),
                    Some(target),
                    "{at}: `{name}` = {value} must reach the Service of SpinApp {target}"
                );
                assert!(
                    value.starts_with("http://") && !value.contains(".spin.internal"),
                    "{at}: `{name}` = {value}: the callee runs in other pods, behind its Service"
                );
            }
        }
    }
}

#[test]
fn relay_and_migrate_manifests_name_the_host_image_and_only_the_secrets_they_use() {
    let spin = SpinApp::load();
    let kube = kube();
    let relays: Vec<_> = kube
        .of_kind("Deployment")
        .filter(|d| kube.container(d)["args"][0] == "relay")
        .collect();
    assert_eq!(
        relays.len(),
        1,
        "one relay Deployment running `detailing relay`"
    );
    let jobs: Vec<_> = kube
        .of_kind("Job")
        .filter(|j| kube.container(j)["args"] == serde_json::json!(["migrate"]))
        .collect();
    assert_eq!(jobs.len(), 1, "one Job running `detailing migrate`");
    let (relay, job) = (relays[0], jobs[0]);

    let spinapp_image = kube.spinapps().next().unwrap().doc["spec"]["image"].clone();
    let image = kube.container(relay)["image"].clone();
    assert_eq!(
        image,
        kube.container(job)["image"],
        "both run the host image"
    );
    assert_ne!(
        image, spinapp_image,
        "the host image (Dockerfile) is not the Spin artifact"
    );

    // Each gets what its command reads and no other secret: `detailing migrate` the database,
    // `detailing relay` the database, its credential and the broker. Above all, the relay
    // never holds the event signing key: it carries events signed before they reached it.
    let relay_needs = [
        "SPIN_VARIABLE_POSTGRES_URL",
        "SPIN_VARIABLE_RELAY_TOKEN",
        "AMQP_URL",
    ];
    for (object, needed) in [(relay, &relay_needs[..]), (job, &relay_needs[..1])] {
        let at = object.at();
        let container = kube.container(object);
        let env = container["env"].as_array().unwrap();
        let names: BTreeSet<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
        for name in needed {
            assert!(names.contains(name), "{at}: needs {name}");
        }
        for name in &names {
            assert!(
                needed.contains(name) || !is_secret_name(name),
                "{at}: holds {name}, which it does not use"
            );
        }
        assert!(spin.required("event_signing_key"));
        assert!(!names.contains("SPIN_VARIABLE_EVENT_SIGNING_KEY"), "{at}");
        for e in env {
            if let Some(from) = e.get("valueFrom") {
                kube.check_value_from(from, &format!("{at}: env {}", e["name"]));
            }
        }
        let pod = &object.doc["spec"]["template"]["spec"];
        assert!(
            pod["securityContext"]["runAsNonRoot"] == true
                || container["securityContext"]["runAsNonRoot"] == true,
            "{at}: runAsNonRoot"
        );
    }

    let args: Vec<&str> = kube.container(relay)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let bonus_url = args
        .windows(2)
        .find(|w| w[0] == "--bonus-url")
        .map(|w| w[1])
        .expect("the relay is told --bonus-url");
    let bonus = kube.spinapp_running("bonus-service").name();
    assert!(
        bonus_url.starts_with("http://"),
        "the relay speaks plain HTTP"
    );
    assert_eq!(url_host(bonus_url).split('.').next(), Some(bonus));
    assert!(bonus_url.ends_with("/api/bonuses/events"), "{bonus_url}");
}

#[test]
fn ingress_maps_each_route_to_the_spinapp_that_serves_it() {
    let spin = SpinApp::load();
    let kube = kube();
    let mut backends = BTreeMap::new();
    for ingress in kube.of_kind("Ingress") {
        for rule in ingress.doc["spec"]["rules"].as_array().unwrap() {
            for path in rule["http"]["paths"].as_array().unwrap() {
                let service = &path["backend"]["service"];
                backends.insert(
                    path["path"].as_str().unwrap().to_owned(),
                    (
                        service["name"].as_str().unwrap().to_owned(),
                        service["port"]["number"].as_u64(),
                    ),
                );
            }
        }
    }
    for (id, component) in &spin.components {
        let target = kube.spinapp_running(id).name();
        for route in &component.routes {
            let prefix = route_prefix(route);
            assert_eq!(
                backends.get(prefix),
                Some(&(target.to_owned(), Some(SPINAPP_SERVICE_PORT))),
                "{route} must go to Service {target}:{SPINAPP_SERVICE_PORT}"
            );
        }
    }
}

/// The user of an `amqp://` or the password of a `redis://` URL (with `${...}` as `value`).
fn url_credentials(url: &str) -> (String, String) {
    let url = without_interpolations(url);
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let userinfo = rest
        .split('/')
        .next()
        .unwrap()
        .rsplit_once('@')
        .map_or("", |(userinfo, _)| userinfo);
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (user.to_owned(), password.to_owned())
}

#[test]
fn brokers_need_credentials_and_only_the_two_event_services_hold_the_signing_key() {
    // spin.toml: the key goes to payment-service (signs) and bonus-service (checks) only, and
    // the fault-test switch is not shipped.
    let spin = SpinApp::load();
    let holders: BTreeSet<&str> = spin
        .components
        .iter()
        .filter(|(_, c)| c.uses.contains("event_signing_key"))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(holders, ["bonus-service", "payment-service"].into());
    assert!(spin.required("event_signing_key"));
    assert!(!spin.variables.contains_key("bonus_fail_events"));
    assert!(!read("spin.toml").contains("bonus_fail_events"));

    // Compose: Redis requires a password and the app's URL carries it; RabbitMQ's user is
    // not the default guest, in the broker and in the app's URL alike.
    let compose = compose();
    let services = &compose["services"];
    let redis = &services["redis"];
    let command = redis["command"].to_string();
    assert!(command.contains("requirepass"), "{command}");
    assert!(
        redis["environment"]["REDIS_PASSWORD"]
            .as_str()
            .is_some_and(|v| v.starts_with("${REDIS_PASSWORD:?")),
        "compose refuses to start without REDIS_PASSWORD"
    );
    let probe = redis["healthcheck"]["test"].to_string();
    assert!(
        probe.contains("REDISCLI_AUTH") && probe.contains("PONG"),
        "{probe}"
    );
    let app = &services["app"]["environment"];
    let redis_url = app["SPIN_VARIABLE_REDIS_URL"].as_str().unwrap();
    assert!(
        redis_url.contains("${REDIS_PASSWORD:?"),
        "the app's redis_url carries the password: {redis_url}"
    );
    assert_eq!(
        without_interpolations(app["SPIN_VARIABLE_REDIS_HOST"].as_str().unwrap()),
        url_host_port(&without_interpolations(redis_url)),
        "redis_host is host:port of redis_url"
    );
    assert!(app["SPIN_VARIABLE_EVENT_SIGNING_KEY"]
        .as_str()
        .unwrap()
        .starts_with("${SPIN_VARIABLE_EVENT_SIGNING_KEY:?"));
    let rabbitmq = &services["rabbitmq"]["environment"];
    let user = rabbitmq["RABBITMQ_DEFAULT_USER"].as_str().unwrap();
    let default = user.split(":-").nth(1).map(|d| d.trim_end_matches('}'));
    assert_ne!(default.unwrap_or(user), "guest", "RabbitMQ's user");
    assert_ne!(EnvExample::load().set["RABBITMQ_USER"], "guest");
    assert!(rabbitmq["RABBITMQ_DEFAULT_PASS"]
        .as_str()
        .unwrap()
        .starts_with("${RABBITMQ_PASSWORD:?"));
    let amqp_url = app["AMQP_URL"].as_str().unwrap();
    assert!(
        amqp_url.starts_with("amqp://${RABBITMQ_USER")
            && amqp_url.contains(":${RABBITMQ_PASSWORD:?"),
        "the app logs in as the broker's user: {amqp_url}"
    );

    // SpinKube: redis_url and amqp_url are secrets with a password and a user of their own;
    // every SpinApp reads redis_url from the Secret, and only the two event services get
    // the key.
    let kube = kube();
    let secret = kube
        .of_kind("Secret")
        .find(|s| s.name() == "detailing-secrets")
        .expect("Secret detailing-secrets");
    let values = &secret.doc["stringData"];
    let (_, password) = url_credentials(values["redis_url"].as_str().unwrap());
    assert_eq!(password, "REPLACE_ME");
    let (user, password) = url_credentials(values["amqp_url"].as_str().unwrap());
    assert!(user != "guest" && password == "REPLACE_ME", "{user}");
    assert!(values["event_signing_key"].as_str().unwrap().len() < 32);
    for object in kube.of_kind("ConfigMap") {
        assert!(
            object.doc["data"].get("redis_url").is_none(),
            "{}: redis_url carries a password: keep it in the Secret",
            object.at()
        );
    }
    for app in kube.spinapps() {
        for variable in app.doc["spec"]["variables"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = variable["name"].as_str().unwrap();
            if ["redis_url", "event_signing_key"].contains(&name) {
                assert!(
                    variable["valueFrom"].get("secretKeyRef").is_some(),
                    "{}: {name} from the Secret",
                    app.at()
                );
            }
            if name == "event_signing_key" {
                assert!(
                    ["payment-service", "bonus-service"].contains(&app.name()),
                    "{}: holds the event signing key",
                    app.at()
                );
            }
        }
    }
}

#[test]
fn committed_secret_manifests_hold_placeholders_only() {
    for secret in kube().of_kind("Secret") {
        let at = secret.at();
        assert!(
            secret.doc.get("data").is_none(),
            "{at}: stringData placeholders only, no data"
        );
        let values = secret.doc["stringData"].as_object().unwrap();
        for (key, value) in values {
            let value = value.as_str().unwrap();
            assert!(
                value.contains("REPLACE_ME"),
                "{at}: `{key}` is not a placeholder"
            );
        }
        if let Some(jwt) = values.get("jwt_secret").and_then(Value::as_str) {
            assert!(
                jwt.len() < 32,
                "{at}: the jwt_secret placeholder must be too short to sign with"
            );
        }
    }
}
