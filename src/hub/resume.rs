//! Resuming a state view: which parts of a show's state a returning client lacks.
//!
//! A client that reconnects with a seat map it already has says what it has as one
//! number per block of [`BLOCK_SEATS`] seats (hall order): the sum of its seats'
//! versions. A seat's version only ever grows, and every version a client holds was
//! once the database's, so each of the client's versions is at most the
//! database's; a block whose sums agree therefore agrees seat by seat (a smaller
//! version anywhere would make the client's sum smaller). Equal sums are a proof,
//! not a guess, and the server sends only the blocks whose sums differ.
//!
//! Everything here is pure; `snapshot` reads the state and builds the frames.

use std::ops::Range;

/// Seats per block of a resume digest: small enough that one missed change costs a
/// few hundred bytes, large enough that a 100,000-seat show's digest (1,000
/// numbers) fits in an upgrade URL.
pub const BLOCK_SEATS: usize = 100;

/// Most blocks a digest may name: enough for the largest show any configuration
/// allows (`MAX_SEATS_PER_SHOW` is at most 1,000,000), so a show made under a
/// larger limit than today's can still be resumed.
const MAX_BLOCKS: usize = 1_000_000 / BLOCK_SEATS;

/// Each block's version sum, the digest a client with exactly these versions sends.
pub fn block_sums(versions: &[i64]) -> Vec<i64> {
    versions
        .chunks(BLOCK_SEATS)
        .map(|block| block.iter().sum())
        .collect()
}

/// Reads a digest: block sums separated by commas (`"0,0,12,3"`).
pub fn parse_digest(text: &str) -> Result<Vec<i64>, String> {
    let sums: Vec<i64> = text
        .split(',')
        .map(|n| {
            n.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                format!(
                    "have must be comma-separated version sums, not '{}'",
                    n.escape_debug()
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if sums.len() > MAX_BLOCKS {
        return Err(format!(
            "have names {} blocks; no show has more than {MAX_BLOCKS}",
            sums.len()
        ));
    }
    Ok(sums)
}

/// The seat ranges (by position) whose blocks differ between what the client
/// `has` and the database's `sums`, consecutive blocks merged into ranges of at
/// most `max_range` seats. `None` when the digest is not of this show's shape
/// (another number of blocks): the client needs everything.
pub fn missing(
    has: &[i64],
    sums: &[i64],
    seats: usize,
    max_range: usize,
) -> Option<Vec<Range<usize>>> {
    if has.len() != sums.len() || seats.div_ceil(BLOCK_SEATS) != sums.len() {
        return None;
    }
    let max_range = max_range.max(BLOCK_SEATS);
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (block, _) in has
        .iter()
        .zip(sums)
        .enumerate()
        .filter(|(_, (h, s))| h != s)
    {
        let start = block * BLOCK_SEATS;
        let end = (start + BLOCK_SEATS).min(seats);
        match ranges.last_mut() {
            Some(last) if last.end == start && end - last.start <= max_range => last.end = end,
            _ => ranges.push(start..end),
        }
    }
    Some(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_sums_its_versions_and_the_last_block_may_be_short() {
        let versions: Vec<i64> = (0..250).map(|i| i % 3).collect();
        let sums = block_sums(&versions);
        assert_eq!(sums.len(), 3);
        assert_eq!(sums[2], versions[200..].iter().sum::<i64>());
    }

    #[test]
    fn equal_digests_miss_nothing() {
        let sums = vec![4, 0, 9];
        assert_eq!(missing(&sums, &sums, 250, 2000), Some(vec![]));
    }

    #[test]
    fn differing_blocks_are_sent_and_neighbours_merged() {
        let db = vec![1, 2, 3, 4, 5];
        let has = vec![1, 1, 2, 4, 4];
        // Blocks 1 and 2 differ and touch; block 4 (the short last one) too.
        assert_eq!(
            missing(&has, &db, 450, 2000),
            Some(vec![100..300, 400..450])
        );
        // With ranges of at most one block, nothing is merged.
        assert_eq!(
            missing(&has, &db, 450, 100),
            Some(vec![100..200, 200..300, 400..450])
        );
    }

    #[test]
    fn a_digest_of_another_shape_asks_for_everything() {
        assert_eq!(missing(&[0, 0], &[0, 0, 0], 300, 2000), None);
        assert_eq!(
            missing(&[0, 0], &[0, 0], 300, 2000),
            None,
            "300 seats are 3 blocks"
        );
    }

    #[test]
    fn a_digest_is_read_strictly() {
        assert_eq!(parse_digest("0,12,3"), Ok(vec![0, 12, 3]));
        assert!(parse_digest("0,,3").is_err());
        assert!(parse_digest("-1").is_err());
        assert!(parse_digest("1 ,2").is_err());
        let too_many = vec!["0"; MAX_BLOCKS + 1].join(",");
        assert!(
            parse_digest(&too_many).is_err(),
            "more blocks than any show has"
        );
    }
}
