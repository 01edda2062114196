//! Shape rules shared by the operators' inference.

use crate::Dim;

/// Multidirectional (numpy) broadcasting of two shapes, aligned at their
/// last dims: equal dims stay, a `1` takes the other dim, known sizes
/// that differ (neither 1) are an error. A symbolic dim against a known
/// size `n > 1` must be `n` (or 1) at run time, so the result is `n`; two
/// different symbolic dims, or an unknown one against anything but a size
/// `> 1`, give an unknown dim.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, String> {
    let n = a.len().max(b.len());
    let at = |s: &[Dim], k: usize| if k + s.len() >= n { s[k + s.len() - n].clone() } else { Dim::Known(1) };
    (0..n)
        .map(|k| {
            let (x, y) = (at(a, k), at(b, k));
            Ok(match (&x, &y) {
                _ if x == y => x,
                (Dim::Known(1), _) => y,
                (_, Dim::Known(1)) => x,
                (Dim::Known(p), Dim::Known(q)) => {
                    return Err(format!("dims {p} and {q} do not broadcast (shapes {} and {})", show(a), show(b)));
                }
                (Dim::Known(_), _) => x,
                (_, Dim::Known(_)) => y,
                _ => Dim::Unknown,
            })
        })
        .collect()
}

/// `[N, 3, ?]`.
pub fn show(s: &[Dim]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: usize) -> Dim {
        Dim::Known(n)
    }

    fn s(n: &str) -> Dim {
        Dim::Sym(n.into())
    }

    #[test]
    fn numpy_rules_with_symbols() {
        assert_eq!(broadcast(&[k(2), k(1), k(4)], &[k(3), k(1)]), Ok(vec![k(2), k(3), k(4)]));
        assert_eq!(broadcast(&[], &[k(5)]), Ok(vec![k(5)]));
        assert_eq!(broadcast(&[s("N"), k(3)], &[k(3)]), Ok(vec![s("N"), k(3)]));
        assert_eq!(broadcast(&[s("N"), k(1)], &[k(1), k(7)]), Ok(vec![s("N"), k(7)]));
        assert_eq!(broadcast(&[s("N")], &[k(4)]), Ok(vec![k(4)]));
        assert_eq!(broadcast(&[s("N")], &[s("M")]), Ok(vec![Dim::Unknown]));
        assert_eq!(broadcast(&[s("N")], &[s("N")]), Ok(vec![s("N")]));
        assert_eq!(broadcast(&[Dim::Unknown], &[k(1)]), Ok(vec![Dim::Unknown]));
        let e = broadcast(&[k(2), k(3)], &[k(4)]).unwrap_err();
        assert_eq!(e, "dims 3 and 4 do not broadcast (shapes [2, 3] and [4])");
    }
}
