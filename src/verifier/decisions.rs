//! What a Notation or cosign trust root remembers of the images it judged, by signature material
//! (the image's digest and the digests of the documents its signatures were read from): who
//! signed, reused for a short time and never past the signature's own validity, and why not,
//! reused for less. A new signature changes the material, so it is judged at once; a new
//! configuration starts new verifiers, so nothing remembered outlives the trust it was judged by.

use std::hash::Hash;
use std::time::Duration;

use time::OffsetDateTime;

use crate::verdict::Verified;

/// How long a signer is reused for the same material (never past the signature's own end).
const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// How long a refusal is reused for the same material: a repeat of junk costs no fetch and no CPU.
const REFUSED_TTL: Duration = Duration::from_secs(10);
/// Decisions of each kind kept: one per (image, signature material) seen.
const ENTRIES: u64 = 10_000;

/// The decisions of one trust root, by `K` (the material), refusals as `E`.
pub(super) struct Decisions<K, E> {
    verified: moka::sync::Cache<K, (Verified, OffsetDateTime)>,
    refused: moka::sync::Cache<K, E>,
}

/// A decision recalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Recalled<E> {
    /// What was verified.
    Signed(Verified),
    /// Why not.
    Refused(E),
}

impl<K, E> Decisions<K, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    pub(super) fn new() -> Decisions<K, E> {
        Decisions {
            verified: moka::sync::Cache::builder()
                .max_capacity(ENTRIES)
                .time_to_live(VERIFIED_TTL)
                .build(),
            refused: moka::sync::Cache::builder()
                .max_capacity(ENTRIES)
                .time_to_live(REFUSED_TTL)
                .build(),
        }
    }

    /// The decision remembered for `key` that still holds at `now`.
    pub(super) fn recall(&self, key: &K, now: OffsetDateTime) -> Option<Recalled<E>> {
        if let Some((verified, until)) = self.verified.get(key)
            && now < until
        {
            return Some(Recalled::Signed(verified));
        }
        self.refused.get(key).map(Recalled::Refused)
    }

    /// Remembers what was verified at `now`, until its own end ([`Verified::valid_until`]) or
    /// [`VERIFIED_TTL`] later, whichever comes first.
    pub(super) fn signed(&self, key: K, verified: Verified, now: OffsetDateTime) {
        let ttl = time::Duration::try_from(VERIFIED_TTL).unwrap_or(time::Duration::ZERO);
        let until = [verified.valid_until(), now.checked_add(ttl)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        self.verified.insert(key, (verified, until));
    }

    /// Remembers why not, for [`REFUSED_TTL`].
    pub(super) fn refused(&self, key: K, why: E) {
        self.refused.insert(key, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    fn by(who: &str, until: Option<OffsetDateTime>) -> Verified {
        let digest = crate::reference::Digest::sha256_of(who.as_bytes());
        Verified::new(digest, vec![who.to_owned()], until)
    }

    #[test]
    fn a_signer_is_reused_for_a_minute_and_never_past_the_signatures_end() {
        let d: Decisions<u8, String> = Decisions::new();
        d.signed(1, by("alice", None), at(0));
        d.signed(2, by("bob", Some(at(10))), at(0));
        assert_eq!(
            d.recall(&1, at(59)),
            Some(Recalled::Signed(by("alice", None)))
        );
        assert_eq!(d.recall(&1, at(60)), None);
        assert_eq!(
            d.recall(&2, at(9)),
            Some(Recalled::Signed(by("bob", Some(at(10)))))
        );
        assert_eq!(d.recall(&2, at(10)), None);
        assert_eq!(d.recall(&3, at(0)), None);
    }

    #[test]
    fn a_refusal_is_recalled_and_a_signer_wins_over_it() {
        let d: Decisions<u8, String> = Decisions::new();
        d.refused(1, "junk".into());
        assert_eq!(d.recall(&1, at(0)), Some(Recalled::Refused("junk".into())));
        d.signed(1, by("alice", None), at(0));
        assert_eq!(
            d.recall(&1, at(1)),
            Some(Recalled::Signed(by("alice", None)))
        );
    }
}
