//! Ed25519 signature verification (RFC 8032, cofactorless) with fixed-base comb tables.
//!
//! Verifying computes `[s]B − [k]A` and compares it with `R`. The base point `B` is fixed, and so
//! is every trusted key `A` for as long as its bundle is in force, so both multiplications use a
//! table of precomputed multiples: `[j·2^(6i)]P` for every 6-bit window `i` and signed digit `j`.
//! A multiplication is then ~43 point additions and no doubling, where the generic double-base
//! method (ed25519-dalek's `verify`) doubles ~253 times. Inside V8, where curve arithmetic is
//! the filter's dominant uncached cost, that halves the signature check.
//!
//! A table holds 43 × 32 points (~220 KB). The base point's is built once per process (per
//! Envoy worker VM), a key's when a bundle first brings it, and bundle versions that keep the key
//! share its table.
//!
//! Everything here runs on public data (signature, message, key), so variable time is fine, as
//! it is for ed25519-dalek's own `verify`. The verdict is meant to be ed25519-dalek's `verify`
//! verdict on every input; a property test compares the two on genuine, bit-flipped and random
//! signatures.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Bits per window of a scalar.
const WINDOW: usize = 6;
/// Table entries per window: the multiples `1..=2^(WINDOW-1)` (negatives come from negation).
const HALF: usize = 1 << (WINDOW - 1);
/// Windows covering a scalar below 2^253 plus the carry of the signed recoding.
const WINDOWS: usize = 256_usize.div_ceil(WINDOW);

/// Precomputed multiples of one point: `rows[i][j] = [(j + 1)·2^(WINDOW·i)]P`.
struct CombTable {
    rows: Vec<[EdwardsPoint; HALF]>,
}

impl CombTable {
    fn new(point: &EdwardsPoint) -> Self {
        let mut rows = Vec::with_capacity(WINDOWS);
        let mut base = *point;
        for _ in 0..WINDOWS {
            let mut row = [base; HALF];
            let mut multiple = base;
            for entry in row.iter_mut().skip(1) {
                multiple += base;
                *entry = multiple;
            }
            // The next window's base is 2^WINDOW times this one: twice the largest entry.
            base = multiple + multiple;
            rows.push(row);
        }
        CombTable { rows }
    }

    /// `[scalar]P`, for a reduced scalar (below 2^253).
    fn mul(&self, scalar: &Scalar) -> EdwardsPoint {
        let mut sum = EdwardsPoint::identity();
        for (row, digit) in self.rows.iter().zip(signed_digits(scalar)) {
            let index = usize::from(digit.unsigned_abs());
            match (
                digit.signum(),
                index.checked_sub(1).and_then(|i| row.get(i)),
            ) {
                (1, Some(multiple)) => sum += multiple,
                (-1, Some(multiple)) => sum -= multiple,
                _ => {}
            }
        }
        sum
    }
}

/// The scalar as `WINDOWS` digits `d_i` in `[-HALF, HALF)` with `scalar = Σ d_i·2^(WINDOW·i)`.
fn signed_digits(scalar: &Scalar) -> [i8; WINDOWS] {
    let bytes = scalar.as_bytes();
    let mut digits = [0i8; WINDOWS];
    let mut carry = 0i16;
    for (i, digit) in digits.iter_mut().enumerate() {
        let bit = i * WINDOW;
        let byte = |n: usize| u16::from(bytes.get(n).copied().unwrap_or(0));
        // WINDOW ≤ 8, so a window lies within two bytes whatever its offset in the first.
        let pair = byte(bit / 8) | (byte(bit / 8 + 1) << 8);
        let window = (pair >> (bit % 8)) & ((1 << WINDOW) - 1);
        let value = i16::try_from(window).unwrap_or(0) + carry;
        carry = (value + HALF as i16) >> WINDOW;
        *digit = i8::try_from(value - (carry << WINDOW)).unwrap_or(0);
    }
    digits
}

fn base_table() -> &'static CombTable {
    static TABLE: OnceLock<CombTable> = OnceLock::new();
    TABLE.get_or_init(|| CombTable::new(&ED25519_BASEPOINT_POINT))
}

/// The table of `-point` for the key encoded as `encoded`, shared with any key set still
/// holding it: a new bundle version usually carries the same keys, and building a table costs
/// about as much as a dozen signature checks. Entries hold weak references, so a table lives
/// exactly as long as some key set uses it.
fn key_table(encoded: [u8; 32], point: &EdwardsPoint) -> Arc<CombTable> {
    static TABLES: OnceLock<Mutex<HashMap<[u8; 32], Weak<CombTable>>>> = OnceLock::new();
    let Ok(mut tables) = TABLES.get_or_init(Default::default).lock() else {
        return Arc::new(CombTable::new(&-point));
    };
    if let Some(table) = tables.get(&encoded).and_then(Weak::upgrade) {
        return table;
    }
    tables.retain(|_, table| table.strong_count() > 0);
    let table = Arc::new(CombTable::new(&-point));
    tables.insert(encoded, Arc::downgrade(&table));
    table
}

/// An Ed25519 public key ready to verify: its encoding (hashed into every challenge) and the
/// table of its negated multiples. Cloning shares the table.
#[derive(Clone)]
pub struct VerifyingKey {
    encoded: [u8; 32],
    minus_a: Arc<CombTable>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("encoded", &self.encoded)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// The key encoded as `encoded`, or `None` when that is not a point or is a small-order
    /// (weak) point, which would let one signature verify for many messages.
    pub fn from_bytes(encoded: [u8; 32]) -> Option<Self> {
        let point = CompressedEdwardsY(encoded).decompress()?;
        if point.is_small_order() {
            return None;
        }
        // Built here, while a bundle loads, so that no request pays for it.
        base_table();
        Some(VerifyingKey {
            encoded,
            minus_a: key_table(encoded, &point),
        })
    }

    /// RFC 8032 §5.1.7 without the cofactor: `S` must be canonical (below the group order) and
    /// `[S]B − [k]A` must encode to exactly `R`, where `k = SHA-512(R ‖ A ‖ message)`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = <&[u8; 64]>::try_from(signature) else {
            return false;
        };
        let (r, s) = signature.split_at(32);
        let Ok(s_bytes) = <[u8; 32]>::try_from(s) else {
            return false;
        };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let mut hash = Sha512::new();
        hash.update(r);
        hash.update(self.encoded);
        hash.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let expected_r = base_table().mul(&s) + self.minus_a.mul(&k);
        expected_r.compress().as_bytes() == r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, Verifier as _};
    use proptest::prelude::*;

    fn reference(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|sig| key.verify(message, &sig).is_ok())
    }

    /// The canonical scalar whose 6-bit windows, lowest first, are `windows`.
    fn from_windows(windows: &[u16]) -> Scalar {
        let mut bytes = [0u8; 33];
        for (i, window) in windows.iter().enumerate() {
            let (byte, shift) = (i * WINDOW / 8, i * WINDOW % 8);
            let spread = window << shift;
            bytes[byte] |= spread as u8;
            bytes[byte + 1] |= (spread >> 8) as u8;
        }
        assert_eq!(bytes[32], 0);
        Scalar::from_canonical_bytes(bytes[..32].try_into().unwrap()).unwrap()
    }

    /// Undoes the signed recoding exactly (as integers, not modulo the group order): the
    /// unsigned 6-bit windows the digits stand for, with no borrow left over.
    fn unsigned_windows(digits: &[i8]) -> Vec<u16> {
        let mut borrow = 0i16;
        let windows = digits
            .iter()
            .map(|&digit| {
                let mut value = i16::from(digit) + borrow;
                borrow = 0;
                if value < 0 {
                    value += 1 << WINDOW;
                    borrow = -1;
                }
                value as u16
            })
            .collect();
        assert_eq!(borrow, 0, "the digits stand for a negative number");
        windows
    }

    #[test]
    fn digits_recompose_the_scalar_exactly() {
        let mut scalars: Vec<Scalar> = (0u8..=255)
            .map(|seed| {
                Scalar::from_bytes_mod_order_wide(&[seed.wrapping_mul(37); 64])
                    * Scalar::from(u64::from(seed) + 1)
            })
            .collect();
        scalars.extend([
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE, // L − 1, the largest canonical scalar
            from_windows(&[0; WINDOWS - 1].map(|_| 63)), // 2^252 − 1: a carry through every window
            from_windows(&[32; WINDOWS - 1]),
            every_digit_minus_32(),
        ]);
        let mut two_252 = [0u8; 32];
        two_252[31] = 0x10;
        scalars.push(Scalar::from_canonical_bytes(two_252).unwrap());
        for scalar in scalars {
            let digits = signed_digits(&scalar);
            assert!(digits
                .iter()
                .all(|d| (-(HALF as i8)..HALF as i8).contains(d)));
            let windows = unsigned_windows(&digits);
            assert_eq!(from_windows(&windows), scalar);
        }
        let digits = signed_digits(&every_digit_minus_32());
        assert!(digits[..WINDOWS - 1].iter().all(|&d| d == -32));
        assert_eq!(digits[WINDOWS - 1], 1);
    }

    /// Windows 32, 31, 31, …: each digit below the top one recodes to −32 (the table's last entry).
    fn every_digit_minus_32() -> Scalar {
        let mut windows = [31; WINDOWS - 1];
        windows[0] = 32;
        from_windows(&windows)
    }

    #[test]
    fn table_multiplication_matches_the_generic_one() {
        let point = ED25519_BASEPOINT_POINT * Scalar::from(987_654_321u64);
        let table = CombTable::new(&point);
        for seed in 0u8..64 {
            let scalar = Scalar::from_bytes_mod_order_wide(&[seed; 64]);
            assert_eq!(table.mul(&scalar), point * scalar, "seed {seed}");
        }
        let minus_one = -Scalar::ONE;
        assert_eq!(table.mul(&minus_one), -point);
        assert_eq!(table.mul(&Scalar::ZERO), EdwardsPoint::identity());
    }

    #[test]
    fn a_key_loaded_again_shares_its_table_while_in_use() {
        let encoded = (ED25519_BASEPOINT_POINT * Scalar::from(424_242u64))
            .compress()
            .to_bytes();
        let first = VerifyingKey::from_bytes(encoded).unwrap();
        let second = VerifyingKey::from_bytes(encoded).unwrap();
        assert!(Arc::ptr_eq(&first.minus_a, &second.minus_a));
        let weak = Arc::downgrade(&first.minus_a);
        drop((first, second));
        assert!(weak.upgrade().is_none(), "the table outlived its keys");
    }

    #[test]
    fn small_order_and_invalid_keys_are_refused() {
        assert!(VerifyingKey::from_bytes(EdwardsPoint::identity().compress().to_bytes()).is_none());
        // y = 2 is not on the curve.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(VerifyingKey::from_bytes(not_a_point).is_none());
    }

    /// A key with a small-order component (`aB + T`, `T` of order 8) is not weak, and
    /// `[s]B − [k]A` then equals `R` only when 8 divides `k`: the verdict depends on exactly how
    /// the challenge is hashed (from the key's encoding) and on exact scalar arithmetic. Both
    /// verifiers must agree on every message, accepting some and refusing others.
    #[test]
    fn a_key_with_a_torsion_component_gets_ed25519_dalek_verdicts() {
        let (a, r) = (Scalar::from(7_777u64), Scalar::from(1_234_567u64));
        let key = ED25519_BASEPOINT_POINT * a + curve25519_dalek::constants::EIGHT_TORSION[1];
        let encoded = key.compress().to_bytes();
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&encoded).unwrap();
        assert!(!dalek.is_weak());
        let ours = VerifyingKey::from_bytes(encoded).unwrap();
        let r_encoded = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
        let mut verdicts = Vec::new();
        for n in 0u32..64 {
            let message = n.to_le_bytes();
            let mut hash = Sha512::new();
            hash.update(r_encoded);
            hash.update(encoded);
            hash.update(message);
            let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&r_encoded);
            signature[32..].copy_from_slice((r + k * a).as_bytes());
            let verdict = ours.verify(&message, &signature);
            assert_eq!(
                verdict,
                reference(&dalek, &message, &signature),
                "message {n}"
            );
            verdicts.push(verdict);
        }
        assert!(verdicts.contains(&true) && verdicts.contains(&false));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Same verdict as ed25519-dalek's `verify` for genuine signatures, signatures with a
        /// flipped bit, signatures over another message and random bytes.
        #[test]
        fn agrees_with_ed25519_dalek(
            secret in any::<[u8; 32]>(),
            message in proptest::collection::vec(any::<u8>(), 0..300),
            flip in 0usize..512,
            noise in any::<[u8; 32]>(),
        ) {
            let signer = ed25519_dalek::SigningKey::from_bytes(&secret);
            let dalek = signer.verifying_key();
            let ours = VerifyingKey::from_bytes(dalek.to_bytes()).unwrap();
            let signature = signer.sign(&message).to_bytes();
            prop_assert!(ours.verify(&message, &signature));

            let mut flipped = signature;
            flipped[flip / 8] ^= 1 << (flip % 8);
            prop_assert_eq!(ours.verify(&message, &flipped), reference(&dalek, &message, &flipped));
            prop_assert!(!ours.verify(&message, &flipped));

            let mut other = message.clone();
            other.push(1);
            prop_assert!(!ours.verify(&other, &signature));

            let mut random = signature;
            random[..32].copy_from_slice(&noise);
            prop_assert_eq!(ours.verify(&message, &random), reference(&dalek, &message, &random));
        }
    }
}
