//! Identifiers, and the platforms they live on: the ground floor every other module builds on
//! (it imports nothing from this crate). Post ids are UUIDv7 so a tenant's posts sort by creation
//! time.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(TenantId);
id_type!(AccountId);
id_type!(PostId);
id_type!(ApiKeyId);
id_type!(
    /// A tenant's uploaded file; UUIDv7 like posts.
    MediaId
);

id_type!(
    /// A tenant's SMS contact; UUIDv7.
    ContactId
);

id_type!(
    /// A tenant's SMS campaign; UUIDv7.
    CampaignId
);

id_type!(
    /// A tenant's bulk import (a file worked row by row); UUIDv7.
    ImportId
);

impl ImportId {
    pub fn generate() -> Self {
        Self(format!("imp_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl CampaignId {
    pub fn generate() -> Self {
        Self(format!("cmp_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl ContactId {
    pub fn generate() -> Self {
        Self(format!("con_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl TenantId {
    pub fn generate() -> Self {
        Self(format!("ten_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl PostId {
    pub fn generate() -> Self {
        Self(format!("post_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl MediaId {
    pub fn generate() -> Self {
        Self(format!("med_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl ApiKeyId {
    pub fn generate() -> Self {
        Self(format!("key_{}", uuid::Uuid::now_v7().simple()))
    }
}

/// Ids that arrive in URLs are checked before they reach a store key.
pub fn is_valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The networks Herald publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    X,
    Facebook,
    Linkedin,
    Mastodon,
    Bluesky,
    Instagram,
}

impl Platform {
    pub const ALL: [Platform; 6] = [
        Platform::X,
        Platform::Facebook,
        Platform::Linkedin,
        Platform::Mastodon,
        Platform::Bluesky,
        Platform::Instagram,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::X => "x",
            Platform::Facebook => "facebook",
            Platform::Linkedin => "linkedin",
            Platform::Mastodon => "mastodon",
            Platform::Bluesky => "bluesky",
            Platform::Instagram => "instagram",
        }
    }

    /// The platform's name as its users write it.
    pub fn title(self) -> &'static str {
        match self {
            Platform::X => "X",
            Platform::Facebook => "Facebook",
            Platform::Linkedin => "LinkedIn",
            Platform::Mastodon => "Mastodon",
            Platform::Bluesky => "Bluesky",
            Platform::Instagram => "Instagram",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Every platform's name, for an error that says which are accepted.
    pub const NAMES: &'static str = "x, facebook, linkedin, mastodon, bluesky or instagram";
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_is_named_and_parses_back() {
        for p in Platform::ALL {
            assert!(Platform::NAMES.contains(p.as_str()), "{p} not in NAMES");
            assert_eq!(Platform::parse(p.as_str()), Some(p));
        }
        assert_eq!(Platform::parse("threads"), None);
    }
}
