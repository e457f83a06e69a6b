//! kvtrace binary v1: a compact, streaming, checksummed format for full-size skip traces.
//! Specified byte by byte in docs/trace-format.md.
//!
//! One block per decode step; each layer's skipped set is stored either in full or as the
//! positions that changed since the same layer's last set (most of a set carries over from step
//! to step), whichever is shorter. Every block carries a CRC-32; an end marker makes a truncated
//! file detectable. The reader never panics on bad bytes: every error names the byte offset.

use std::io::{BufReader, Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::{StepSkips, TraceDims, TraceSource};
use crate::tokenset::TokenSet;

pub const MAGIC: &[u8; 8] = b"KVTRACEB";
pub const VERSION: u16 = 1;
const TAG_BLOCK: u8 = b'B';
const TAG_END: u8 = b'E';
const FLAG_LAYER: u8 = 1;
const FLAG_MLP: u8 = 2;
const FLAG_DELTA: u8 = 4;
/// Largest provenance text and block payload accepted (guards allocations on corrupt input).
const MAX_PROVENANCE: u32 = 1 << 20;
const MAX_PAYLOAD: u32 = 1 << 30;

/// A little-endian u64 from exactly 8 bytes.
fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

/// A little-endian u32 from exactly 4 bytes.
fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Maximal runs of set bits of `a XOR b` (or of `a` alone when `b` is `None`), as half-open
/// ranges.
fn runs(a: &TokenSet, b: Option<&TokenSet>) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let aw = a.words();
    let bw = b.map(|b| b.words()).unwrap_or(&[]);
    let n = aw.len().max(bw.len());
    for i in 0..n {
        let mut w = aw.get(i).copied().unwrap_or(0) ^ bw.get(i).copied().unwrap_or(0);
        while w != 0 {
            let start = w.trailing_zeros() as usize;
            let len = (!(w >> start)).trailing_zeros() as usize;
            let (s, e) = (i * 64 + start, i * 64 + start + len);
            match out.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => out.push((s, e)),
            }
            w = if start + len >= 64 {
                0
            } else {
                w & !(((1u64 << len) - 1) << start)
            };
        }
    }
    out
}

fn encode_runs(out: &mut Vec<u8>, rs: &[(usize, usize)]) {
    put_varint(out, rs.len() as u64);
    let mut prev_end = 0;
    for &(s, e) in rs {
        put_varint(out, (s - prev_end) as u64);
        put_varint(out, (e - s) as u64);
        prev_end = e;
    }
}

/// Writes kvtrace binary v1, one step at a time.
pub struct BinaryTraceWriter<W: Write> {
    w: W,
    dims: TraceDims,
    /// Per layer: the set of the last step at which the layer ran.
    reference: Vec<TokenSet>,
    steps: u64,
    payload: Vec<u8>,
}

impl<W: Write> BinaryTraceWriter<W> {
    pub fn new(mut w: W, dims: TraceDims, provenance: &str) -> Result<Self> {
        let mut h = Vec::new();
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&(dims.prefill as u64).to_le_bytes());
        h.extend_from_slice(&(dims.decode as u64).to_le_bytes());
        h.extend_from_slice(&(dims.layers as u32).to_le_bytes());
        let prov = provenance.as_bytes();
        if prov.len() > MAX_PROVENANCE as usize {
            bail!(
                "provenance text of {} bytes is longer than the {MAX_PROVENANCE} bytes the binary format keeps (shorten --provenance)",
                prov.len()
            );
        }
        h.extend_from_slice(&(prov.len() as u32).to_le_bytes());
        h.extend_from_slice(prov);
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        w.write_all(&h)?;
        Ok(BinaryTraceWriter {
            w,
            dims,
            reference: vec![TokenSet::new(0); dims.layers],
            steps: 0,
            payload: Vec::new(),
        })
    }

    pub fn write_step(&mut self, s: &StepSkips) -> Result<()> {
        let expect = self.dims.prefill + self.steps as usize;
        if s.step != expect || s.layers.len() != self.dims.layers {
            bail!(
                "step {} with {} layers written where step {expect} with {} layers was due",
                s.step,
                s.layers.len(),
                self.dims.layers
            );
        }
        self.payload.clear();
        for (l, ls) in s.layers.iter().enumerate() {
            if ls.layer {
                self.payload.push(FLAG_LAYER);
                continue;
            }
            let full = runs(&ls.tokens, None);
            let delta = runs(&ls.tokens, Some(&self.reference[l]));
            let mlp = if ls.mlp { FLAG_MLP } else { 0 };
            if delta.len() < full.len() {
                self.payload.push(mlp | FLAG_DELTA);
                encode_runs(&mut self.payload, &delta);
            } else {
                self.payload.push(mlp);
                encode_runs(&mut self.payload, &full);
            }
            self.reference[l].clone_from(&ls.tokens);
        }
        let mut block = Vec::with_capacity(self.payload.len() + 17);
        block.push(TAG_BLOCK);
        block.extend_from_slice(&(s.step as u64).to_le_bytes());
        block.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        block.extend_from_slice(&self.payload);
        let crc = crc32fast::hash(&block);
        block.extend_from_slice(&crc.to_le_bytes());
        self.w.write_all(&block)?;
        self.steps += 1;
        Ok(())
    }

    /// Writes the end marker; the file is complete only after this.
    pub fn finish(mut self) -> Result<W> {
        if self.steps != self.dims.decode as u64 {
            bail!(
                "{} steps written, the header says {}",
                self.steps,
                self.dims.decode
            );
        }
        let mut end = vec![TAG_END];
        end.extend_from_slice(&self.steps.to_le_bytes());
        let crc = crc32fast::hash(&end);
        end.extend_from_slice(&crc.to_le_bytes());
        self.w.write_all(&end)?;
        Ok(self.w)
    }
}

/// Writes a whole trace from a source as kvtrace binary v1.
pub fn write_trace(
    w: &mut dyn Write,
    source: &mut dyn TraceSource,
    provenance: &str,
) -> Result<()> {
    let d = source.dims();
    let mut bw = BinaryTraceWriter::new(w, d, provenance)?;
    let mut buf = StepSkips::default();
    for _ in 0..d.decode {
        source.next_step(&mut buf)?;
        bw.write_step(&buf)?;
    }
    bw.finish()?;
    Ok(())
}

/// Streams kvtrace binary v1.
pub struct BinaryTraceReader {
    label: String,
    r: Box<dyn Read + Send>,
    offset: u64,
    dims: TraceDims,
    provenance: String,
    reference: Vec<TokenSet>,
    next_step: usize,
    block: Vec<u8>,
}

/// A cursor over one block's payload that reports errors at absolute file offsets.
struct Payload<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u64,
}

impl Payload<'_> {
    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }
    fn byte(&mut self) -> std::result::Result<u8, String> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| format!("byte offset {}: block payload ends early", self.at()))?;
        self.pos += 1;
        Ok(b)
    }
    fn varint(&mut self) -> std::result::Result<u64, String> {
        let start = self.at();
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        Err(format!("byte offset {start}: varint longer than 64 bits"))
    }
}

impl BinaryTraceReader {
    pub fn open(path: &Path) -> Result<BinaryTraceReader> {
        let f = crate::input::open_regular(path, "trace")?;
        BinaryTraceReader::new(
            path.display().to_string(),
            Box::new(BufReader::with_capacity(1 << 16, f)),
        )
    }

    pub fn new(label: String, r: Box<dyn Read + Send>) -> Result<BinaryTraceReader> {
        let mut me = BinaryTraceReader {
            label,
            r,
            offset: 0,
            dims: TraceDims {
                prefill: 0,
                decode: 0,
                layers: 0,
            },
            provenance: String::new(),
            reference: Vec::new(),
            next_step: 0,
            block: Vec::new(),
        };
        let mut fixed = [0u8; 36];
        me.read_exact(&mut fixed, "header")?;
        if &fixed[..8] != MAGIC {
            bail!("{}: byte offset 0: not a kvtrace binary file (magic is {:?}, expected \"KVTRACEB\")", me.label, String::from_utf8_lossy(&fixed[..8]));
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version != VERSION {
            bail!("{}: byte offset 8: unsupported kvtrace binary version {version}: this build reads version {VERSION}", me.label);
        }
        let reserved = u16::from_le_bytes([fixed[10], fixed[11]]);
        if reserved != 0 {
            bail!(
                "{}: byte offset 10: reserved field is {reserved}, expected 0",
                me.label
            );
        }
        let prefill = le_u64(&fixed[12..20]);
        let decode = le_u64(&fixed[20..28]);
        let layers = le_u32(&fixed[28..32]);
        let prov_len = le_u32(&fixed[32..36]);
        if prov_len > MAX_PROVENANCE {
            bail!(
                "{}: byte offset 32: provenance length {prov_len} exceeds {MAX_PROVENANCE}",
                me.label
            );
        }
        let mut prov = Vec::new();
        me.read_up_to(&mut prov, prov_len as usize, "provenance")?;
        let mut crc = [0u8; 4];
        let crc_at = me.offset;
        me.read_exact(&mut crc, "header checksum")?;
        let mut h = crc32fast::Hasher::new();
        h.update(&fixed);
        h.update(&prov);
        if h.finalize() != u32::from_le_bytes(crc) {
            bail!(
                "{}: byte offset {crc_at}: header checksum mismatch (corrupted file)",
                me.label
            );
        }
        if let Err(e) = crate::scenario::check_dims(prefill, decode, layers as u64) {
            bail!(
                "{}: byte offset 12: header dimensions out of range: {e}",
                me.label
            );
        }
        me.provenance = String::from_utf8(prov)
            .map_err(|_| anyhow!("{}: byte offset 36: provenance is not UTF-8", me.label))?;
        me.dims = TraceDims {
            prefill: prefill as usize,
            decode: decode as usize,
            layers: layers as usize,
        };
        me.reference = vec![TokenSet::new(0); me.dims.layers];
        me.next_step = me.dims.prefill;
        Ok(me)
    }

    /// Free text the writer stored about where the trace comes from.
    pub fn provenance(&self) -> &str {
        &self.provenance
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) => bail!(
                    "{}: byte offset {}: file ends inside the {what} (truncated file)",
                    self.label,
                    self.offset + got as u64
                ),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(anyhow!(e).context(format!(
                        "{}: read error at byte offset {}",
                        self.label,
                        self.offset + got as u64
                    )))
                }
            }
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Reads exactly `len` bytes into `buf` (cleared first), growing it only as bytes arrive, so
    /// a corrupt length cannot make us allocate what the file does not hold.
    fn read_up_to(&mut self, buf: &mut Vec<u8>, len: usize, what: &str) -> Result<()> {
        buf.clear();
        let got = (&mut self.r)
            .take(len as u64)
            .read_to_end(buf)
            .with_context(|| {
                format!("{}: read error at byte offset {}", self.label, self.offset)
            })?;
        if got < len {
            bail!(
                "{}: byte offset {}: file ends inside the {what} (truncated file)",
                self.label,
                self.offset + got as u64
            );
        }
        self.offset += len as u64;
        Ok(())
    }

    fn decode_block(
        &mut self,
        payload_at: u64,
        step: usize,
        out: &mut StepSkips,
    ) -> std::result::Result<(), String> {
        let block = std::mem::take(&mut self.block);
        let mut p = Payload {
            bytes: &block,
            pos: 0,
            base: payload_at,
        };
        let result = (|| {
            for l in 0..self.dims.layers {
                let flag_at = p.at();
                let flags = p.byte()?;
                if flags & !(FLAG_LAYER | FLAG_MLP | FLAG_DELTA) != 0
                    || (flags & FLAG_LAYER != 0 && flags != FLAG_LAYER)
                {
                    return Err(format!(
                        "byte offset {flag_at}: invalid flags 0x{flags:02x} for layer {l}"
                    ));
                }
                let ls = &mut out.layers[l];
                if flags & FLAG_LAYER != 0 {
                    ls.layer = true;
                    continue;
                }
                ls.mlp = flags & FLAG_MLP != 0;
                let count_at = p.at();
                let nruns = p.varint()?;
                if nruns > step as u64 {
                    return Err(format!(
                        "byte offset {count_at}: {nruns} runs cannot fit in {step} positions"
                    ));
                }
                if flags & FLAG_DELTA != 0 {
                    ls.tokens.clone_from(&self.reference[l]);
                    ls.tokens.set_capacity(step);
                }
                let mut end = 0u64;
                for i in 0..nruns {
                    let at = p.at();
                    let gap = p.varint()?;
                    let len = p.varint()?;
                    let start = end.checked_add(gap).filter(|_| i == 0 || gap >= 1);
                    let stop = start.and_then(|s| s.checked_add(len)).filter(|_| len >= 1);
                    match (start, stop) {
                        (Some(s), Some(e)) if e <= step as u64 => {
                            // Full runs set bits of an empty set; delta runs flip the reference's.
                            ls.tokens.toggle_range(s as usize, e as usize);
                            end = e;
                        }
                        _ => return Err(format!("byte offset {at}: run (gap {gap}, length {len}) of layer {l} is empty, not maximal, or reaches past position {step}")),
                    }
                }
                ls.token_count = ls.tokens.count();
                self.reference[l].clone_from(&ls.tokens);
            }
            if p.pos != p.bytes.len() {
                return Err(format!(
                    "byte offset {}: {} bytes left over at the end of the block",
                    p.at(),
                    p.bytes.len() - p.pos
                ));
            }
            Ok(())
        })();
        self.block = block;
        result
    }
}

impl TraceSource for BinaryTraceReader {
    fn dims(&self) -> TraceDims {
        self.dims
    }

    fn provenance(&self) -> Option<String> {
        Some(self.provenance.clone())
    }

    fn next_step(&mut self, out: &mut StepSkips) -> Result<()> {
        let n = self.next_step;
        out.reset(n, self.dims.layers);
        let block_at = self.offset;
        let mut head = [0u8; 13];
        self.read_exact(&mut head, "block header")?;
        if head[0] != TAG_BLOCK {
            let what = if head[0] == TAG_END {
                "end marker before the last step"
            } else {
                "not a block tag"
            };
            bail!(
                "{}: byte offset {block_at}: {what} (0x{:02x}) where step {n} was due",
                self.label,
                head[0]
            );
        }
        let step = le_u64(&head[1..9]);
        if step != n as u64 {
            bail!(
                "{}: byte offset {}: block for step {step} where step {n} was due",
                self.label,
                block_at + 1
            );
        }
        let len = le_u32(&head[9..13]);
        if len > MAX_PAYLOAD {
            bail!(
                "{}: byte offset {}: block length {len} exceeds {MAX_PAYLOAD}",
                self.label,
                block_at + 9
            );
        }
        let payload_at = self.offset;
        let mut block = std::mem::take(&mut self.block);
        let r = self.read_up_to(&mut block, len as usize, "block payload");
        self.block = block;
        r?;
        let mut crc = [0u8; 4];
        let crc_at = self.offset;
        self.read_exact(&mut crc, "block checksum")?;
        let mut h = crc32fast::Hasher::new();
        h.update(&head);
        h.update(&self.block);
        if h.finalize() != u32::from_le_bytes(crc) {
            bail!("{}: byte offset {crc_at}: checksum mismatch in the block of step {n} (corrupted file)", self.label);
        }
        self.decode_block(payload_at, n, out)
            .map_err(|e| anyhow!("{}: {e}", self.label))?;
        self.next_step += 1;
        if self.next_step == self.dims.prefill + self.dims.decode {
            self.read_end()?;
        }
        Ok(())
    }
}

impl BinaryTraceReader {
    fn read_end(&mut self) -> Result<()> {
        let at = self.offset;
        let mut end = [0u8; 13];
        self.read_exact(&mut end, "end marker")?;
        if end[0] != TAG_END {
            bail!(
                "{}: byte offset {at}: expected the end marker after the last step, found 0x{:02x}",
                self.label,
                end[0]
            );
        }
        let steps = le_u64(&end[1..9]);
        let crc = le_u32(&end[9..13]);
        if crc32fast::hash(&end[..9]) != crc || steps != self.dims.decode as u64 {
            bail!("{}: byte offset {at}: corrupted end marker", self.label);
        }
        let mut extra = [0u8; 1];
        match self.r.read(&mut extra) {
            Ok(0) => Ok(()),
            _ => bail!(
                "{}: byte offset {}: data after the end marker",
                self.label,
                self.offset
            ),
        }
    }
}

/// Whether a file starts with the binary magic.
pub fn is_binary(path: &Path) -> Result<bool> {
    let mut f = crate::input::open_regular(path, "trace")?;
    let mut m = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match f.read(&mut m[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got == 8 && &m == MAGIC)
}
