//! Memory planning: a run's intermediate values in one arena, the bytes of
//! values whose lifetimes do not overlap shared.
//!
//! The first run for given input types and dims allocates every value on
//! its own and records their sizes; the plan made from that assigns each
//! plannable value a byte range of one arena (greedy, largest first, at
//! the lowest offset free during its lifetime — from the node computing it
//! to the last node reading it or a view of it). Later runs with those
//! inputs take an arena from a pool (one per concurrent run) and write
//! kernel outputs into it: no allocation, no zeroing, memory that stays in
//! cache. A view (a reshape) shares its input's bytes. A concatenation
//! along an axis with only 1s before it, of results read by nothing else,
//! is done in place: its inputs are written side by side into its output's
//! range and the node copies nothing.
//!
//! Planned: floating-point values of at least [`MIN_ELEMS`] elements that
//! are not graph outputs (nor viewed by one). Integer and `bool` values
//! (shapes, indices, masks; rule inputs are read as values) and graph
//! outputs (returned to the caller) are allocated on their own. A value
//! larger at run time than its planned range is allocated on its own too:
//! the plan is never trusted with a size.

use std::collections::HashMap;
use std::ops::Range;

use texpr_dsl::{DType, Data, DataMut, bf16, f16};

/// Values with fewer elements stay out of the arena (scalars, small
/// statistics that rules may read as values).
pub(crate) const MIN_ELEMS: usize = 256;

/// Where a run's intermediate values live.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Per value (by index): its range of the arena, in 8-byte words.
    pub(crate) at: Vec<Option<Range<usize>>>,
    /// The arena's size in words.
    pub(crate) words: usize,
    /// The planned values' bytes, each counted once (what they would take
    /// without sharing).
    pub(crate) unshared: usize,
    /// Concatenations done in place (by node index): their inputs were
    /// written side by side into the output's range, so the node only
    /// names the range; with the output's type and dims.
    pub(crate) in_place: HashMap<usize, (DType, Vec<usize>)>,
}

/// A plannable value as the measuring run saw it.
#[derive(Clone, Debug)]
pub(crate) struct Life {
    /// The value (index).
    pub(crate) value: usize,
    /// Its size in bytes.
    pub(crate) bytes: usize,
    /// The node computing it.
    pub(crate) first: usize,
    /// The last node reading it or a view of it.
    pub(crate) last: usize,
    /// Views of it (values sharing its bytes).
    pub(crate) views: Vec<usize>,
    /// Values placed inside it: value and byte offset (the inputs of a
    /// concatenation done in place).
    pub(crate) parts: Vec<(usize, usize)>,
}

/// Assigns arena ranges: largest first, each at the lowest offset where it
/// overlaps no placed value alive at the same time.
pub(crate) fn plan(values: usize, lives: &[Life]) -> Plan {
    // Parts are placed with their container.
    let inside: Vec<usize> = lives.iter().flat_map(|l| l.parts.iter().map(|(v, _)| *v)).collect();
    let mut order: Vec<&Life> = lives.iter().filter(|l| !inside.contains(&l.value)).collect();
    order.sort_by_key(|l| (std::cmp::Reverse(l.bytes), l.first, l.value));
    let mut placed: Vec<(&Life, Range<usize>)> = vec![];
    let mut at = vec![None; values];
    let mut words = 0;
    for l in order {
        let size = l.bytes.div_ceil(64) * 8;
        let mut busy: Vec<Range<usize>> =
            placed.iter().filter(|(p, _)| p.first <= l.last && l.first <= p.last).map(|(_, r)| r.clone()).collect();
        busy.sort_by_key(|r| r.start);
        let mut offset = 0;
        for r in &busy {
            if offset + size <= r.start {
                break;
            }
            offset = offset.max(r.end);
        }
        let range = offset..offset + size;
        words = words.max(range.end);
        for v in std::iter::once(l.value).chain(l.views.iter().copied()) {
            at[v] = Some(range.clone());
        }
        for (v, off) in &l.parts {
            let size = lives.iter().find(|p| p.value == *v).map_or(0, |p| p.bytes);
            at[*v] = Some(range.start + off / 8..range.start + (off + size).div_ceil(8));
        }
        placed.push((l, range));
    }
    let unshared = lives.iter().map(|l| l.bytes.div_ceil(64) * 64).sum();
    Plan { at, words, unshared, in_place: HashMap::new() }
}

/// `true` for the element types the arena holds.
pub(crate) fn plannable(t: DType) -> bool {
    matches!(t, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
}

/// Disjoint mutable slices of `arena` for `ranges` (each given once, in any
/// order); `None` if two overlap.
pub(crate) fn carve<'a>(arena: &'a mut [u64], ranges: &[Range<usize>]) -> Option<Vec<&'a mut [u64]>> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|k| ranges[*k].start);
    let mut out: Vec<Option<&'a mut [u64]>> = (0..ranges.len()).map(|_| None).collect();
    let mut rest = arena;
    let mut base = 0;
    for k in order {
        let r = &ranges[k];
        if r.start < base || r.end > base + rest.len() {
            return None;
        }
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(r.start - base);
        let (mine, tail) = tail.split_at_mut(r.end - r.start);
        out[k] = Some(mine);
        rest = tail;
        base = r.end;
    }
    out.into_iter().collect()
}

/// `n` elements of type `t` at the start of `words`.
pub(crate) fn data(t: DType, words: &[u64], n: usize) -> Option<Data<'_>> {
    Some(match t {
        DType::F32 => Data::F32(bytemuck::cast_slice::<u64, f32>(words).get(..n)?),
        DType::F64 => Data::F64(bytemuck::cast_slice::<u64, f64>(words).get(..n)?),
        DType::F16 => Data::F16(bytemuck::cast_slice::<u64, f16>(words).get(..n)?),
        DType::BF16 => Data::BF16(bytemuck::cast_slice::<u64, bf16>(words).get(..n)?),
        _ => return None,
    })
}

/// `n` elements of type `t` at the start of `words`, to write.
pub(crate) fn data_mut(t: DType, words: &mut [u64], n: usize) -> Option<DataMut<'_>> {
    Some(match t {
        DType::F32 => DataMut::F32(bytemuck::cast_slice_mut::<u64, f32>(words).get_mut(..n)?),
        DType::F64 => DataMut::F64(bytemuck::cast_slice_mut::<u64, f64>(words).get_mut(..n)?),
        DType::F16 => DataMut::F16(bytemuck::cast_slice_mut::<u64, f16>(words).get_mut(..n)?),
        DType::BF16 => DataMut::BF16(bytemuck::cast_slice_mut::<u64, bf16>(words).get_mut(..n)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(value: usize, bytes: usize, first: usize, last: usize) -> Life {
        Life { value, bytes, first, last, views: vec![], parts: vec![] }
    }

    /// A chain `a → b → c → d`: each value dies as the next is made, so two
    /// ranges alternate; values alive together never share bytes.
    #[test]
    fn lifetimes_share_ranges() {
        let lives = [life(0, 640, 0, 1), life(1, 640, 1, 2), life(2, 640, 2, 3), life(3, 640, 3, 4)];
        let p = plan(4, &lives);
        assert_eq!(p.words, 2 * 80);
        assert_eq!(p.unshared, 4 * 640);
        for a in &lives {
            for b in &lives {
                let overlap = a.first <= b.last && b.first <= a.last;
                let (ra, rb) = (p.at[a.value].clone().unwrap(), p.at[b.value].clone().unwrap());
                if a.value != b.value && overlap {
                    assert!(ra.end <= rb.start || rb.end <= ra.start, "{a:?} and {b:?} share bytes");
                }
            }
        }
    }

    #[test]
    fn carving_gives_disjoint_slices() {
        let mut arena = vec![0u64; 10];
        let s = carve(&mut arena, &[6..8, 0..2, 2..6]).unwrap();
        assert_eq!(s.iter().map(|x| x.len()).collect::<Vec<_>>(), [2, 2, 4]);
        assert!(carve(&mut arena, &[0..4, 2..6]).is_none());
        assert!(carve(&mut arena, std::slice::from_ref(&(8..12))).is_none());
    }
}
