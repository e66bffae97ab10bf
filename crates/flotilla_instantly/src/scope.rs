//! API key scopes (instantly-api.md §5): an open string newtype with named constants.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One Instantly API key scope, `<resource>:<action>` (instantly-api.md §5).
///
/// Open: Instantly adds scopes between spec versions, so any string is accepted and kept
/// verbatim; the constants name every scope known today ([`Scope::ALL_KNOWN`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(Cow<'static, str>);

include!("scope_consts.rs");

/// The actions a scope can grant (the part after the colon).
const ACTIONS: [&str; 5] = ["all", "create", "read", "update", "delete"];

impl Scope {
    /// A scope from any string (known or not).
    pub fn new(s: impl Into<String>) -> Scope {
        let s = s.into();
        // Reuse the static string when it is a known scope: cheap clones, no allocation kept.
        match Scope::ALL_KNOWN.iter().find(|k| k.as_str() == s) {
            Some(k) => k.clone(),
            None => Scope(Cow::Owned(s)),
        }
    }

    /// The scope string, e.g. `"campaigns:read"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `s` is one of the scopes listed in instantly-api.md §5.
    pub fn is_known_str(s: &str) -> bool {
        Scope::ALL_KNOWN.iter().any(|k| k.as_str() == s)
    }

    /// Whether this scope is one of the scopes listed in instantly-api.md §5.
    pub fn is_known(&self) -> bool {
        Scope::is_known_str(self.as_str())
    }

    /// The resource part (before the colon), e.g. `"campaigns"`; `None` if malformed.
    pub fn resource(&self) -> Option<&str> {
        self.as_str().split_once(':').map(|(r, _)| r)
    }

    /// The action part (after the colon), e.g. `"read"`; `None` if malformed.
    pub fn action(&self) -> Option<&str> {
        self.as_str().split_once(':').map(|(_, a)| a)
    }

    /// Whether a key holding this scope may call an endpoint that requires `required`.
    ///
    /// instantly-api.md §5 (OFF): allowed if the key has the exact scope, the resource's
    /// `:all`, the cross-resource `all:<act>`, or `all:all`.
    pub fn grants(&self, required: &Scope) -> bool {
        let (Some((hr, ha)), Some((rr, ra))) = (
            self.as_str().split_once(':'),
            required.as_str().split_once(':'),
        ) else {
            return self == required;
        };
        if !ACTIONS.contains(&ha) {
            return self == required;
        }
        (hr == rr || hr == "all") && (ha == ra || ha == "all")
    }

    /// Whether any of `held` grants `required` (see [`Scope::grants`]).
    pub fn any_grants(held: &[Scope], required: &Scope) -> bool {
        held.iter().any(|h| h.grants(required))
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.as_str())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Scope {
    fn from(s: &str) -> Scope {
        Scope::new(s)
    }
}

impl From<String> for Scope {
    fn from(s: String) -> Scope {
        Scope::new(s)
    }
}

impl std::str::FromStr for Scope {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Scope, Self::Err> {
        Ok(Scope::new(s))
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        String::deserialize(d).map(Scope::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_list_matches_section_5() {
        assert_eq!(Scope::ALL_KNOWN.len(), 178);
        assert!(Scope::is_known_str("background-jobs:read"));
        assert!(Scope::is_known_str("lead-labels:all"));
        assert!(Scope::is_known_str("email_verifications:read"));
        assert!(!Scope::is_known_str("email_verifications:update"));
        assert!(!Scope::is_known_str("background_jobs:read"));
        assert!(Scope::new("widgets:read").resource() == Some("widgets"));
        assert!(!Scope::new("widgets:read").is_known());
        let mut seen = std::collections::HashSet::new();
        assert!(Scope::ALL_KNOWN.iter().all(|s| seen.insert(s.as_str())));
    }

    #[test]
    fn grant_rule() {
        let req = Scope::WORKSPACE_MEMBERS_CREATE;
        for held in [
            "workspace_members:create",
            "workspace_members:all",
            "all:create",
            "all:all",
        ] {
            assert!(Scope::new(held).grants(&req), "{held}");
        }
        for held in [
            "workspace_members:read",
            "campaigns:create",
            "all:read",
            "workspace_members",
        ] {
            assert!(!Scope::new(held).grants(&req), "{held}");
        }
    }

    #[test]
    fn serde_round_trip_keeps_unknown() {
        let v: Vec<Scope> = serde_json::from_str(r#"["all:all","future:thing"]"#).unwrap();
        assert_eq!(v[0], Scope::ALL_ALL);
        assert_eq!(v[1].as_str(), "future:thing");
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"["all:all","future:thing"]"#
        );
    }
}
