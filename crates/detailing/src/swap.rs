//! Hot swap from the command line: `detailing up --admin-listen <loopback>` serves the
//! runtime's admin endpoint, records its URL in `.detailing/admin-url` and a fresh random token
//! in `.detailing/admin-token` (readable by its owner only); `detailing swap` reads both and
//! sends a new .wasm there. The host compiles it and swaps it in; in-flight requests finish on
//! the old version, and a build that does not load leaves the old one serving.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use runtime::App;
use tokio::sync::watch;

const ADMIN_URL_FILE: &str = ".detailing/admin-url";
const ADMIN_TOKEN_FILE: &str = ".detailing/admin-token";

/// A new random token for one run of the admin endpoint (two v4 UUIDs: 244 random bits).
fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Writes `token` to `file`, readable and writable by the owner only, replacing any old one.
fn write_secret(file: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(file);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file)?.write_all(token.as_bytes())
}

/// Binds the admin endpoint, announces it (stdout and the admin-url file) and serves it
/// until shutdown.
pub async fn start_admin(
    app: Arc<App>,
    listen: SocketAddr,
    app_dir: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    if !listen.ip().is_loopback() {
        bail!("--admin-listen must be a loopback address (it has no authentication), not {listen}");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for the admin endpoint"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let token = new_token();
    let token_file = app_dir.join(ADMIN_TOKEN_FILE);
    // Without the token on disk nobody could swap: refuse to start rather than serve blind.
    write_secret(&token_file, &token).with_context(|| {
        format!(
            "cannot write the admin token to {} (drop --admin-listen to run without hot swap)",
            token_file.display()
        )
    })?;
    println!("Admin {url} (token in {})", token_file.display());
    // Best effort: `swap` can be given the URL instead.
    let file = app_dir.join(ADMIN_URL_FILE);
    let recorded = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&file, &url));
    if let Err(error) = recorded {
        tracing::warn!(
            "cannot record the admin URL in {} ({error}); pass --admin {url} to detailing swap",
            file.display()
        );
    }
    let token = runtime::admin::AdminToken::new(&token)?;
    Ok(tokio::spawn(async move {
        let stopped = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = runtime::admin::serve(app, listener, token, stopped).await {
            tracing::error!("admin endpoint: {error:#}");
        }
    }))
}

/// The admin URL the local `detailing up` recorded.
pub fn admin_url(app_dir: &Path) -> Result<String> {
    let file = app_dir.join(ADMIN_URL_FILE);
    let url = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "no {} (is `detailing up` running here?); pass --admin <url>",
            file.display()
        )
    })?;
    Ok(url.trim().to_owned())
}

/// The admin token of the local `detailing up`, from `file` or the app's admin-token file.
pub fn admin_token(app_dir: &Path, file: Option<&Path>) -> Result<String> {
    let file = file.map_or_else(|| app_dir.join(ADMIN_TOKEN_FILE), Path::to_path_buf);
    let token = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read the admin token from {} (was `detailing up` started with \
             --admin-listen?); pass --admin-token-file <file>",
            file.display()
        )
    })?;
    Ok(token.trim().to_owned())
}

/// Sends `wasm` to replace `component` and reports how long the host took.
pub async fn swap(admin: &str, token: &str, component: &str, wasm: &Path) -> Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let started = Instant::now();
    let response = reqwest::Client::new()
        .put(format!(
            "{}/components/{component}",
            admin.trim_end_matches('/')
        ))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("cannot reach the admin endpoint at {admin}"))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the host refused the swap ({status}): {}; the previous version keeps serving",
            answer["error"]["message"]
                .as_str()
                .unwrap_or("no reason given")
        );
    }
    println!(
        "swapped {component} in {} ms ({}, host side {} ms)",
        started.elapsed().as_millis(),
        answer["outcome"].as_str().unwrap_or("?"),
        answer["millis"]
    );
    Ok(())
}
