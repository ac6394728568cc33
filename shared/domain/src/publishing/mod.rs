//! Publishing: a post and its per-platform variants from creation to published, exactly once.
//!
//! - `posts`: creating, editing, cancelling and reviewing posts (the API's side);
//! - `compose`: a post's follow-ups (thread, first comment) and their rules; `fields`: one
//!   problem with one field, as a 422 lists it;
//! - `dispatch`: due posts claimed and their variants queued (the dispatcher);
//! - `publish`: one variant's claim, attempt and outcome (the publisher);
//! - `settle`: what happens to the queue message and which outbound event goes out after a
//!   publish (shared by the publisher Lambda and the simulation);
//! - `reconcile`: claims whose publisher died, resolved (the reconciler);
//! - `slots`: posting slots and `"schedule": "next_slot"`;
//! - `gates`: what may publish now: pause switch, per-account rate windows, circuit breakers;
//! - `platform`: the port a platform client implements;
//! - `text`: a post's text as each platform counts it (X's weighted length) and its limits.

mod compose;
pub mod dispatch;
mod fields;
pub mod gates;
pub mod live;
#[cfg(feature = "memory")]
pub mod memory;
pub mod options;
pub mod platform;
pub mod posts;
pub mod publish;
pub mod reconcile;
pub mod settle;
pub mod slots;
pub mod text;
