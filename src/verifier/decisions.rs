//! What a Notation or cosign trust root remembers of the images it judged, by signature material
//! (the image's digest and the digests of the documents its signatures were read from): who
//! signed, reused for a short time and never past the signature's own validity, and why not,
//! reused for less. A new signature changes the material, so it is judged at once; a new
//! configuration starts new verifiers, so nothing remembered outlives the trust it was judged by.

use std::hash::Hash;
use std::time::Duration;

use time::OffsetDateTime;

/// How long a signer is reused for the same material (never past the signature's own end).
const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// How long a refusal is reused for the same material: a repeat of junk costs no fetch and no CPU.
const REFUSED_TTL: Duration = Duration::from_secs(10);
/// Decisions of each kind kept: one per (image, signature material) seen.
const ENTRIES: u64 = 10_000;

/// The decisions of one trust root, by `K` (the material), refusals as `E`.
pub(super) struct Decisions<K, E> {
    verified: moka::sync::Cache<K, (String, OffsetDateTime)>,
    refused: moka::sync::Cache<K, E>,
}

/// A decision recalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Recalled<E> {
    /// Who signed.
    Signed(String),
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
        if let Some((signer, until)) = self.verified.get(key)
            && now < until
        {
            return Some(Recalled::Signed(signer));
        }
        self.refused.get(key).map(Recalled::Refused)
    }

    /// Remembers who signed, judged at `now`, until the signature's own end (`valid_until`: a
    /// certificate's or the signature's expiry, when it has one) or [`VERIFIED_TTL`] later,
    /// whichever comes first.
    pub(super) fn signed(
        &self,
        key: K,
        signer: String,
        now: OffsetDateTime,
        valid_until: Option<OffsetDateTime>,
    ) {
        let ttl = time::Duration::try_from(VERIFIED_TTL).unwrap_or(time::Duration::ZERO);
        let until = [valid_until, now.checked_add(ttl)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        self.verified.insert(key, (signer, until));
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

    #[test]
    fn a_signer_is_reused_for_a_minute_and_never_past_the_signatures_end() {
        let d: Decisions<u8, String> = Decisions::new();
        d.signed(1, "alice".into(), at(0), None);
        d.signed(2, "bob".into(), at(0), Some(at(10)));
        assert_eq!(d.recall(&1, at(59)), Some(Recalled::Signed("alice".into())));
        assert_eq!(d.recall(&1, at(60)), None);
        assert_eq!(d.recall(&2, at(9)), Some(Recalled::Signed("bob".into())));
        assert_eq!(d.recall(&2, at(10)), None);
        assert_eq!(d.recall(&3, at(0)), None);
    }

    #[test]
    fn a_refusal_is_recalled_and_a_signer_wins_over_it() {
        let d: Decisions<u8, String> = Decisions::new();
        d.refused(1, "junk".into());
        assert_eq!(d.recall(&1, at(0)), Some(Recalled::Refused("junk".into())));
        d.signed(1, "alice".into(), at(0), None);
        assert_eq!(d.recall(&1, at(1)), Some(Recalled::Signed("alice".into())));
    }
}
