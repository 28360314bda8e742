//! Redis Cluster's slots: which slot a hash tag falls in, and the tags that put a sharded
//! item's shards in the slot ranges of different masters.

/// Redis Cluster's slot of a hash tag: CRC16 (XMODEM) modulo 16384.
pub fn slot_of_tag(tag: &str) -> u16 {
    let mut crc: u16 = 0;
    for byte in tag.bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

/// The hash tag of shard `index` of `of`: `<item tag>:h<index>`, with the smallest
/// suffix that puts it in the `index`-th of `of` equal ranges of slots. On a Cluster whose
/// masters own equal ranges (what `redis-cli --cluster create` makes), shards of an item with
/// as many shards as masters land one on each master.
pub(super) fn shard_tag(item_tag: &str, index: u16, of: u16) -> String {
    let of = u32::from(of.max(1));
    let index = u32::from(index) % of;
    // One slot of margin at each inner edge: tools round the split of 16384 slots either way.
    let low = 16_384 * index / of + u32::from(index > 0);
    let high = 16_384 * (index + 1) / of - u32::from(index + 1 < of);
    let base = format!("{item_tag}:h{index}");
    (0u32..)
        .map(|n| format!("{base}.{n}"))
        .find(|tag| (low..high).contains(&u32::from(slot_of_tag(tag))))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // `CLUSTER KEYSLOT` answers for these, from the Redis Cluster specification.
        assert_eq!(slot_of_tag("foo"), 12_182);
        assert_eq!(slot_of_tag("123456789"), 0x31c3);
    }
}
