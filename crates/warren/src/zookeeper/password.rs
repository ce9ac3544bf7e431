//! ZooKeeper's session passwords. ZooKeeper does not store them: it derives each one from
//! the session id (`ZooKeeperServer.generatePasswd`) as
//! `new java.util.Random(sessionId ^ 0xB3415C00L).nextBytes(new byte[16])`, and checks a
//! reconnecting client against the same derivation. Warren stores passwords, so an import
//! recomputes them here, bit for bit, so that clients resume their sessions after the move.

/// ZooKeeper's `superSecret`, mixed into the seed.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// `java.util.Random`: a 48-bit linear congruential generator (constants from its javadoc).
pub struct JavaRandom {
    seed: u64,
}

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const ADDEND: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;

impl JavaRandom {
    /// `new Random(seed)`: the seed is scrambled with the multiplier, as Java does.
    pub fn new(seed: i64) -> JavaRandom {
        JavaRandom { seed: (seed as u64 ^ MULTIPLIER) & MASK }
    }

    /// `Random.next(bits)`.
    fn next(&mut self, bits: u32) -> i32 {
        self.seed = self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND) & MASK;
        (self.seed >> (48 - bits)) as i32
    }

    /// `Random.nextBytes`: each `nextInt()` fills up to four bytes, low byte first.
    pub fn next_bytes(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(4) {
            let mut rnd = self.next(32);
            for b in chunk {
                *b = rnd as u8;
                rnd >>= 8;
            }
        }
    }
}

/// The password ZooKeeper 3.8 gave session `session_id`.
pub fn session_password(session_id: i64) -> [u8; 16] {
    let mut passwd = [0u8; 16];
    JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut passwd);
    passwd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Expected values printed by real Java (OpenJDK 17):
    /// `Random r = new Random(id ^ 0xB3415C00L); byte[] p = new byte[16]; r.nextBytes(p);`
    #[test]
    fn passwords_match_java() {
        let cases: [(i64, &str); 5] = [
            (0, "f22acd4a97e69d6d20a49bb638eadb38"),
            (1, "054cc74a37327db215e702e20c73f005"),
            (0x0100_0001_2345_6789, "b11647e5db8ff1c8bd6768eac33a41ce"),
            (-1, "20f62cb5648dc2d771471c8a2486a9ee"),
            (0x0100_0a3f_2c7d_0001, "ec1021049292911bd4af25ac5f862f09"),
        ];
        for (id, expected) in cases {
            assert_eq!(hex(&session_password(id)), expected, "session {id:#x}");
        }
    }

    /// `new Random(42).nextBytes(new byte[7])` in Java: a length that is not a multiple of
    /// four uses only the low bytes of the last int.
    #[test]
    fn next_bytes_matches_java_for_odd_lengths() {
        let mut bytes = [0u8; 7];
        JavaRandom::new(42).next_bytes(&mut bytes);
        assert_eq!(hex(&bytes), "359d41baf78afe");
    }
}
