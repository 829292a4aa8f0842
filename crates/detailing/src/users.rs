//! `detailing user create-staff`: the only way a staff account comes to exist. There is no
//! default account; an operator makes the first one here, with a password typed at a
//! prompt or piped on stdin, never passed as an argument (it would land in shell history).

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context, Result};
use auth::{Cost, Email, Password};
use uuid::Uuid;

/// Reads the new password: at a terminal, typed twice without echo; otherwise the first
/// line of stdin, exactly as given but for the line ending.
pub fn read_password(email: &Email) -> Result<Password> {
    let raw = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {}: ", email.as_str()))?;
        let again = rpassword::prompt_password("Repeat the password: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_owned()
    };
    Password::parse(&raw).map_err(|error| anyhow::anyhow!("the password {error}"))
}

/// Stores a staff account. An existing account with this email is an error: promoting
/// someone is a decision for an operator to make in SQL, not a side effect of this command.
pub async fn create_staff(
    db: &tokio_postgres::Client,
    email: &Email,
    full_name: &str,
    phone: Option<&str>,
    password: &Password,
    cost: Cost,
) -> Result<Uuid> {
    let full_name = full_name.trim();
    if full_name.is_empty() || full_name.chars().count() > 200 {
        bail!("--full-name must be 1 to 200 characters");
    }
    let hash = auth::password::hash(password, cost)?;
    let rows = db
        .query(
            "INSERT INTO users.users (email, password_hash, full_name, phone_number, role) \
             VALUES ($1, $2, $3, $4, 'staff') ON CONFLICT (email) DO NOTHING RETURNING id",
            &[&email.as_str(), &hash, &full_name, &phone],
        )
        .await
        .context("cannot store the account (is --phone in E.164, like +79991234567?)")?;
    match rows.first() {
        Some(row) => Ok(row.get(0)),
        None => bail!("an account with email {} already exists", email.as_str()),
    }
}
