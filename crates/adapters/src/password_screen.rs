//! Screening new passwords with zxcvbn.
//!
//! Why zxcvbn (the Rust port of Dropbox's estimator): it ships ranked lists
//! of the passwords found in real leaks (30,000 of them) with English words,
//! names and film titles, and it also catches what a plain list misses:
//! case, l33t and reversed variants, keyboard walks (`qwertyuiop`),
//! repeats, sequences, dates, and the account's own email or names. It is
//! pure computation (no files, no network), well kept, and brings no
//! native code. It lives here rather than in the domain because it reads
//! the wall clock (to rank recent years).

use phonegate_domain::{account::Password, ports::PasswordScreen};

/// Passwords that zxcvbn expects an attacker to find within this many
/// guesses are refused. 10^5 covers the leaked-password list and its
/// simple variants, while leaving ordinary passphrases (three or more
/// words, or words with something of the user's own) alone; the throttles
/// and the lockout make the guesses past that too slow to matter online.
pub const COMMON_GUESSES: u64 = 100_000;

/// Longer passwords are not screened: none of the listed ones is that long,
/// and zxcvbn's cost grows with the length.
const SCREENED_CHARS: usize = 64;

/// [`PasswordScreen`] with zxcvbn's estimate.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZxcvbnScreen;

impl PasswordScreen for ZxcvbnScreen {
    fn is_common(&self, password: &Password, context: &[&str]) -> bool {
        let text = password.expose();
        if text.chars().count() > SCREENED_CHARS {
            return false;
        }
        // An email is matched whole and by its local part.
        let mut inputs: Vec<&str> = Vec::with_capacity(context.len() * 2);
        for input in context {
            inputs.push(input);
            if let Some((local, _)) = input.split_once('@') {
                inputs.push(local);
            }
        }
        zxcvbn::zxcvbn(text, &inputs).guesses() < COMMON_GUESSES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(password: &str, context: &[&str]) -> bool {
        ZxcvbnScreen.is_common(&Password::presented(password).unwrap(), context)
    }

    #[test]
    fn the_most_common_passwords_and_their_variants_are_refused() {
        for password in [
            "password",
            "Password1",
            "P@ssw0rd",
            "drowssap",
            "12345678",
            "qwertyuiop",
            "iloveyou",
            "11111111",
            "abcdefgh",
            "baseball1",
        ] {
            assert!(common(password, &[]), "{password}");
        }
        assert!(common("adalovelace", &["ada.lovelace@example.com", "Ada", "Lovelace"]));
        assert!(common("ada.lovelace", &["ada.lovelace@example.com"]));
    }

    #[test]
    fn ordinary_passphrases_and_random_passwords_pass() {
        for password in [
            "correct horse battery staple",
            "Admin-Pass-1",
            "fuzz-password",
            "a long password",
            "new password!",
            "Tr0ub4dor&3-kiwi",
            "x7#Kq9!mZp2v",
        ] {
            assert!(!common(password, &[]), "{password}");
        }
        assert!(!common(&"ab".repeat(40), &[]), "long passwords are not screened");
    }
}
