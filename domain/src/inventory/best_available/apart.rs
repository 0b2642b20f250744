//! Choice apart: the best seats wherever they are, never creating a lone seat that another
//! choice avoids.
//!
//! Greedy over the seats in rank order (row, distance from the centre, number): a seat is
//! taken when some completion with it still creates no more lone seats than the best
//! choice overall, else it is passed over for good. That yields the lexicographically best
//! set of ranks among the choices with the fewest lone seats. Whether a completion exists is
//! a small knapsack over the runs of free seats (runs are independent: a lone seat depends
//! only on its own run), with at most `quantity + 1` entries per table.

use super::{Grid, runs};

/// No choice reaches this count; sums of two stay far from overflowing.
const NEVER: usize = usize::MAX / 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seat {
    Open,
    In,
    Out,
}

/// For each `k` in `0..=quantity`: the fewest lone seats created by taking `k` seats.
type Table = Vec<usize>;

pub(super) fn choose(free: &Grid, quantity: usize) -> Option<Vec<(usize, usize)>> {
    let row_runs: Vec<Vec<(usize, usize)>> = free.iter().map(|row| runs(row)).collect();
    // after[r]: what rows r.. can still give, all their free seats open.
    let mut after = vec![unit(quantity); free.len() + 1];
    for r in (0..free.len()).rev() {
        let mut table = after[r + 1].clone();
        for &(_, len) in &row_runs[r] {
            table = convolve(&table, &open_run(len, quantity), quantity);
        }
        after[r] = table;
    }
    let target = after[0][quantity];
    if target >= NEVER {
        return None;
    }

    let mut chosen = Vec::with_capacity(quantity);
    // What the rows already decided gave: a single finite entry.
    let mut before = unit(quantity);
    for (r, row) in free.iter().enumerate() {
        if chosen.len() == quantity {
            break;
        }
        let len = row.len();
        let mut states = vec![Seat::Open; len];
        let mut run_of = vec![0; len];
        for (j, &(start, run_len)) in row_runs[r].iter().enumerate() {
            run_of[start..start + run_len].fill(j);
        }
        let mut tables: Vec<Table> = row_runs[r]
            .iter()
            .map(|&(_, run_len)| open_run(run_len, quantity))
            .collect();
        let rest = convolve(&before, &after[r + 1], quantity);
        let mut order: Vec<usize> = (0..len).filter(|&i| row[i]).collect();
        order.sort_unstable_by_key(|&i| ((2 * i + 1).abs_diff(len), i));
        for i in order {
            if chosen.len() == quantity {
                return Some(chosen);
            }
            let j = run_of[i];
            let (start, run_len) = row_runs[r][j];
            let run = start..start + run_len;
            states[i] = Seat::In;
            let with = run_table(&states[run.clone()], quantity);
            if best_with(&rest, &tables, j, &with, quantity) == target {
                tables[j] = with;
                chosen.push((r, i));
            } else {
                states[i] = Seat::Out;
                tables[j] = run_table(&states[run], quantity);
            }
        }
        // Every free seat of the row is decided now.
        before = tables
            .iter()
            .fold(before, |acc, t| convolve(&acc, t, quantity));
    }
    (chosen.len() == quantity).then_some(chosen)
}

/// The fewest lone seats for the whole choice if run `j` of the current row has table
/// `with` and its other runs keep theirs.
fn best_with(rest: &Table, tables: &[Table], j: usize, with: &Table, quantity: usize) -> usize {
    let mut total = convolve(rest, with, quantity);
    for (k, table) in tables.iter().enumerate() {
        if k != j {
            total = convolve(&total, table, quantity);
        }
    }
    total[quantity]
}

/// Taking nothing from nothing.
fn unit(quantity: usize) -> Table {
    let mut table = vec![NEVER; quantity + 1];
    table[0] = 0;
    table
}

/// A run of `len` free seats, none decided: taking `k` leaves a lone seat only when exactly
/// one seat of a run of two or more stays free (the rest can always go at one end).
fn open_run(len: usize, quantity: usize) -> Table {
    (0..=quantity)
        .map(|k| match k {
            _ if k > len => NEVER,
            _ if len >= 2 && len - k == 1 => 1,
            _ => 0,
        })
        .collect()
}

/// A run with some seats decided: a walk along it that tracks how many seats are taken and
/// how long the free stretch just before is (0, 1, or 2 meaning "two or more").
fn run_table(states: &[Seat], quantity: usize) -> Table {
    walk(states, quantity, 3 * quantity + 3)
}

/// The walk of [`run_table`], skipping open seats after the first `cap` in a row. Skipping
/// changes nothing once `cap >= 3 * quantity + 3`: taking at most `quantity` seats of such a
/// stretch always leaves a free piece of three or more, which one seat more or less keeps
/// at two or more. It bounds the walk along a long empty row (10,000 seats).
fn walk(states: &[Seat], quantity: usize, cap: usize) -> Table {
    let counts = states.len() >= 2;
    let mut now = vec![[NEVER; 3]; quantity + 1];
    now[0][0] = 0;
    let mut next = now.clone();
    let mut open = 0;
    for &seat in states {
        open = if seat == Seat::Open { open + 1 } else { 0 };
        if open > cap {
            continue;
        }
        next.iter_mut().for_each(|cell| *cell = [NEVER; 3]);
        for (k, cells) in now.iter().enumerate() {
            for (stretch, &lone) in cells.iter().enumerate() {
                if lone >= NEVER {
                    continue;
                }
                if seat != Seat::In {
                    let longer = (stretch + 1).min(2);
                    next[k][longer] = next[k][longer].min(lone);
                }
                if seat != Seat::Out && k < quantity {
                    let ended = lone + usize::from(counts && stretch == 1);
                    next[k + 1][0] = next[k + 1][0].min(ended);
                }
            }
        }
        std::mem::swap(&mut now, &mut next);
    }
    now.iter()
        .map(|cells| {
            let [gap, single, long] = *cells;
            let single = if single >= NEVER {
                NEVER
            } else {
                single + usize::from(counts)
            };
            gap.min(single).min(long)
        })
        .collect()
}

/// The fewest lone seats for each total taken from two independent parts.
fn convolve(a: &Table, b: &Table, quantity: usize) -> Table {
    let mut out = vec![NEVER; quantity + 1];
    for (i, &x) in a.iter().enumerate().filter(|(_, x)| **x < NEVER) {
        for (j, &y) in b.iter().enumerate().take(quantity + 1 - i) {
            if y < NEVER {
                out[i + j] = out[i + j].min(x + y);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn an_undecided_run_walks_to_the_same_table_as_its_closed_form(
            len in 1usize..120,
            quantity in 1usize..12,
        ) {
            prop_assert_eq!(
                run_table(&vec![Seat::Open; len], quantity),
                open_run(len, quantity)
            );
        }

        #[test]
        fn skipping_the_middle_of_long_open_stretches_keeps_the_table(
            states in prop::collection::vec(
                prop_oneof![8 => Just(Seat::Open), 1 => Just(Seat::In), 1 => Just(Seat::Out)],
                1..200,
            ),
            quantity in 1usize..12,
        ) {
            prop_assert_eq!(
                run_table(&states, quantity),
                walk(&states, quantity, usize::MAX)
            );
        }
    }
}
