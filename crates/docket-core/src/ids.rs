//! Generated identifiers: a type letter, then a time-ordered part, then a random part,
//! all in `[a-z0-9]`, so ids sort roughly by creation and never collide in practice.

use rand::Rng;

/// The kinds of generated ids and their leading letter.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    Ticket,
    Change,
    File,
    ApiKey,
    SavedSearch,
}

impl IdKind {
    fn letter(self) -> char {
        match self {
            IdKind::Ticket => 't',
            IdKind::Change => 'c',
            IdKind::File => 'f',
            IdKind::ApiKey => 'k',
            IdKind::SavedSearch => 's',
        }
    }
}

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A new id: letter + 9 base-36 digits of milliseconds + 6 random base-36 digits.
pub fn new_id(kind: IdKind) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut out = String::with_capacity(16);
    out.push(kind.letter());
    let mut digits = [b'0'; 9];
    let mut n = millis;
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    out.extend(digits.iter().map(|b| *b as char));
    let mut rng = rand::thread_rng();
    for _ in 0..6 {
        out.push(ALPHABET[rng.gen_range(0..36)] as char);
    }
    out
}

/// Whether `id` is acceptable as a client-supplied id: `[a-z0-9_]{1,64}`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_ordered_and_distinct() {
        let a = new_id(IdKind::Ticket);
        assert!(a.starts_with('t') && a.len() == 16 && is_valid_id(&a));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id(IdKind::Ticket);
        assert!(b[..10] > a[..10]);
        let many: std::collections::HashSet<_> =
            (0..1000).map(|_| new_id(IdKind::Change)).collect();
        assert_eq!(many.len(), 1000);
        assert!(!is_valid_id("Upper"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a-b"));
        assert!(!is_valid_id(&"a".repeat(65)));
    }
}
