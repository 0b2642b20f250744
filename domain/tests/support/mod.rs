//! Layouts and free-seat views shared by the best-available tests: rows are named `R0`,
//! `R1`, … so a view can find a row by its name.

#![allow(dead_code)]

use domain::show::{Row, Section};

/// A seated section with rows `R0..` of the given seat counts.
pub fn section(id: &str, rows: &[u32]) -> Section {
    Section::Seated {
        section_id: id.into(),
        name: id.into(),
        rows: rows
            .iter()
            .enumerate()
            .map(|(r, &seats)| Row {
                row: format!("R{r}"),
                seats,
            })
            .collect(),
    }
}

/// The row index of a row named by [`section`].
pub fn row_index(row: &str) -> usize {
    row.trim_start_matches('R')
        .parse()
        .expect("rows are named R<index>")
}

/// A free-seat view where the listed seat numbers of each row are taken.
pub fn taken_in(taken: &[&[u32]]) -> impl Fn(&str, u32) -> bool + use<> {
    let taken: Vec<Vec<u32>> = taken.iter().map(|row| row.to_vec()).collect();
    move |row, number| {
        taken
            .get(row_index(row))
            .is_none_or(|row| !row.contains(&number))
    }
}

/// A free-seat view of a grid: `free[r][i]` is seat `i + 1` of row `r`.
pub fn grid_view(free: &[Vec<bool>]) -> impl Fn(&str, u32) -> bool + '_ {
    move |row, number| free[row_index(row)][number as usize - 1]
}
