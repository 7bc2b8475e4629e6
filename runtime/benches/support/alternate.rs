//! Two things timed alternately in one process: every round times a batch of each, back to
//! back, the order swapped every round, and the ratio is the median of the rounds' ratios.
//! Measurements minutes apart are not comparable on a shared machine, whose speed drifts
//! between them by more than the gap being measured.

use std::time::Instant;

/// What [`alternate`] measured: medians of each side's seconds per iteration, and of the
/// rounds' ratios `a / b`, with the ratios' range.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    pub a_s: f64,
    pub b_s: f64,
    pub ratio: f64,
    pub ratio_min: f64,
    pub ratio_max: f64,
}

/// The median of `values`, which it sorts.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds per iteration of `f`, over `n` iterations.
pub fn time_batch(n: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() / n as f64
}

/// `rounds` rounds of a batch of `n` iterations of `a` and of `b`.
pub fn alternate(rounds: usize, n: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> Pair {
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = time_batch(n, &mut a);
            (x, time_batch(n, &mut b))
        } else {
            let y = time_batch(n, &mut b);
            (time_batch(n, &mut a), y)
        };
        ta.push(x);
        tb.push(y);
        ratios.push(x / y);
    }
    let ratio = median(&mut ratios);
    Pair {
        a_s: median(&mut ta),
        b_s: median(&mut tb),
        ratio,
        // `median` sorted the ratios: their range is at the ends.
        ratio_min: ratios[0],
        ratio_max: ratios[ratios.len() - 1],
    }
}

/// The filter `cargo bench -- FILTER` passes (criterion's convention), unless it is the
/// benchmark's own name `bench` (which runs everything).
pub fn filter(bench: &str) -> Option<String> {
    std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .filter(|arg| !bench.contains(arg.as_str()))
}
