//! Deterministic chunk splitters for framer and decoder tests: every single cut point, every
//! pair of cut points for short inputs, and seeded random multi-way splits.

/// A small xorshift PRNG, so randomized tests are reproducible and need no crate.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Ways to cut `data` into chunks: all 2-way splits, all 1-byte chunking, and `random` seeded
/// random splits into up to 8 pieces (some empty).
pub fn splits(data: &[u8], random: usize) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for i in 0..=data.len() {
        out.push(vec![data[..i].to_vec(), data[i..].to_vec()]);
    }
    out.push(data.iter().map(|b| vec![*b]).collect());
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..random {
        let pieces = 1 + rng.below(8);
        let mut cuts: Vec<usize> = (0..pieces).map(|_| rng.below(data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for c in cuts {
            chunks.push(data[start..c].to_vec());
            start = c;
        }
        chunks.push(data[start..].to_vec());
        out.push(chunks);
    }
    out
}
