//! User ids as chat accepts them: the same rule as the timeline's, so one user id works in
//! every system, fits inside Redis keys and store namespaces, and never contains the `.` that
//! separates the parts of a chat token or the `:` of a message key.

/// Longest user id, in bytes (all characters are ASCII, so also in characters).
pub const MAX_USER_ID: usize = 64;

/// Whether `user` is 1–64 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_user_id(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= MAX_USER_ID
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_timeline_alphabet() {
        for good in ["a", "alice_01-x", "A-Z_0", &"x".repeat(MAX_USER_ID)] {
            assert!(is_valid_user_id(good), "{good}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        let too_long = "x".repeat(MAX_USER_ID + 1);
        for bad in [
            "", "a b", "a.b", "a:b", "{a}", "ü", "가", "a\n", "a/b", &too_long,
        ] {
            assert!(!is_valid_user_id(bad), "{bad:?}");
        }
    }
}
