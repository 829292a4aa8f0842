//! The platform's authentication rules, for the wasm components and the native tools alike:
//! HS256 access tokens (`token`), opaque refresh tokens (`refresh`), bcrypt passwords
//! (`password`) and the account name (`email`). No HTTP, no Spin: reading the header and the
//! secret variable is the components' edge (`api::auth`).

// A library: it returns errors and leaves logging to its caller (a component's stderr, a
// native tool's `tracing`).
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod email;
pub mod password;
pub mod refresh;
pub mod token;

pub use email::Email;
pub use password::{Cost, Password, PasswordError};
pub use refresh::RefreshToken;
pub use token::{Claims, Role, Secret, TokenError, VerifiedTokens, WeakSecret};
