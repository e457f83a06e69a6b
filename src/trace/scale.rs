//! Replaying a recorded trace on a scenario of another size (`[skip] scale = true`).
//!
//! A trace recorded on a small model (say 30 layers, 1k context, 256 steps) is mapped onto a
//! larger scenario (32 layers, 30k context, 4,096 steps):
//! - layers by depth: target layer `l` replays source layer `floor(l * L0 / L)`;
//! - positions proportionally: at target step `n` (source step `n0`), position `t` is skipped
//!   when source position `floor(t * n0 / n)` is; a source run `a..b` becomes
//!   `ceil(a * n / n0) .. ceil(b * n / n0)`;
//! - steps cyclically: target decode step `i` replays source decode step `i mod D0`, so the
//!   step-to-step churn of the recording is kept (except once every `D0` steps, at the wrap).
//!
//! What is preserved and what is not is listed in docs/traces.md.

use anyhow::Result;

use super::{StepSkips, TraceDims, TraceSource};

pub struct ScaledSource {
    source_dims: TraceDims,
    steps: Vec<StepSkips>,
    dims: TraceDims,
    next: usize,
}

impl ScaledSource {
    /// Reads the whole source (recorded traces are small) and replays it at `dims`.
    pub fn new(mut source: Box<dyn TraceSource>, dims: TraceDims) -> Result<ScaledSource> {
        let source_dims = source.dims();
        let mut steps = Vec::with_capacity(source_dims.decode);
        for _ in 0..source_dims.decode {
            let mut s = StepSkips::default();
            source.next_step(&mut s)?;
            steps.push(s);
        }
        Ok(ScaledSource {
            source_dims,
            steps,
            dims,
            next: 0,
        })
    }
}

impl TraceSource for ScaledSource {
    fn dims(&self) -> TraceDims {
        self.dims
    }

    fn next_step(&mut self, out: &mut StepSkips) -> Result<()> {
        let i = self.next;
        let n = self.dims.prefill + i;
        let src = &self.steps[i % self.source_dims.decode];
        let n0 = src.step;
        out.reset(n, self.dims.layers);
        for (l, ls) in out.layers.iter_mut().enumerate() {
            let s = &src.layers[l * self.source_dims.layers / self.dims.layers];
            ls.layer = s.layer;
            ls.mlp = s.mlp;
            if s.token_count > 0 {
                let up = |x: usize| ((x as u128 * n as u128).div_ceil(n0 as u128)) as usize;
                for (a, b) in s.tokens.ranges() {
                    ls.tokens.insert_range(up(a), up(b));
                }
                ls.token_count = ls.tokens.count();
            }
        }
        self.next += 1;
        Ok(())
    }

    fn provenance(&self) -> Option<String> {
        Some(format!("scaled from {} to {}", self.source_dims, self.dims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenset::TokenSet;

    struct One(Vec<StepSkips>, TraceDims);
    impl TraceSource for One {
        fn dims(&self) -> TraceDims {
            self.1
        }
        fn next_step(&mut self, out: &mut StepSkips) -> Result<()> {
            *out = self.0.remove(0);
            Ok(())
        }
    }

    #[test]
    fn positions_scale_proportionally_and_layers_by_depth() {
        // Source: P0 = 10, one step (n0 = 10), 2 layers; layer 1 skips 2..5.
        let mut s = StepSkips::default();
        s.reset(10, 2);
        s.layers[1].tokens = TokenSet::range(10, 2, 5);
        s.layers[1].token_count = 3;
        s.layers[0].mlp = true;
        let src = One(
            vec![s],
            TraceDims {
                prefill: 10,
                decode: 1,
                layers: 2,
            },
        );
        // Target: P = 100, 2 steps, 4 layers. Step 100: 2..5 -> ceil(2*100/10)..ceil(5*100/10)
        // = 20..50. Layers 0, 1 replay source layer 0; layers 2, 3 replay source layer 1.
        let mut sc = ScaledSource::new(
            Box::new(src),
            TraceDims {
                prefill: 100,
                decode: 2,
                layers: 4,
            },
        )
        .unwrap();
        let mut out = StepSkips::default();
        sc.next_step(&mut out).unwrap();
        assert_eq!(out.step, 100);
        assert!(out.layers[0].mlp && out.layers[1].mlp && !out.layers[2].mlp);
        assert_eq!(out.layers[2].tokens.ranges(), vec![(20, 50)]);
        assert_eq!(out.layers[3].token_count, 30);
        // Step 101 cycles back to the only source step: ceil(2*101/10)..ceil(5*101/10) = 21..51.
        sc.next_step(&mut out).unwrap();
        assert_eq!(out.layers[3].tokens.ranges(), vec![(21, 51)]);
    }
}
