//! The API listener: acceptors, registration, and the deterministic Stop.

mod shared;

pub use shared::Shared;
