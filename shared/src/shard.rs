//! Sharding, decided in pure code: which shard an object belongs to, and which shards each live
//! replica works. Every replica computes the same answer from the same list of members
//! (rendezvous hashing: each shard goes to the member that hashes highest with it), so shards
//! spread evenly, and when a member comes or goes only the shards it gains or loses move. Each
//! shard is still held through a Lease of its own (see `sharding.rs`), so two replicas whose
//! member lists differ for a moment never work one shard at once.

use std::collections::BTreeSet;

/// An object's label pinning it to a shard (`"0"`…`"N-1"`); without it, its UID decides.
pub const SHARD_LABEL: &str = "sluice.dev/shard";

/// Annotation asking for a reconcile now: any new value (a timestamp, say) makes the object's
/// next reconcile act at once, whatever its interval. How a replica hands a webhook to the
/// replica that works the object's shard (see `sharding::hand_over`).
pub const RECONCILE_REQUESTED_AT: &str = crate::key!("reconcile-requested-at");

/// FNV-1a, 64 bits, mixed: stable across processes, versions and platforms (std's hasher is not).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finalizer: FNV alone leaves names that differ in one letter correlated.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// The shard of an object with `uid` and, maybe, a `sluice.dev/shard` label, of `shards`.
pub fn shard_of(uid: &str, label: Option<&str>, shards: u32) -> u32 {
    let shards = shards.max(1);
    match label.and_then(|l| l.trim().parse::<u32>().ok()) {
        Some(pinned) if pinned < shards => pinned,
        _ => (fnv1a(&[uid.as_bytes()]) % u64::from(shards)) as u32,
    }
}

/// The shards `me` works among the live `members` (which include `me`). Each shard goes to the
/// member that hashes highest with it, unless that member has its fair share already: first
/// every member is filled to `floor(shards / members)`, then the rest go one each. So the loads
/// differ by one at most, every member gets work while there are as many shards as members, and
/// a member that comes or goes moves few shards.
pub fn share(me: &str, members: &[String], shards: u32) -> BTreeSet<u32> {
    if members.is_empty() {
        return BTreeSet::new();
    }
    let floor = shards as usize / members.len();
    let mut pairs: Vec<(u64, &str, u32)> = (0..shards)
        .flat_map(|shard| {
            let key = shard.to_le_bytes();
            members
                .iter()
                .map(move |m| (fnv1a(&[m.as_bytes(), &key]), m.as_str(), shard))
        })
        .collect();
    pairs.sort_by(|a, b| b.cmp(a));
    let mut owner: std::collections::HashMap<u32, &str> = std::collections::HashMap::new();
    let mut load: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    // Filled greedily to `floor`, every member has exactly `floor` (a shard left over would
    // have gone to one below it); then each of the rest to its best member still at `floor`.
    for cap in [floor, floor + 1] {
        for &(_, member, shard) in &pairs {
            if owner.contains_key(&shard) || load.get(member).copied().unwrap_or(0) >= cap {
                continue;
            }
            owner.insert(shard, member);
            *load.entry(member).or_default() += 1;
        }
    }
    owner
        .into_iter()
        .filter(|(_, member)| *member == me)
        .map(|(shard, _)| shard)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn an_object_keeps_its_shard_and_a_label_pins_it() {
        let uid = "8f0c3f0e-5a55-4d4c-9d1f-1b2e3c4d5e6f";
        assert_eq!(shard_of(uid, None, 6), shard_of(uid, None, 6));
        assert!(shard_of(uid, None, 6) < 6);
        assert_eq!(shard_of(uid, Some("4"), 6), 4);
        assert_eq!(shard_of(uid, Some(" 2 "), 6), 2);
        // A label out of range or not a number: the UID decides.
        assert_eq!(shard_of(uid, Some("9"), 6), shard_of(uid, None, 6));
        assert_eq!(shard_of(uid, Some("blue"), 6), shard_of(uid, None, 6));
        assert_eq!(shard_of(uid, None, 1), 0);
        // A thousand UIDs spread over the shards.
        let mut counts = [0u32; 6];
        for i in 0..1000 {
            counts[shard_of(&format!("uid-{i}"), None, 6) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 100), "{counts:?}");
    }

    #[test]
    fn every_shard_has_exactly_one_member_and_few_move_when_one_leaves() {
        let three = members(&["replica-a", "replica-b", "replica-c"]);
        let shares: Vec<BTreeSet<u32>> = three.iter().map(|m| share(m, &three, 12)).collect();
        let all: Vec<u32> = shares.iter().flatten().copied().collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            (0..12).collect::<Vec<_>>(),
            "each shard once: {shares:?}"
        );
        assert!(shares.iter().all(|s| s.len() == 4), "evenly: {shares:?}");

        // replica-b leaves: its shards go to the others, 6 each.
        let two = members(&["replica-a", "replica-c"]);
        let a = share("replica-a", &two, 12);
        let c = share("replica-c", &two, 12);
        assert_eq!((a.len(), c.len()), (6, 6));
        assert!(a.is_disjoint(&c));
        let kept = shares[0].intersection(&a).count() + shares[2].intersection(&c).count();
        assert!(kept >= 6, "most stay where they were: {kept} of 8");
        // Real identities (pod name and pid), every size: all shards, none twice, all get work.
        for m in 1..=5 {
            let ring: Vec<String> = (0..m)
                .map(|i| format!("sync-7d9c{i}_{}", 4000 + i))
                .collect();
            let mut seen = BTreeSet::new();
            for member in &ring {
                let mine = share(member, &ring, 6);
                assert!(!mine.is_empty() || m > 6);
                assert!(mine.iter().all(|s| seen.insert(*s)), "twice: {mine:?}");
            }
            assert_eq!(seen.len(), 6);
        }
        // Not a member: nothing.
        assert!(share("replica-b", &two, 12).is_empty());
    }
}
