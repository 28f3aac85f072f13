//! Who belongs to a conversation and what each member may do.

use std::collections::BTreeMap;

use super::{ConversationError, ConversationKind};
use crate::user::is_valid_user_id;

/// Most members of a group, creator included (the seed's limit).
pub const MAX_GROUP_MEMBERS: usize = 500;
/// Fewest members of a new group, creator included: two make a 1:1 conversation instead.
pub const MIN_GROUP_MEMBERS: usize = 3;

/// A member's role in a group. Members of a 1:1 conversation are both [`Role::Member`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Created the group or received it by transfer; exactly one per group; cannot be removed.
    Owner,
    /// May add members and remove members (not admins); made by the owner.
    Admin,
    /// May send, read and leave.
    Member,
}

impl Role {
    /// The role's stored name: `owner`, `admin` or `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// Reads a stored name written by [`Role::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    fn manages_members(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// The members of one conversation and their roles, with the rules for changing them.
///
/// Groups may shrink below [`MIN_GROUP_MEMBERS`] by removals (the minimum only applies at
/// creation), but always keep their owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    kind: ConversationKind,
    members: BTreeMap<String, Role>,
    max: usize,
}

impl Membership {
    /// The two members of a 1:1 conversation.
    pub fn new_direct(a: &str, b: &str) -> Result<Self, ConversationError> {
        check_user(a)?;
        check_user(b)?;
        if a == b {
            return Err(ConversationError::SameUser);
        }
        let members = [(a.to_owned(), Role::Member), (b.to_owned(), Role::Member)];
        Ok(Self {
            kind: ConversationKind::Direct,
            members: members.into_iter().collect(),
            max: 2,
        })
    }

    /// A new group: `creator` is its owner, the other `members` (duplicates and the creator
    /// ignored) plain members. Needs [`MIN_GROUP_MEMBERS`]`..=max` distinct members, creator
    /// included; `max` is normally [`MAX_GROUP_MEMBERS`].
    pub fn new_group<I, S>(creator: &str, members: I, max: usize) -> Result<Self, ConversationError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        check_user(creator)?;
        let mut all = BTreeMap::from([(creator.to_owned(), Role::Owner)]);
        for member in members {
            let member = member.as_ref();
            check_user(member)?;
            all.entry(member.to_owned()).or_insert(Role::Member);
        }
        if all.len() < MIN_GROUP_MEMBERS {
            return Err(ConversationError::TooFewMembers {
                got: all.len(),
                min: MIN_GROUP_MEMBERS,
            });
        }
        if all.len() > max {
            return Err(ConversationError::TooManyMembers {
                got: all.len(),
                max,
            });
        }
        Ok(Self {
            kind: ConversationKind::Group,
            members: all,
            max,
        })
    }

    /// Membership read back from the store, checked: valid user ids; a 1:1 conversation has
    /// two members, both [`Role::Member`]; a group has exactly one owner and at most `max`
    /// members.
    pub fn restore<I>(
        kind: ConversationKind,
        members: I,
        max: usize,
    ) -> Result<Self, ConversationError>
    where
        I: IntoIterator<Item = (String, Role)>,
    {
        let members: BTreeMap<String, Role> = members.into_iter().collect();
        for user in members.keys() {
            check_user(user)?;
        }
        let owners = members.values().filter(|r| **r == Role::Owner).count();
        let problem = match kind {
            ConversationKind::Direct if members.len() != 2 => Some("a 1:1 needs two members"),
            ConversationKind::Direct if members.values().any(|r| *r != Role::Member) => {
                Some("1:1 members have no roles")
            }
            ConversationKind::Group if owners != 1 => Some("a group has exactly one owner"),
            ConversationKind::Group if members.len() > max => Some("more members than the limit"),
            _ => None,
        };
        match problem {
            Some(problem) => Err(ConversationError::Inconsistent(problem.to_owned())),
            None => Ok(Self {
                kind,
                members,
                max: if kind == ConversationKind::Direct {
                    2
                } else {
                    max
                },
            }),
        }
    }

    /// Whether this is a 1:1 conversation or a group.
    pub fn kind(&self) -> ConversationKind {
        self.kind
    }

    /// Adds `user` as a plain member; `actor` must be the owner or an admin.
    pub fn add(&mut self, actor: &str, user: &str) -> Result<(), ConversationError> {
        let actor_role = self.group_actor(actor)?;
        if !actor_role.manages_members() {
            return Err(ConversationError::NotAdmin(actor.to_owned()));
        }
        check_user(user)?;
        if self.members.contains_key(user) {
            return Err(ConversationError::AlreadyMember(user.to_owned()));
        }
        if self.members.len() >= self.max {
            return Err(ConversationError::TooManyMembers {
                got: self.members.len() + 1,
                max: self.max,
            });
        }
        self.members.insert(user.to_owned(), Role::Member);
        Ok(())
    }

    /// Removes `user`. Anyone but the owner may remove themself (leave); the owner and
    /// admins may remove members; only the owner may remove an admin; nobody can remove the
    /// owner, who must [`Membership::transfer`] first.
    pub fn remove(&mut self, actor: &str, user: &str) -> Result<(), ConversationError> {
        let actor_role = self.group_actor(actor)?;
        let target_role = self.role_of(user)?;
        if target_role == Role::Owner {
            return Err(ConversationError::OwnerCannotBeRemoved);
        }
        if actor != user {
            match (actor_role, target_role) {
                (Role::Member, _) => return Err(ConversationError::NotAdmin(actor.to_owned())),
                (Role::Admin, Role::Admin) => return Err(ConversationError::OnlyOwnerRemovesAdmin),
                _ => {}
            }
        }
        self.members.remove(user);
        Ok(())
    }

    /// Hands ownership from `actor` (the owner) to another member; the old owner stays as an
    /// admin.
    pub fn transfer(&mut self, actor: &str, new_owner: &str) -> Result<(), ConversationError> {
        if self.group_actor(actor)? != Role::Owner {
            return Err(ConversationError::NotOwner(actor.to_owned()));
        }
        if actor == new_owner {
            return Err(ConversationError::OwnershipByTransferOnly);
        }
        self.role_of(new_owner)?;
        self.members.insert(new_owner.to_owned(), Role::Owner);
        self.members.insert(actor.to_owned(), Role::Admin);
        Ok(())
    }

    /// Makes another member an admin or a plain member; only the owner may. Ownership itself
    /// moves only by [`Membership::transfer`].
    pub fn set_role(
        &mut self,
        actor: &str,
        user: &str,
        role: Role,
    ) -> Result<(), ConversationError> {
        if self.group_actor(actor)? != Role::Owner {
            return Err(ConversationError::NotOwner(actor.to_owned()));
        }
        if role == Role::Owner || self.role_of(user)? == Role::Owner {
            return Err(ConversationError::OwnershipByTransferOnly);
        }
        self.members.insert(user.to_owned(), role);
        Ok(())
    }

    /// Whether `user` belongs to the conversation.
    pub fn contains(&self, user: &str) -> bool {
        self.members.contains_key(user)
    }

    /// `user`'s role, if a member.
    pub fn role(&self, user: &str) -> Option<Role> {
        self.members.get(user).copied()
    }

    /// The group's owner (`None` for a 1:1 conversation).
    pub fn owner(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|(_, role)| **role == Role::Owner)
            .map(|(user, _)| user.as_str())
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members (never true for a valid membership).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The most members this conversation may have.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Members and roles in user id order: a stable order, so that fan-out batches
    /// ([`super::fanout_plan`]) index the same members on every instance.
    pub fn members(&self) -> impl ExactSizeIterator<Item = (&str, Role)> {
        self.members
            .iter()
            .map(|(user, role)| (user.as_str(), *role))
    }

    /// Member ids in user id order.
    pub fn user_ids(&self) -> impl ExactSizeIterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// The actor's role in a group (membership of a 1:1 never changes).
    fn group_actor(&self, actor: &str) -> Result<Role, ConversationError> {
        if self.kind == ConversationKind::Direct {
            return Err(ConversationError::DirectIsFixed);
        }
        self.role(actor)
            .ok_or_else(|| ConversationError::ActorNotMember(actor.to_owned()))
    }

    fn role_of(&self, user: &str) -> Result<Role, ConversationError> {
        self.role(user)
            .ok_or_else(|| ConversationError::NotMember(user.to_owned()))
    }
}

fn check_user(user: &str) -> Result<(), ConversationError> {
    if is_valid_user_id(user) {
        Ok(())
    } else {
        Err(ConversationError::InvalidUserId(
            user.chars().take(80).collect(),
        ))
    }
}

#[cfg(test)]
mod tests;
