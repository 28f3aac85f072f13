use super::*;
use ConversationError as E;

/// owner, admin "ada", members "bob" and "cat".
fn group() -> Membership {
    let mut g = Membership::new_group("own", ["ada", "bob", "cat"], MAX_GROUP_MEMBERS).unwrap();
    g.set_role("own", "ada", Role::Admin).unwrap();
    g
}

#[test]
fn new_group_makes_the_creator_owner_and_drops_duplicates() {
    let g = Membership::new_group("own", ["bob", "cat", "bob", "own"], 500).unwrap();
    assert_eq!(g.kind(), ConversationKind::Group);
    assert_eq!(g.len(), 3);
    assert!(!g.is_empty());
    assert_eq!(g.role("own"), Some(Role::Owner));
    assert_eq!(g.role("bob"), Some(Role::Member));
    assert_eq!(g.owner(), Some("own"));
    assert_eq!(g.max(), 500);
    assert_eq!(g.user_ids().collect::<Vec<_>>(), ["bob", "cat", "own"]);
}

#[test]
fn new_group_needs_three_to_max_members() {
    assert_eq!(
        Membership::new_group("own", ["bob", "bob", "own"], 500),
        Err(E::TooFewMembers { got: 2, min: 3 })
    );
    assert_eq!(
        Membership::new_group("own", Vec::<String>::new(), 500),
        Err(E::TooFewMembers { got: 1, min: 3 })
    );
    let many: Vec<String> = (0..499).map(|i| format!("u{i}")).collect();
    assert_eq!(Membership::new_group("own", &many, 500).unwrap().len(), 500);
    let too_many: Vec<String> = (0..500).map(|i| format!("u{i}")).collect();
    assert_eq!(
        Membership::new_group("own", &too_many, 500),
        Err(E::TooManyMembers { got: 501, max: 500 })
    );
}

#[test]
fn new_group_checks_user_ids() {
    assert!(matches!(
        Membership::new_group("o.wn", ["bob", "cat"], 500),
        Err(E::InvalidUserId(_))
    ));
    assert!(matches!(
        Membership::new_group("own", ["bob", "c at"], 500),
        Err(E::InvalidUserId(_))
    ));
}

#[test]
fn direct_membership_is_fixed() {
    assert_eq!(Membership::new_direct("a", "a"), Err(E::SameUser));
    assert!(matches!(
        Membership::new_direct("a", ""),
        Err(E::InvalidUserId(_))
    ));
    let mut d = Membership::new_direct("alice", "bob").unwrap();
    assert_eq!(d.kind(), ConversationKind::Direct);
    assert_eq!(d.len(), 2);
    assert_eq!(d.owner(), None);
    assert!(d.contains("alice") && d.contains("bob") && !d.contains("carol"));
    assert_eq!(d.add("alice", "carol"), Err(E::DirectIsFixed));
    assert_eq!(d.remove("alice", "alice"), Err(E::DirectIsFixed));
    assert_eq!(d.transfer("alice", "bob"), Err(E::DirectIsFixed));
    assert_eq!(
        d.set_role("alice", "bob", Role::Admin),
        Err(E::DirectIsFixed)
    );
}

#[test]
fn owner_and_admins_add_members_until_full() {
    let mut g = Membership::new_group("own", ["ada", "bob"], 5).unwrap();
    g.set_role("own", "ada", Role::Admin).unwrap();
    g.add("own", "cat").unwrap();
    g.add("ada", "dan").unwrap();
    assert_eq!(g.role("dan"), Some(Role::Member));
    assert_eq!(
        g.add("own", "eve"),
        Err(E::TooManyMembers { got: 6, max: 5 })
    );
    assert_eq!(g.add("own", "cat"), Err(E::AlreadyMember("cat".into())));
    assert!(matches!(g.add("own", "e.ve"), Err(E::InvalidUserId(_))));
}

#[test]
fn members_and_outsiders_cannot_add() {
    let mut g = group();
    assert_eq!(g.add("bob", "eve"), Err(E::NotAdmin("bob".into())));
    assert_eq!(g.add("zed", "eve"), Err(E::ActorNotMember("zed".into())));
    assert!(!g.contains("eve"));
}

#[test]
fn removal_rules() {
    let mut g = group();
    // A member cannot remove another member, nor an admin.
    assert_eq!(g.remove("bob", "cat"), Err(E::NotAdmin("bob".into())));
    assert_eq!(g.remove("bob", "ada"), Err(E::NotAdmin("bob".into())));
    // Outsiders can do nothing; removing a non-member is refused.
    assert_eq!(g.remove("zed", "bob"), Err(E::ActorNotMember("zed".into())));
    assert_eq!(g.remove("own", "zed"), Err(E::NotMember("zed".into())));
    // An admin removes members but not admins.
    g.remove("ada", "cat").unwrap();
    assert!(!g.contains("cat"));
    g.add("own", "cat").unwrap();
    g.set_role("own", "cat", Role::Admin).unwrap();
    assert_eq!(g.remove("ada", "cat"), Err(E::OnlyOwnerRemovesAdmin));
    // The owner removes admins.
    g.remove("own", "cat").unwrap();
    // Nobody removes the owner, not even the owner.
    assert_eq!(g.remove("ada", "own"), Err(E::OwnerCannotBeRemoved));
    assert_eq!(g.remove("own", "own"), Err(E::OwnerCannotBeRemoved));
    // Members and admins may leave.
    g.remove("bob", "bob").unwrap();
    g.remove("ada", "ada").unwrap();
    // Groups may shrink below three by removals; the owner stays.
    assert_eq!(g.user_ids().collect::<Vec<_>>(), ["own"]);
}

#[test]
fn transfer_then_the_old_owner_can_leave() {
    let mut g = group();
    assert_eq!(g.transfer("ada", "bob"), Err(E::NotOwner("ada".into())));
    assert_eq!(
        g.transfer("zed", "bob"),
        Err(E::ActorNotMember("zed".into()))
    );
    assert_eq!(g.transfer("own", "zed"), Err(E::NotMember("zed".into())));
    assert_eq!(g.transfer("own", "own"), Err(E::OwnershipByTransferOnly));
    g.transfer("own", "bob").unwrap();
    assert_eq!(g.owner(), Some("bob"));
    assert_eq!(g.role("own"), Some(Role::Admin));
    assert_eq!(g.members().filter(|(_, r)| *r == Role::Owner).count(), 1);
    g.remove("own", "own").unwrap();
    assert!(!g.contains("own"));
}

#[test]
fn only_the_owner_changes_roles() {
    let mut g = group();
    assert_eq!(
        g.set_role("ada", "bob", Role::Admin),
        Err(E::NotOwner("ada".into()))
    );
    assert_eq!(
        g.set_role("own", "bob", Role::Owner),
        Err(E::OwnershipByTransferOnly)
    );
    assert_eq!(
        g.set_role("own", "own", Role::Member),
        Err(E::OwnershipByTransferOnly)
    );
    assert_eq!(
        g.set_role("own", "zed", Role::Admin),
        Err(E::NotMember("zed".into()))
    );
    g.set_role("own", "ada", Role::Member).unwrap();
    assert_eq!(g.role("ada"), Some(Role::Member));
}

#[test]
fn restore_checks_invariants() {
    let rows = |list: &[(&str, Role)]| {
        list.iter()
            .map(|(u, r)| (u.to_string(), *r))
            .collect::<Vec<_>>()
    };
    let g = group();
    let stored: Vec<(String, Role)> = g.members().map(|(u, r)| (u.to_owned(), r)).collect();
    assert_eq!(
        Membership::restore(ConversationKind::Group, stored, MAX_GROUP_MEMBERS).unwrap(),
        g
    );
    let d = Membership::restore(
        ConversationKind::Direct,
        rows(&[("a", Role::Member), ("b", Role::Member)]),
        500,
    )
    .unwrap();
    assert_eq!(d, Membership::new_direct("b", "a").unwrap());
    let bad = [
        (ConversationKind::Direct, rows(&[("a", Role::Member)]), 500),
        (
            ConversationKind::Direct,
            rows(&[("a", Role::Owner), ("b", Role::Member)]),
            500,
        ),
        (ConversationKind::Group, rows(&[("a", Role::Member)]), 500),
        (
            ConversationKind::Group,
            rows(&[("a", Role::Owner), ("b", Role::Owner)]),
            500,
        ),
        (
            ConversationKind::Group,
            rows(&[("a", Role::Owner), ("b", Role::Member)]),
            1,
        ),
    ];
    for (kind, members, max) in bad {
        assert!(
            matches!(
                Membership::restore(kind, members.clone(), max),
                Err(E::Inconsistent(_))
            ),
            "{kind:?} {members:?} {max}"
        );
    }
    assert!(matches!(
        Membership::restore(ConversationKind::Group, rows(&[("a:b", Role::Owner)]), 500),
        Err(E::InvalidUserId(_))
    ));
}

#[test]
fn role_names_round_trip() {
    for role in [Role::Owner, Role::Admin, Role::Member] {
        assert_eq!(Role::from_name(role.as_str()), Some(role));
    }
    assert_eq!(Role::from_name("Owner"), None);
}
