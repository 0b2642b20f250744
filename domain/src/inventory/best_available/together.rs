//! Adjacent choice: the best block of seats side by side in one row.

use super::{Grid, lone_left_by, runs};

/// The block `(row, first seat index)` of `quantity` free seats that creates the fewest lone
/// seats, then lies in the earliest row, then nearest the row's centre, then lowest.
pub(super) fn choose(free: &Grid, quantity: usize) -> Option<Vec<(usize, usize)>> {
    // (lone seats created, row, distance from the centre in half-seats, first seat index)
    let mut best: Option<(usize, usize, usize, usize)> = None;
    for (r, row) in free.iter().enumerate() {
        if best.is_some_and(|b| b.0 == 0) {
            break; // a later row cannot beat a block that leaves no lone seat
        }
        let len = row.len();
        for (start, run_len) in runs(row) {
            if run_len < quantity {
                continue;
            }
            for s in start..=start + run_len - quantity {
                let lone = lone_left_by(run_len, s - start, start + run_len - s - quantity);
                let distance = (2 * s + quantity).abs_diff(len);
                let key = (lone, r, distance, s);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
        }
    }
    let (_, r, _, s) = best?;
    Some((s..s + quantity).map(|i| (r, i)).collect())
}
