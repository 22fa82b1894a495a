//! Who may connect: verifying tokens (HS256 with the stack's secret, RS256/ES256 against an OpenID
//! issuer's JWKS), turning claims into an [`Identity`], entity globs, and minting HS256 tokens.
//! Everything but the JWKS fetch is plain code the CLI can use; no module here logs a token or key.

pub mod glob;
pub mod identity;
#[cfg(feature = "runtime")]
pub mod jwks;
pub mod mint;
pub mod token;

pub use identity::{ClaimNames, Identity, UnclaimedEntities};
pub use mint::{mint_hs256, mint_hs256_with};
pub use token::{Claims, Expectations, Refusal, SecretVerifier, StackKeys};
