//! Media a tenant attaches to posts: what a file is (by its content, never by its name or
//! declared type), the limits each platform sets, and the one check that lists every way a
//! post's media breaks them.
//!
//! The flow: `POST /v1/media` records the media and hands out a presigned upload URL, and the
//! client uploads straight to storage. When a post names the media, Herald reads the object's
//! size and first bytes (type by magic bytes, image dimensions from the header), keeps the
//! result on the post as an [`Attachment`] and checks it against every target platform. The
//! publisher reads exactly that version of the object back (by its entity tag) and uploads it
//! to the platform before the post.
//!
//! This module never trusts a declared type or a file name, and never logs a file name (it
//! may be personal data).

mod inspect;
#[cfg(feature = "memory")]
pub mod memory;
mod quota;
mod record;
mod rules;
mod service;
#[cfg(test)]
mod tests;

pub use inspect::*;
pub use quota::*;
pub use record::*;
pub use rules::*;
pub use service::*;
