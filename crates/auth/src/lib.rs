//! The platform's authentication rules, for the wasm components and the native tools alike:
//! HS256 access tokens (`token`), bcrypt passwords (`password`) and the account name (`email`). No HTTP, no Spin:
//! reading the header and the secret variable is the components' edge (`api::auth`).

pub mod email;
pub mod password;
pub mod token;

pub use email::Email;
pub use password::{Cost, Password, PasswordError};
pub use token::{Claims, Role, Secret, TokenError, WeakSecret};
