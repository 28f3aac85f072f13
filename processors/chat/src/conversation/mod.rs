//! Conversations: their ids, who belongs to them with which role ([`Membership`]), and how a
//! message reaches the members ([`fanout_plan`]).
//!
//! Ids are 34 ASCII characters and safe in Redis keys, store partitions and URLs:
//! - 1:1: `d-` + the first 32 hex digits of SHA-256 of `"<min user>\n<max user>"`, so a pair of
//!   users always has the same conversation, whoever starts it ([`direct_conversation_id`]).
//! - group: `g-` + a UUIDv7 in simple form ([`new_group_id`]), time-ordered.

mod fanout;
mod membership;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::user::is_valid_user_id;

pub use fanout::{DEFAULT_DIRECT_FANOUT_MAX, DEFAULT_FANOUT_BATCH, FanoutPlan, fanout_plan};
pub use membership::{MAX_GROUP_MEMBERS, MIN_GROUP_MEMBERS, Membership, Role};

/// Prefix of 1:1 conversation ids.
pub const DIRECT_PREFIX: &str = "d-";
/// Prefix of group conversation ids.
pub const GROUP_PREFIX: &str = "g-";
/// Length of every conversation id: a two-character prefix and 32 lowercase hex digits.
pub const CONVERSATION_ID_LEN: usize = 34;

/// Whether a conversation is between two users or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationKind {
    /// Exactly two members, fixed for ever (the id is derived from them).
    Direct,
    /// Up to [`MAX_GROUP_MEMBERS`] members with roles; members come and go.
    Group,
}

impl ConversationKind {
    /// The kind of a valid conversation id; `None` for an invalid one.
    pub fn of(conversation_id: &str) -> Option<Self> {
        if !is_valid_conversation_id(conversation_id) {
            None
        } else if conversation_id.starts_with(DIRECT_PREFIX) {
            Some(Self::Direct)
        } else {
            Some(Self::Group)
        }
    }
}

/// Why a conversation or membership operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// A user id breaks the rule of [`crate::user::is_valid_user_id`].
    #[error("user id {0:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")]
    InvalidUserId(String),
    /// A 1:1 conversation needs two different users.
    #[error("a conversation needs two different users")]
    SameUser,
    /// A new group with fewer than [`MIN_GROUP_MEMBERS`] members (creator included).
    #[error("a group needs at least {min} members, got {got}")]
    TooFewMembers {
        /// Distinct members asked for, creator included.
        got: usize,
        /// The minimum.
        min: usize,
    },
    /// More members than the group's limit, at creation or by an addition.
    #[error("a group has at most {max} members, this would make {got}")]
    TooManyMembers {
        /// Members there would be.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// The user acting is not a member of the conversation.
    #[error("{0:?} is not a member of the conversation")]
    ActorNotMember(String),
    /// The user acted upon is not a member of the conversation.
    #[error("{0:?} is not a member of the conversation")]
    NotMember(String),
    /// The user to add is already a member.
    #[error("{0:?} is already a member of the conversation")]
    AlreadyMember(String),
    /// Adding or removing others needs the owner or an admin.
    #[error("{0:?} is neither the owner nor an admin")]
    NotAdmin(String),
    /// An admin tried to remove another admin.
    #[error("only the owner may remove an admin")]
    OnlyOwnerRemovesAdmin,
    /// The owner cannot be removed, nor leave: ownership must be transferred first.
    #[error("the owner cannot be removed; transfer ownership first")]
    OwnerCannotBeRemoved,
    /// Transferring ownership or changing roles needs the owner.
    #[error("{0:?} is not the owner")]
    NotOwner(String),
    /// Ownership changes only through [`Membership::transfer`] to another member.
    #[error("ownership changes only by a transfer to another member")]
    OwnershipByTransferOnly,
    /// The members of a 1:1 conversation never change.
    #[error("the members of a 1:1 conversation cannot change")]
    DirectIsFixed,
    /// Stored membership that breaks an invariant (see [`Membership::restore`]).
    #[error("inconsistent membership: {0}")]
    Inconsistent(String),
}

/// The 1:1 conversation id of two users, the same whichever order they come in.
///
/// Refuses invalid user ids (the `\n` separator cannot occur in a valid one, so different
/// pairs never hash the same input) and a user paired with themself.
pub fn direct_conversation_id(a: &str, b: &str) -> Result<String, ConversationError> {
    for user in [a, b] {
        if !is_valid_user_id(user) {
            return Err(ConversationError::InvalidUserId(
                user.chars().take(80).collect(),
            ));
        }
    }
    if a == b {
        return Err(ConversationError::SameUser);
    }
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    let digest = Sha256::digest(format!("{low}\n{high}").as_bytes());
    let mut id = String::with_capacity(CONVERSATION_ID_LEN);
    id.push_str(DIRECT_PREFIX);
    id.push_str(&hex::encode(&digest[..16]));
    Ok(id)
}

/// A new group conversation id (UUIDv7 from the clock and randomness: not pure; see
/// [`group_id`] for a given UUID).
pub fn new_group_id() -> String {
    group_id(Uuid::now_v7())
}

/// The group conversation id of a UUID: `g-` + its simple (32 lowercase hex digits) form.
/// Only UUIDv7s make valid ids.
pub fn group_id(uuid: Uuid) -> String {
    format!("{GROUP_PREFIX}{}", uuid.simple())
}

/// Whether `id` is a well-formed conversation id: `d-` + 32 lowercase hex digits, or `g-` +
/// a UUIDv7 (RFC 9562 variant) as 32 lowercase hex digits.
pub fn is_valid_conversation_id(id: &str) -> bool {
    if id.len() != CONVERSATION_ID_LEN {
        return false;
    }
    let (prefix, digits) = id.split_at(2);
    if !digits
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    match prefix {
        DIRECT_PREFIX => true,
        GROUP_PREFIX => Uuid::try_parse(digits).is_ok_and(|uuid| {
            uuid.get_version_num() == 7 && uuid.get_variant() == uuid::Variant::RFC4122
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_ids_ignore_order() {
        let ab = direct_conversation_id("alice", "bob").unwrap();
        assert_eq!(ab, direct_conversation_id("bob", "alice").unwrap());
        assert_ne!(ab, direct_conversation_id("alice", "carol").unwrap());
        assert!(is_valid_conversation_id(&ab));
        assert_eq!(ConversationKind::of(&ab), Some(ConversationKind::Direct));
    }

    #[test]
    fn direct_id_is_the_documented_hash() {
        // sha256("alice\nbob"), first 16 bytes.
        let digest = Sha256::digest(b"alice\nbob");
        let expected = format!("d-{}", hex::encode(&digest[..16]));
        assert_eq!(direct_conversation_id("bob", "alice").unwrap(), expected);
        assert_eq!(expected.len(), CONVERSATION_ID_LEN);
    }

    #[test]
    fn direct_ids_refuse_self_and_bad_users() {
        assert_eq!(
            direct_conversation_id("alice", "alice"),
            Err(ConversationError::SameUser)
        );
        for bad in ["", "a\nb", "a.b", "가"] {
            assert!(matches!(
                direct_conversation_id(bad, "bob"),
                Err(ConversationError::InvalidUserId(_))
            ));
            assert!(matches!(
                direct_conversation_id("bob", bad),
                Err(ConversationError::InvalidUserId(_))
            ));
        }
    }

    #[test]
    fn group_ids_are_valid_uuid_v7() {
        let id = new_group_id();
        assert!(id.starts_with(GROUP_PREFIX), "{id}");
        assert!(is_valid_conversation_id(&id), "{id}");
        assert_eq!(ConversationKind::of(&id), Some(ConversationKind::Group));
        assert_ne!(id, new_group_id());
        // A v4 UUID is not a group id.
        let v4 = group_id(Uuid::new_v4());
        assert!(!is_valid_conversation_id(&v4), "{v4}");
    }

    #[test]
    fn malformed_ids_are_refused() {
        let good = new_group_id();
        let digits = &good[2..];
        let bad = [
            String::new(),
            "d-".into(),
            format!("x-{digits}"),
            format!("D-{digits}"),
            format!("g-{}", digits.to_uppercase()),
            format!("d-{}", &digits[..31]),
            format!("d-{digits}0"),
            format!("d-{}g", &digits[..31]),
            format!("g-{}", Uuid::now_v7().hyphenated()),
            format!("g-{}", "0".repeat(32)),
        ];
        for id in bad {
            assert!(!is_valid_conversation_id(&id), "{id}");
            assert_eq!(ConversationKind::of(&id), None, "{id}");
        }
        // Any 32 lowercase hex digits make a 1:1 id (they come from a hash).
        assert!(is_valid_conversation_id(&format!("d-{}", "0".repeat(32))));
    }
}
